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
/// <param name="DrainingSince">When it was set to drain: it takes no new requests and leaves once idle.</param>
public sealed record BackendEntry(string Address, string Pool, int Weight, IReadOnlyList<string> Paths, NetworkList Clients, BackendSource Source, long Order, DateTimeOffset? DrainingSince = null)
{
    /// <summary>True when the backend serves only some paths or some clients.</summary>
    public bool IsRestricted => Paths.Count > 0 || Clients.Networks.Count > 0;
}

/// <summary>A pool: a set of backends behind one algorithm, serving some path prefixes.</summary>
/// <param name="Settings">The pool as configured: algorithm, hashing, paths.</param>
public sealed record PoolSnapshot(PoolOptions Settings, IReadOnlyList<BackendEntry> Backends)
{
    public string Name => Settings.Name;
    public string Algorithm => Settings.Algorithm;
    public IReadOnlyList<string> Paths => Settings.Paths;
}

/// <summary>
/// An immutable picture of everything routing needs. The registry publishes a new one on every change;
/// readers take the current one and never lock. Pools a change did not touch are the same objects as in
/// the previous snapshot, so what is derived from them need not be rebuilt.
/// </summary>
public sealed record RoutingSnapshot(long Version, IReadOnlyList<PoolSnapshot> Pools)
{
    /// <summary>The route table in force (config.yaml's, until a reload replaces it); empty: the default pool's catch-all alone.</summary>
    public IReadOnlyList<Balancer.Routing.RouteRule> Routes { get; init; } = [];

    /// <summary>The static backends of a configured pool, as entries.</summary>
    public static IEnumerable<BackendEntry> StaticBackends(PoolOptions pool) =>
        pool.Backends.Select((b, i) => new BackendEntry(b.Address, pool.Name, b.Weight, b.Paths, b.Clients, BackendSource.Config, i - pool.Backends.Count));

    /// <summary>A snapshot of the configured pools holding their static backends and <paramref name="registered"/>.</summary>
    public static RoutingSnapshot Build(long version, IReadOnlyList<PoolOptions> pools, IEnumerable<BackendEntry> registered, IReadOnlyList<Balancer.Routing.RouteRule>? routes = null) =>
        new(version, [.. pools.Select(pool => new PoolSnapshot(
            pool,
            [.. StaticBackends(pool).Concat(registered.Where(r => r.Pool.Equals(pool.Name, StringComparison.OrdinalIgnoreCase))).OrderBy(b => b.Order)]))])
        {
            Routes = routes ?? [],
        };

    /// <summary>
    /// This snapshot with <paramref name="changes"/> applied, in order (each the state of one backend before and
    /// after; null is absent; an address may change several times). Untouched pools are the same objects; a touched
    /// pool is rebuilt in O(n) by dropping the changed backends from its ordered list and merging their final states
    /// back in by order. No full sort.
    /// </summary>
    public RoutingSnapshot Apply(long version, IReadOnlyList<(BackendEntry? Before, BackendEntry? After)> changes)
    {
        // Several changes to one address in a batch: what counts is its state before the first and after the last.
        var folded = new Dictionary<string, (BackendEntry? Before, BackendEntry? After)>(StringComparer.OrdinalIgnoreCase);
        foreach (var (before, after) in changes)
        {
            var address = (before ?? after)!.Address;
            folded[address] = folded.TryGetValue(address, out var earlier) ? (earlier.Before, after) : (before, after);
        }

        changes = [.. folded.Values.Where(c => c.Before is not null || c.After is not null)];
        var pools = new PoolSnapshot[Pools.Count];
        for (var i = 0; i < Pools.Count; i++)
        {
            var pool = Pools[i];
            bool Here(BackendEntry? entry) => entry is not null && entry.Pool.Equals(pool.Name, StringComparison.OrdinalIgnoreCase);

            // Before and after may lie in different pools (removed, then registered again elsewhere).
            var gone = changes.Where(c => Here(c.Before)).Select(c => c.Before!.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
            var added = changes.Where(c => Here(c.After)).Select(c => c.After!).OrderBy(b => b.Order).ToList();
            if (gone.Count == 0 && added.Count == 0)
            {
                pools[i] = pool;
                continue;
            }

            var merged = new List<BackendEntry>(pool.Backends.Count + added.Count);
            var next = 0;
            foreach (var backend in pool.Backends)
            {
                if (gone.Contains(backend.Address))
                {
                    continue;
                }

                while (next < added.Count && added[next].Order < backend.Order)
                {
                    merged.Add(added[next++]);
                }

                merged.Add(backend);
            }

            merged.AddRange(added.Skip(next));
            pools[i] = pool with { Backends = merged };
        }

        return this with { Version = version, Pools = pools };
    }
}
