using Balancer.Health;
using Balancer.Registry;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.Observability;

/// <summary>
/// Every backend as it is now, read from where each part lives (the registry, YARP's destination state, the health
/// checker, outlier detection, slow start): the one view the admin API, the stats, the dashboard and the metrics share.
/// </summary>
internal sealed class BackendStates(BackendRegistry registry, IProxyStateLookup proxy, ActiveHealthChecker checker, SlowStart slowStart)
{
    public IEnumerable<BackendView> All()
    {
        foreach (var pool in registry.Current.Pools)
        {
            proxy.TryGetCluster(pool.Name, out var cluster);
            foreach (var backend in pool.Backends)
            {
                yield return View(backend, cluster, pool.Settings.HealthChecks.Enabled);
            }
        }
    }

    public BackendView? Find(string address) =>
        registry.Current.Pools.SelectMany(p => p.Backends).FirstOrDefault(b => b.Address.Equals(address, StringComparison.OrdinalIgnoreCase)) is { } backend
            ? View(backend)
            : null;

    public BackendView View(BackendEntry backend) => View(
        backend,
        proxy.TryGetCluster(backend.Pool, out var cluster) ? cluster : null,
        registry.Current.Pools.FirstOrDefault(p => p.Name.Equals(backend.Pool, StringComparison.OrdinalIgnoreCase))?.Settings.HealthChecks.Enabled ?? false);

    /// <param name="checkedActively">Its pool probes it: until a probe passes (health unknown) it takes no traffic.</param>
    private BackendView View(BackendEntry backend, ClusterState? cluster, bool checkedActively)
    {
        DestinationState? destination = null;
        cluster?.Destinations.TryGetValue(backend.Address, out destination);
        var probes = checker.StateOf(backend.Pool, backend.Address);
        var health = probes?.Health ?? BackendHealth.Unknown;
        var outliers = destination is null ? null : OutlierDetector.StateOf(destination);
        var ejected = destination?.Health.Passive == DestinationHealth.Unhealthy;
        var share = destination is null ? 1.0 : slowStart.Share(destination);
        return new BackendView(
            backend.Address,
            backend.Pool,
            backend.Weight,
            backend.Weight * share,
            (health == BackendHealth.Healthy || (health == BackendHealth.Unknown && !checkedActively)) && !ejected,
            health.ToString().ToLowerInvariant(),
            probes?.Reason,
            probes?.LastProbe,
            probes?.LastProbeAt,
            probes?.Since,
            ejected,
            ejected ? outliers?.EjectedUntil : null,
            backend.DrainingSince is not null,
            destination?.ConcurrentRequestCount ?? 0,
            backend.Paths,
            [.. backend.Clients.Networks.Select(n => n.ToString())],
            SourceName(backend.Source),
            backend.DrainingSince);
    }

    public static string SourceName(BackendSource source) => source switch
    {
        BackendSource.ControlPlane => "control-plane",
        BackendSource.Api => "api",
        _ => "config",
    };
}

/// <summary>A backend as the admin API shows it.</summary>
/// <param name="EffectiveWeight">The weight it takes traffic with now: lower while it ramps up after joining or recovering (slow start).</param>
/// <param name="Healthy">Takes traffic as far as health goes: not failed by its probes (nor unprobed yet, where they run), not ejected.</param>
/// <param name="Health">Active checks: healthy, unhealthy, or unknown (not probed yet, or checks off).</param>
/// <param name="HealthReason">The probe that made it so, e.g. "GET /health: 503, expected 200-399 (2 failures in a row)".</param>
/// <param name="LastProbe">The latest probe's outcome.</param>
/// <param name="LastProbeAt">When the latest probe was answered.</param>
/// <param name="HealthSince">When active checks last changed its state.</param>
/// <param name="Ejected">Outlier detection took it out; it returns at <paramref name="EjectedUntil"/>.</param>
/// <param name="Draining">It takes no new requests and is removed once idle.</param>
/// <param name="ActiveConnections">Requests in flight to it now.</param>
/// <param name="Source">config, control-plane or api.</param>
/// <param name="DrainingSince">When draining began.</param>
internal sealed record BackendView(
    string Address, string Pool, int Weight, double EffectiveWeight, bool Healthy, string Health, string? HealthReason, string? LastProbe,
    DateTimeOffset? LastProbeAt, DateTimeOffset? HealthSince, bool Ejected, DateTimeOffset? EjectedUntil, bool Draining, int ActiveConnections,
    IReadOnlyList<string> Paths, IReadOnlyList<string> Clients, string Source, DateTimeOffset? DrainingSince);
