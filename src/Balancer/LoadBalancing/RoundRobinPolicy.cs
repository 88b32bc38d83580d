using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>Strict rotation over the available backends, in pool order.</summary>
internal sealed class RoundRobinPolicy : ILoadBalancingPolicy
{
    private readonly ConditionalWeakTable<ClusterState, Counter> _counters = [];

    public string Name => AlgorithmNames.RoundRobin;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var ordered = DestinationView.Of(cluster, availableDestinations);
        if (ordered.Length == 0)
        {
            return null;
        }

        var counter = _counters.GetValue(cluster, static _ => new Counter());
        var next = (uint)(Interlocked.Increment(ref counter.Value) - 1);
        return ordered[next % (uint)ordered.Length];
    }

    private sealed class Counter
    {
        public int Value;
    }
}
