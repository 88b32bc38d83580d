using Balancer.Proxy;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// The backend with the fewest requests in flight; equal backends take turns. O(1) per pick over the cluster's
/// available backends (see <see cref="InFlightTracker"/>).
/// </summary>
internal sealed class LeastConnectionsPolicy : ILoadBalancingPolicy, IExplainingPolicy
{
    public string Name => AlgorithmNames.LeastConnections;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations) =>
        InFlightTracker.For(cluster, weighted: false).Pick(cluster, availableDestinations);

    public PickReason Explain(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> available, DestinationState picked)
    {
        var tracker = InFlightTracker.For(cluster, weighted: false);
        var others = available.Where(d => d != picked).OrderBy(tracker.CountOf).Select(d => $"{d.Model.Config.Address} {tracker.CountOf(d)}").ToList();
        return new($"least-connections: {picked.Model.Config.Address} had {tracker.CountOf(picked)} in flight{(others.Count > 0 ? ", " + PickReason.Listed(others) : "")}");
    }
}

/// <summary>
/// The backend with the lowest (in flight + 1) / weight (GoBalancer's "weighted"): a backend of weight 3 carries
/// three times the requests of one of weight 1 before they are equal. O(distinct weights) per pick.
/// </summary>
internal sealed class WeightedLeastConnectionsPolicy : ILoadBalancingPolicy, IExplainingPolicy
{
    public string Name => AlgorithmNames.WeightedLeastConnections;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations) =>
        InFlightTracker.For(cluster, weighted: true).Pick(cluster, availableDestinations);

    public PickReason Explain(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> available, DestinationState picked)
    {
        var tracker = InFlightTracker.For(cluster, weighted: true);
        string Score(DestinationState d) => $"{d.Model.Config.Address} ({tracker.CountOf(d)}+1)/{DestinationMetadata.WeightOf(d)}";
        var others = available.Where(d => d != picked && DestinationMetadata.WeightOf(d) > 0)
            .OrderBy(d => (tracker.CountOf(d) + 1.0) / DestinationMetadata.WeightOf(d)).Select(Score).ToList();
        return new($"weighted-least-connections: lowest (in flight + 1) / weight, {Score(picked)}{(others.Count > 0 ? "; " + PickReason.Listed(others) : "")}");
    }
}
