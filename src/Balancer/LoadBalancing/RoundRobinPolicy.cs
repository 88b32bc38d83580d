using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>Strict rotation over the available backends, in pool order.</summary>
internal sealed class RoundRobinPolicy : ILoadBalancingPolicy
{
    public string Name => AlgorithmNames.RoundRobin;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var state = SelectionState.Of(cluster, availableDestinations);
        var ordered = state.Ordered(availableDestinations);
        if (ordered.Length == 0)
        {
            return null;
        }

        var next = (uint)(Interlocked.Increment(ref state.Counter) - 1);
        return ordered[next % (uint)ordered.Length];
    }
}
