using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Power of two choices (YARP's default): two distinct backends drawn at random, and the one with fewer requests
/// in flight wins. Nearly as good as least connections at spreading load, with no shared structure to update.
/// </summary>
internal sealed class PowerOfTwoPolicy(Random random) : ILoadBalancingPolicy
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
        return b.ConcurrentRequestCount < a.ConcurrentRequestCount ? b : a;
    }
}
