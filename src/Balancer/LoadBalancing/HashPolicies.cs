using System.Globalization;
using Balancer.Configuration;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Client address → backend through a Maglev table (<see cref="MaglevTable"/>): the same client keeps reaching the
/// same backend, every instance agrees, and when backends come and go few clients move. O(1) per pick.
/// </summary>
internal sealed class IpHashPolicy(BalancerOptions options) : ILoadBalancingPolicy, IExplainingPolicy
{
    public string Name => AlgorithmNames.IpHash;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var table = SelectionState.Of(cluster, availableDestinations).Compile(availableDestinations, cluster, static view => new MaglevTable(view.Items, view.Weights));
        return table.Lookup(HashKey.ClientIp.Of(context, options.Proxy.TrustedProxies));
    }

    public PickReason Explain(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> available, DestinationState picked)
    {
        var table = SelectionState.Of(cluster, available).Compile(available, cluster, static view => new MaglevTable(view.Items, view.Weights));
        var hash = HashKey.ClientIp.Of(context, options.Proxy.TrustedProxies);
        var client = HashKey.ClientIp.ValueOf(context, options.Proxy.TrustedProxies, out _);
        return new(string.Create(CultureInfo.InvariantCulture, $"ip-hash: client {client ?? "unknown"} -> hash {hash:x16} -> Maglev slot {table.SlotOf(hash)} of {table.Size} -> {picked.Model.Config.Address}"), client);
    }
}

/// <summary>
/// A request key (client address, a header, a cookie or the path, per pool) → backend on a consistent-hash ring
/// (<see cref="HashRing"/>) with points in proportion to weight: a key moves only when its backend leaves or a new
/// backend takes it. O(1) per pick.
/// </summary>
internal sealed class ConsistentHashPolicy(BalancerOptions options) : ILoadBalancingPolicy, IExplainingPolicy
{
    /// <summary>Cluster metadata: the pool's hash key and virtual nodes.</summary>
    public const string KeyMetadata = "lb.hash-key";
    public const string VirtualNodesMetadata = "lb.virtual-nodes";

    public string Name => AlgorithmNames.ConsistentHash;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var ring = SelectionState.Of(cluster, availableDestinations).Compile(availableDestinations, cluster, static view => KeyedRing.Build(view));
        return ring.Ring.Lookup(ring.Key.Of(context, options.Proxy.TrustedProxies));
    }

    public PickReason Explain(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> available, DestinationState picked)
    {
        var ring = SelectionState.Of(cluster, available).Compile(available, cluster, static view => KeyedRing.Build(view));
        var hash = ring.Key.Of(context, options.Proxy.TrustedProxies);
        var value = ring.Key.ValueOf(context, options.Proxy.TrustedProxies, out var byClient);
        // A client address is safe to show in the header; a header's or cookie's value (a session id, say) only in the full trace.
        var shown = !byClient ? "" : ring.Key.Source == HashKeySource.ClientIp ? $" {value ?? "unknown"}" : $" (absent: by client address {value ?? "unknown"})";
        return new(
            string.Create(CultureInfo.InvariantCulture, $"consistent-hash: key {ring.Key}{shown} -> hash {hash:x16} -> ring point {ring.Ring.PointOf(hash)} of {ring.Ring.Points} -> {picked.Model.Config.Address}"),
            value);
    }

    private sealed record KeyedRing(HashRing Ring, HashKey Key)
    {
        public static KeyedRing Build(DestinationView view)
        {
            var metadata = view.Cluster.Model?.Config.Metadata;
            var key = metadata?.TryGetValue(KeyMetadata, out var text) == true && HashKey.TryParse(text, out var parsed, out _) ? parsed : HashKey.ClientIp;
            var nodes = metadata?.TryGetValue(VirtualNodesMetadata, out var count) == true && int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : LoadBalancingOptions.DefaultVirtualNodes;
            return new KeyedRing(new HashRing(view.Items, view.Weights, nodes), key);
        }
    }
}
