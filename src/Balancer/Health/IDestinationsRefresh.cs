using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>Makes a change of destination health visible to routing, and says when it is.</summary>
internal interface IDestinationsRefresh
{
    /// <summary>Completes once the cluster's available destinations reflect every change made before the call.</summary>
    Task RefreshAsync(ClusterState cluster);
}
