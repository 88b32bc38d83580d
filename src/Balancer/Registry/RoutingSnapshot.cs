using Balancer.Configuration;

namespace Balancer.Registry;

/// <summary>Where a backend's registration came from.</summary>
public enum BackendSource
{
    /// <summary>Listed in config.yaml.</summary>
    Config,
}

/// <summary>One backend as routing sees it.</summary>
/// <param name="Address">Normalized <c>scheme://host:port</c>; also the backend's identity.</param>
/// <param name="Weight">Relative share of traffic; 0 receives nothing.</param>
/// <param name="Order">Position in its pool, for algorithms that rotate in a stable order.</param>
public sealed record BackendEntry(string Address, int Weight, BackendSource Source, int Order);

/// <summary>A pool: a set of backends behind one algorithm, serving some path prefixes.</summary>
public sealed record PoolSnapshot(string Name, string Algorithm, IReadOnlyList<string> Paths, IReadOnlyList<BackendEntry> Backends);

/// <summary>
/// An immutable picture of everything routing needs. The registry publishes a new one on every change;
/// readers take the current one and never lock.
/// </summary>
public sealed record RoutingSnapshot(long Version, IReadOnlyList<PoolSnapshot> Pools)
{
    /// <summary>The snapshot the static configuration describes.</summary>
    public static RoutingSnapshot FromOptions(BalancerOptions options) =>
        new(1, [.. options.Pools.Select(p => new PoolSnapshot(
            p.Name,
            p.Algorithm,
            p.Paths,
            [.. p.Backends.Select((b, i) => new BackendEntry(b.Address, b.Weight, BackendSource.Config, i))]))]);
}
