using Balancer.Configuration;
using Balancer.Networking;

namespace Balancer.Registry;

/// <summary>Where a backend's registration came from.</summary>
public enum BackendSource
{
    /// <summary>Listed in config.yaml; changed only by editing it.</summary>
    Config,

    /// <summary>Registered itself through the TCP control plane.</summary>
    ControlPlane,

    /// <summary>Added through the admin REST API.</summary>
    Api,
}

/// <summary>One backend as routing sees it.</summary>
/// <param name="Address">Normalized <c>scheme://host:port</c>; also the backend's identity.</param>
/// <param name="Pool">The pool it belongs to.</param>
/// <param name="Weight">Relative share of traffic; 0 receives nothing.</param>
/// <param name="Paths">Path prefixes it is restricted to; empty serves every path no backend claims more specifically.</param>
/// <param name="Clients">Client networks it is restricted to; empty serves every client.</param>
/// <param name="Order">Sort key within its pool: configured backends first, then registrations in the order they arrived.</param>
public sealed record BackendEntry(string Address, string Pool, int Weight, IReadOnlyList<string> Paths, NetworkList Clients, BackendSource Source, long Order)
{
    /// <summary>True when the backend serves only some paths or some clients.</summary>
    public bool IsRestricted => Paths.Count > 0 || Clients.Networks.Count > 0;
}

/// <summary>A pool: a set of backends behind one algorithm, serving some path prefixes.</summary>
public sealed record PoolSnapshot(string Name, string Algorithm, IReadOnlyList<string> Paths, IReadOnlyList<BackendEntry> Backends);

/// <summary>
/// An immutable picture of everything routing needs. The registry publishes a new one on every change;
/// readers take the current one and never lock. Pools a change did not touch are the same objects as in
/// the previous snapshot, so what is derived from them need not be rebuilt.
/// </summary>
public sealed record RoutingSnapshot(long Version, IReadOnlyList<PoolSnapshot> Pools)
{
    /// <summary>The static backends of a configured pool, as entries.</summary>
    public static IEnumerable<BackendEntry> StaticBackends(PoolOptions pool) =>
        pool.Backends.Select((b, i) => new BackendEntry(b.Address, pool.Name, b.Weight, b.Paths, b.Clients, BackendSource.Config, i - pool.Backends.Count));

    /// <summary>
    /// A snapshot of the configured pools holding their static backends and <paramref name="registered"/>.
    /// Pools not in <paramref name="touched"/> are taken unchanged from <paramref name="previous"/>.
    /// </summary>
    public static RoutingSnapshot Build(
        long version,
        IReadOnlyList<PoolOptions> pools,
        IEnumerable<BackendEntry> registered,
        RoutingSnapshot? previous = null,
        IReadOnlySet<string>? touched = null)
    {
        var result = new List<PoolSnapshot>(pools.Count);
        for (var i = 0; i < pools.Count; i++)
        {
            var pool = pools[i];
            if (previous is not null && touched is not null && !touched.Contains(pool.Name))
            {
                result.Add(previous.Pools[i]);
                continue;
            }

            var backends = StaticBackends(pool)
                .Concat(registered.Where(r => r.Pool.Equals(pool.Name, StringComparison.OrdinalIgnoreCase)))
                .OrderBy(b => b.Order)
                .ToArray();
            result.Add(new PoolSnapshot(pool.Name, pool.Algorithm, pool.Paths, backends));
        }

        return new RoutingSnapshot(version, result);
    }
}
