using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// The backend with the fewest requests in flight; equal backends take turns. O(1) per pick over the cluster's
/// available backends (see <see cref="InFlightTracker"/>).
/// </summary>
internal sealed class LeastConnectionsPolicy : ILoadBalancingPolicy
{
    public string Name => AlgorithmNames.LeastConnections;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations) =>
        InFlightTracker.For(cluster, weighted: false).Pick(cluster, availableDestinations);
}

/// <summary>
/// The backend with the lowest (in flight + 1) / weight (GoBalancer's "weighted"): a backend of weight 3 carries
/// three times the requests of one of weight 1 before they are equal. O(distinct weights) per pick.
/// </summary>
internal sealed class WeightedLeastConnectionsPolicy : ILoadBalancingPolicy
{
    public string Name => AlgorithmNames.WeightedLeastConnections;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations) =>
        InFlightTracker.For(cluster, weighted: true).Pick(cluster, availableDestinations);
}
