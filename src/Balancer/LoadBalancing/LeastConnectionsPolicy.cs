using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// The backend with the fewest requests in flight. Ties are broken by a rotating starting point,
/// so equal backends share the load instead of the first always winning.
/// </summary>
internal sealed class LeastConnectionsPolicy : ILoadBalancingPolicy
{
    public string Name => AlgorithmNames.LeastConnections;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var state = SelectionState.Of(cluster, availableDestinations);
        var ordered = state.Ordered(availableDestinations);
        if (ordered.Length == 0)
        {
            return null;
        }

        var start = (int)((uint)Interlocked.Increment(ref state.Counter) % (uint)ordered.Length);
        var best = ordered[start];
        var bestCount = best.ConcurrentRequestCount;
        for (var i = 1; i < ordered.Length && bestCount > 0; i++)
        {
            var candidate = ordered[(start + i) % ordered.Length];
            var count = candidate.ConcurrentRequestCount;
            if (count < bestCount)
            {
                best = candidate;
                bestCount = count;
            }
        }

        return best;
    }
}
