using Balancer.Explain;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Power of two choices (YARP's default): two distinct backends drawn at random, and the one with fewer requests
/// in flight wins. Nearly as good as least connections at spreading load, with no shared structure to update.
/// </summary>
/// <param name="explain">Requests may ask for a decision trace: the two drawn are noted for those that did.</param>
internal sealed class PowerOfTwoPolicy(Random random, bool explain = false) : ILoadBalancingPolicy, IExplainingPolicy
{
    public string Name => AlgorithmNames.PowerOfTwo;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var items = SelectionState.Of(cluster, availableDestinations).Compile(availableDestinations, cluster, static view => view.Items);
        var n = (uint)items.Length;
        if (n < 2)
        {
            return n == 0 ? null : items[0];
        }

        var bits = (ulong)random.NextInt64();
        var first = (int)(((bits & 0xFFFFFFFF) * n) >> 32);
        var second = (int)((((bits >> 32) & 0x7FFFFFFF) * (n - 1)) >> 31);
        if (second >= first)
        {
            second++; // distinct: the second draw is over the n-1 others
        }

        var a = items[first];
        var b = items[second];
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
}
