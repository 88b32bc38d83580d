using Balancer.LoadBalancing;
using Balancer.Proxy;
using Balancer.Tests.Kit;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Properties.LoadBalancing;

public sealed class LeastConnectionsProperties
{
    // A pool, and a stream of events: start a request (pick, then count it) or finish the n-th one in flight.
    private static readonly Arbitrary<(int[] Weights, (bool Start, int Which)[] Events)> Runs =
        (from n in Gen.Choose(1, 10)
         from weights in Gen.ArrayOf(Gen.Choose(1, 5), n)
         from events in Gen.ArrayOf(Gen.Zip(Gen.Elements(true, true, false), Gen.Choose(0, 1000)), 200)
         select (weights, events)).ToArbitrary();

    [Property(MaxTest = 300)]
    public Property Pick_AlwaysHasTheMinimumInFlight() =>
        Prop.ForAll(Runs, run => Check(run, weighted: false, (count, weight) => count));

    [Property(MaxTest = 300)]
    public Property WeightedPick_AlwaysHasTheMinimum_InFlightPlusOneOverWeight() =>
        Prop.ForAll(Runs, run => Check(run, weighted: true, (count, weight) => (count + 1.0) / weight));

    [Property(MaxTest = 200)]
    public Property Pick_RestrictedSubset_HasTheMinimumOfThatSubset() =>
        Prop.ForAll(Runs, Gen.Choose(1, 1000).ToArbitrary(), (run, mask) =>
        {
            var destinations = Destinations.Create(run.Weights.Length, i => run.Weights[i]);
            var cluster = Destinations.Cluster(destinations);
            var tracker = InFlightTracker.For(cluster, weighted: false);
            var policy = new LeastConnectionsPolicy();
            var subset = destinations.Where((_, i) => (mask >> (i % 10) & 1) == 1 || i == 0).ToArray();
            var group = new GroupDestinations(subset, new SelectionState());
            foreach (var (start, which) in run.Events)
            {
                if (start)
                {
                    var picked = policy.PickDestination(Destinations.Context(), cluster, group)!;
                    if (tracker.CountOf(picked) != subset.Min(tracker.CountOf))
                    {
                        return false;
                    }

                    tracker.Acquire(picked);
                }
                else
                {
                    tracker.Release(destinations[which % destinations.Length]);
                }
            }

            return true;
        });

    [Fact]
    public void Pick_EqualBackends_TakeTurns_NotAlwaysTheFirst()
    {
        var destinations = Destinations.Create(4);
        var cluster = Destinations.Cluster(destinations);
        var policy = new LeastConnectionsPolicy();
        var tracker = InFlightTracker.For(cluster, weighted: false);
        var hits = new int[4];

        // Each request finishes before the next starts: every pick is a four-way tie.
        for (var i = 0; i < 400; i++)
        {
            var picked = policy.PickDestination(Destinations.Context(), cluster, destinations)!;
            tracker.Acquire(picked);
            hits[Destinations.IndexOf(picked)]++;
            tracker.Release(picked);
        }

        Assert.Equal([100, 100, 100, 100], hits);
    }

    private static void Check((int[] Weights, (bool Start, int Which)[] Events) run, bool weighted, Func<int, int, double> load)
    {
        // The cluster's whole available set: the O(1) bucket path (a restricted subset is the scan, tested below).
        var destinations = Destinations.Create(run.Weights.Length, i => run.Weights[i]);
        var cluster = Destinations.Cluster(destinations);
        var tracker = InFlightTracker.For(cluster, weighted);
        PolicyUnderTest policy = weighted ? new(new WeightedLeastConnectionsPolicy()) : new(new LeastConnectionsPolicy());
        foreach (var (start, which) in run.Events)
        {
            if (start)
            {
                var picked = policy.Pick(cluster, destinations);
                var best = destinations.Min(d => load(tracker.CountOf(d), DestinationWeight(d, run.Weights)));
                if (load(tracker.CountOf(picked), DestinationWeight(picked, run.Weights)) != best)
                {
                    throw new InvalidOperationException($"picked {picked.DestinationId} at {tracker.CountOf(picked)}, but the least load is {best}");
                }

                tracker.Acquire(picked);
            }
            else
            {
                tracker.Release(destinations[which % destinations.Length]);
            }
        }
    }

    private static int DestinationWeight(DestinationState destination, int[] weights) => weights[Destinations.IndexOf(destination)];

    private readonly struct PolicyUnderTest(Yarp.ReverseProxy.LoadBalancing.ILoadBalancingPolicy policy)
    {
        public DestinationState Pick(ClusterState cluster, DestinationState[] destinations) => policy.PickDestination(Destinations.Context(), cluster, destinations)!;
    }
}
