using Balancer.Explain;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Power of two choices (YARP's default): two distinct backends drawn at random, and the one with fewer requests
/// in flight wins (the first drawn when equal). Nearly as good as least connections at spreading load, with no shared
/// structure to update. When weights differ, the two are drawn in proportion to weight (<see cref="AliasTable"/>):
/// at equal load each backend's share is its weight's, and under load the less busy of the two still wins. (Comparing
/// in flight per unit of weight instead would send every request of a lightly loaded pool to its heaviest backend:
/// an idle backend of weight 3 beats an idle one of weight 1 every time.)
/// </summary>
/// <param name="explain">Requests may ask for a decision trace: the two drawn are noted for those that did.</param>
internal sealed class PowerOfTwoPolicy(Random random, bool explain = false) : ILoadBalancingPolicy, IExplainingPolicy
{
    // Weighted draws of the second until it differs from the first; past this many, a uniform one.
    private const int Redraws = 4;

    public string Name => AlgorithmNames.PowerOfTwo;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var choices = SelectionState.Of(cluster, availableDestinations).Compile(availableDestinations, cluster, static view => new Choices(view.Items, new AliasTable(view.Items, view.Weights)));
        var items = choices.Items;
        var n = (uint)items.Length;
        if (n < 2)
        {
            return n == 0 ? null : items[0];
        }

        var bits = (ulong)random.NextInt64();
        DestinationState a, b;
        if (choices.Weighted.IsUniform)
        {
            var first = (int)(((bits & 0xFFFFFFFF) * n) >> 32);
            var second = (int)((((bits >> 32) & 0x7FFFFFFF) * (n - 1)) >> 31);
            a = items[first];
            b = items[second >= first ? second + 1 : second]; // distinct: the second draw is over the n-1 others
        }
        else
        {
            a = choices.Weighted.Pick(bits)!;
            b = a;
            for (var i = 0; i < Redraws && b == a; i++)
            {
                b = choices.Weighted.Pick((ulong)random.NextInt64())!;
            }

            while (b == a) // a backend with nearly all the weight: any other, uniformly (each try succeeds with odds of at least 1/2)
            {
                b = items[(int)((((ulong)random.NextInt64() & 0xFFFFFFFF) * n) >> 32)];
            }
        }

        int countA = a.ConcurrentRequestCount, countB = b.ConcurrentRequestCount;
        if (explain && context.Features.Get<DecisionTrace>() is { } trace)
        {
            trace.Drawn = (a.Model.Config.Address, countA, b.Model.Config.Address, countB);
        }

        return countB < countA ? b : a;
    }

    public PickReason Explain(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> available, DestinationState picked) =>
        context.Features.Get<DecisionTrace>()?.Drawn is { } drawn
            ? new($"power-of-two: drew {drawn.First} ({drawn.FirstInFlight} in flight) and {drawn.Second} ({drawn.SecondInFlight}); {(drawn.FirstInFlight == drawn.SecondInFlight ? "equal, so the first drawn" : "the one with fewer")}")
            : new($"power-of-two: the only one of weight above 0 of {available.Count}");

    private sealed record Choices(DestinationState[] Items, AliasTable Weighted);
}
