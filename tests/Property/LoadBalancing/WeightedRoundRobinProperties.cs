using Balancer.LoadBalancing;
using Balancer.Tests.Kit;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Balancer.Tests.Properties.LoadBalancing;

public sealed class WeightedRoundRobinProperties
{
    private static readonly Arbitrary<int[]> Weights =
        (from n in Gen.Choose(1, 8) from weights in Gen.ArrayOf(Gen.Choose(1, 12), n) select weights).ToArbitrary();

    [Fact]
    public void Pick_GoldenSequence_5_1_1_IsNginxs()
    {
        var destinations = Destinations.Create(3, i => i == 0 ? 5 : 1);
        var policy = new WeightedRoundRobinPolicy();
        var cluster = Destinations.Cluster();

        var picks = string.Concat(Enumerable.Range(0, 14).Select(_ => "abc"[Destinations.IndexOf(policy.PickDestination(Destinations.Context(), cluster, destinations)!)]));

        Assert.Equal("aabacaa" + "aabacaa", picks);
    }

    [Property(MaxTest = 500)]
    public Property Stepper_IsNginxsAlgorithm_PickForPick() =>
        Prop.ForAll(Weights, weights =>
        {
            var stepper = new SmoothWeightedStepper(weights);
            var current = new long[weights.Length];
            var total = weights.Sum();
            for (var step = 0; step < 3 * total; step++)
            {
                // ngx_http_upstream_get_peer: add each weight, take the first largest, subtract the total.
                var best = -1;
                for (var i = 0; i < weights.Length; i++)
                {
                    current[i] += weights[i];
                    if (best < 0 || current[i] > current[best])
                    {
                        best = i;
                    }
                }

                current[best] -= total;
                if (stepper.Next() != best)
                {
                    return false;
                }
            }

            return true;
        });

    [Property(MaxTest = 300)]
    public Property Pick_EveryWindowOfSumW_HoldsEachBackendExactlyItsWeight_AndNoPrefixRunsAhead() =>
        Prop.ForAll(Weights, weights =>
        {
            var destinations = Destinations.Create(weights.Length, i => weights[i]);
            var policy = new WeightedRoundRobinPolicy();
            var cluster = Destinations.Cluster();
            var total = weights.Sum();
            var picks = Enumerable.Range(0, 3 * total).Select(_ => Destinations.IndexOf(policy.PickDestination(Destinations.Context(), cluster, destinations)!)).ToArray();

            for (var start = 0; start + total <= picks.Length; start++)
            {
                var window = picks.Skip(start).Take(total).ToArray();
                if (Enumerable.Range(0, weights.Length).Any(i => window.Count(p => p == i) != weights[i]))
                {
                    return false;
                }
            }

            var counts = new int[weights.Length];
            for (var n = 1; n <= picks.Length; n++)
            {
                counts[picks[n - 1]]++;
                if (Enumerable.Range(0, weights.Length).Any(i => counts[i] > Math.Ceiling((double)weights[i] / total * n) + 1))
                {
                    return false;
                }
            }

            return true;
        });

    [Fact]
    public void Pick_PeriodTooLongToHold_IsSteppedLive_WithTheSameSequence()
    {
        // Σw over the schedule limit: one prime weight keeps the gcd at 1.
        var weights = new[] { WeightedRoundRobinPolicy.MaxSchedule, 7, 3 };
        var destinations = Destinations.Create(3, i => weights[i]);
        var policy = new WeightedRoundRobinPolicy();
        var cluster = Destinations.Cluster();
        var reference = new SmoothWeightedStepper(weights);

        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(reference.Next(), Destinations.IndexOf(policy.PickDestination(Destinations.Context(), cluster, destinations)!));
        }
    }
}
