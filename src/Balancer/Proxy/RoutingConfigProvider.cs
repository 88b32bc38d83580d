using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using Balancer.Configuration;
using Balancer.Health;
using Balancer.LoadBalancing;
using Balancer.Persistence;
using Balancer.Registry;
using Balancer.Routing;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Proxy;

/// <summary>
/// Compiles routing snapshots into YARP routes and clusters (one cluster per pool, whose policy is the pool's
/// algorithm; one route per entry of the route table: <c>routes:</c>, pools' path prefixes, the default pool's
/// catch-all) and makes them live:
/// a publish swaps the config YARP reads, signals the change, and completes when YARP reports that config (or a
/// later one) applied. YARP re-reads the latest config on each reload, so bursts of publishes coalesce.
/// </summary>
internal sealed partial class RoutingConfigProvider(BalancerOptions options, IServiceProvider services, ILogger<RoutingConfigProvider> logger)
    : IProxyConfigProvider, IConfigChangeListener, IRoutingPublisher
{
    private static readonly TimeSpan ApplyTimeout = TimeSpan.FromSeconds(10);

    // Compiled pools, reused while a snapshot carries the same pool object.
    private readonly ConditionalWeakTable<PoolSnapshot, CompiledPool> _compiled = [];

    // Destinations, reused while the backend entry is the same object: a batch that changes a few backends of a
    // large pool allocates only theirs, and YARP's comparison of the rest is a reference check.
    private readonly ConditionalWeakTable<BackendEntry, DestinationConfig> _destinations = [];
    private readonly Lock _waitersLock = new();
    private readonly List<(long Version, TaskCompletionSource Applied)> _waiters = [];
    private RoutingProxyConfig? _config;

    // The route table changes only with a reload, not with registrations: the same objects in every config till then.
    private (IReadOnlyList<RouteRule> Source, IReadOnlyList<RouteConfig> Compiled)? _routes;

    public IProxyConfig GetConfig() => Volatile.Read(ref _config) ?? throw new InvalidOperationException("The routing snapshot was not initialized.");

    public void Initialize(RoutingSnapshot snapshot) => Volatile.Write(ref _config, Compile(snapshot, out _));

    public async Task PublishAsync(RoutingSnapshot snapshot, CancellationToken cancellationToken)
    {
        var routes = _routes?.Compiled;
        var config = Compile(snapshot, out var changed);
        await ValidateAsync(changed, ReferenceEquals(routes, config.Routes) ? [] : config.Routes).ConfigureAwait(false);

        var applied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waitersLock)
        {
            _waiters.Add((config.Version, applied));
        }

        var previous = Interlocked.Exchange(ref _config, config);
        previous?.SignalChange(); // YARP may apply the new config on this very thread, before this returns

        try
        {
            await applied.Task.WaitAsync(ApplyTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"the proxy did not confirm the new routing within {ApplyTimeout.TotalSeconds}s");
        }
    }

    private async Task ValidateAsync(List<CompiledPool> changed, IReadOnlyList<RouteConfig> newRoutes)
    {
        var validator = services.GetRequiredService<IConfigValidator>();
        var problems = new List<string>();
        foreach (var route in newRoutes)
        {
            problems.AddRange((await validator.ValidateRouteAsync(route).ConfigureAwait(false)).Select(e => $"route {route.RouteId}: {e.Message}"));
        }

        foreach (var pool in changed)
        {
            problems.AddRange((await validator.ValidateClusterAsync(pool.Cluster).ConfigureAwait(false)).Select(e => $"pool {pool.Cluster.ClusterId}: {e.Message}"));
        }

        if (problems.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", problems));
        }
    }

    public void ConfigurationApplied(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
        foreach (var config in proxyConfigs.OfType<RoutingProxyConfig>())
        {
            CarryRestrictions(config);
        }

        Complete(proxyConfigs, null);
    }

    /// <summary>
    /// YARP keeps the cluster config it holds when a new one compares equal to it and no destination changed (a change
    /// of a backend's paths or clients alone): the restriction index of the applied config is then put in force for the
    /// one YARP kept, before the change is answered. Changing the config instead (a revision in its metadata) would make
    /// YARP rebuild the pool's routes and every endpoint on each change: several times slower under a registration storm.
    /// </summary>
    private void CarryRestrictions(RoutingProxyConfig config)
    {
        var state = services.GetRequiredService<IProxyStateLookup>();
        foreach (var cluster in config.Clusters)
        {
            if (state.TryGetCluster(cluster.ClusterId, out var live) && live.Model.Config is { } held)
            {
                PoolRestrictions.Apply(held, cluster);
            }
        }
    }

    public void ConfigurationApplyingFailed(IReadOnlyList<IProxyConfig> proxyConfigs, Exception exception)
    {
        LogApplyFailed(logger, exception);
        Complete(proxyConfigs, exception);
    }

    public void ConfigurationLoaded(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
    }

    public void ConfigurationLoadingFailed(IProxyConfigProvider configProvider, Exception exception)
    {
    }

    private void Complete(IReadOnlyList<IProxyConfig> configs, Exception? failure)
    {
        var version = configs.OfType<RoutingProxyConfig>().Select(c => c.Version).DefaultIfEmpty(-1).Max();
        List<TaskCompletionSource> done;
        lock (_waitersLock)
        {
            done = [.. _waiters.Where(w => w.Version <= version).Select(w => w.Applied)];
            _waiters.RemoveAll(w => w.Version <= version);
        }

        foreach (var waiter in done)
        {
            if (failure is null)
            {
                waiter.TrySetResult();
            }
            else
            {
                waiter.TrySetException(new InvalidOperationException($"the proxy rejected the new routing: {failure.Message}", failure));
            }
        }
    }

    private RoutingProxyConfig Compile(RoutingSnapshot snapshot, out List<CompiledPool> changed)
    {
        changed = [];
        var clusters = new List<ClusterConfig>();
        foreach (var pool in snapshot.Pools)
        {
            if (!_compiled.TryGetValue(pool, out var compiled))
            {
                compiled = CompilePool(pool);
                _compiled.AddOrUpdate(pool, compiled);
                changed.Add(compiled);
            }

            clusters.Add(compiled.Cluster);
        }

        return new RoutingProxyConfig(snapshot.Version, Routes(snapshot), clusters);
    }

    private CompiledPool CompilePool(PoolSnapshot pool)
    {
        var restrictions = PoolRestrictions.Build(pool);
        var tries = new TrySettings(pool.Settings.Retries ?? options.Retries, pool.Settings.ResponseHeadersTimeout ?? options.Proxy.ResponseHeadersTimeout);
        var cluster = new ClusterConfig
        {
            ClusterId = pool.Name,
            LoadBalancingPolicy = pool.Algorithm,
            HealthCheck = new HealthCheckConfig
            {
                // Weight 0, draining, health and what to do when none is left: see AvailableDestinationsPolicy.
                // Active probes are ours (ActiveHealthChecker); passive outcomes go to OutlierDetector.
                AvailableDestinationsPolicy = AvailableDestinationsPolicy.PolicyName,
                Passive = options.OutlierDetection.Enabled ? new PassiveHealthCheckConfig { Enabled = true, Policy = OutlierDetector.PolicyName } : null,
            },
            HttpRequest = new ForwarderRequestConfig
            {
                ActivityTimeout = pool.Settings.ActivityTimeout ?? options.Proxy.ActivityTimeout,
                Version = pool.Settings.BackendProtocol switch { BackendProtocol.Http1 => HttpVersion.Version11, BackendProtocol.Http2 => HttpVersion.Version20, _ => null },
                VersionPolicy = pool.Settings.BackendProtocol == BackendProtocol.Auto ? null : HttpVersionPolicy.RequestVersionExact,
            },
            SessionAffinity = Affinity(pool.Settings.Persistence),
            Metadata = Metadata(pool, restrictions is not null, tries),
            Destinations = pool.Backends.ToDictionary(b => b.Address, b => _destinations.GetValue(b, Destination), StringComparer.OrdinalIgnoreCase),
        };
        if (restrictions is not null)
        {
            PoolRestrictions.Attach(cluster, restrictions);
        }

        TrySettings.Attach(cluster, tries);

        return new CompiledPool(cluster);
    }

    /// <summary>The snapshot's route table compiled, once per table; without one, a catch-all to the first pool.</summary>
    private IReadOnlyList<RouteConfig> Routes(RoutingSnapshot snapshot)
    {
        if (_routes is { } compiled && ReferenceEquals(compiled.Source, snapshot.Routes))
        {
            return compiled.Compiled;
        }

        if (snapshot.Routes.Count == 0)
        {
            // Options built by hand (tests): everything to the first pool. Not cached: it follows that pool's name.
            return snapshot.Pools.Count == 0 ? [] : [Route(new RouteRule { Name = snapshot.Pools[0].Name, Pool = snapshot.Pools[0].Name, IsCatchAll = true }, 0)];
        }

        IReadOnlyList<RouteConfig> routes = [.. snapshot.Routes.Select(Route)];
        _routes = (snapshot.Routes, routes);
        return routes;
    }

    /// <summary>
    /// A route as YARP matches it: hosts, methods, exact/prefix/present/absent headers and exact/prefix query
    /// parameters in its own matches; glob and regex paths, regex values, present and absent query parameters in
    /// <see cref="RouteConditions"/>; and its place in the table as its order, so that no two routes ever tie.
    /// </summary>
    private static RouteConfig Route(RouteRule route, int order)
    {
        var path = route.Path switch
        {
            null => "/{**rest}",
            { Kind: PathMatchKind.Exact } exact => exact.Pattern, // no braces or wildcards: a literal template
            // A catch-all parameter may be empty, so "/api/{**rest}" admits "/api" and "/api/x" but not "/apix".
            { Kind: PathMatchKind.Prefix, Pattern: "/" } => "/{**rest}",
            { Kind: PathMatchKind.Prefix } prefix => prefix.Pattern + "/{**rest}",
            _ => "/{**rest}",
        };
        var config = new RouteConfig
        {
            RouteId = route.Name,
            ClusterId = route.Pool,
            Order = order,
            Match = new RouteMatch
            {
                Path = path,
                Hosts = route.Hosts.Count > 0 ? route.Hosts : null,
                Methods = route.Methods.Count > 0 ? route.Methods : null,
                Headers = route.Headers.Where(h => h.Kind != ValueMatchKind.Regex).Select(h => new RouteHeader
                {
                    Name = h.Name,
                    Values = h.Values.Count > 0 ? h.Values : null,
                    Mode = h.Kind switch
                    {
                        ValueMatchKind.Present => HeaderMatchMode.Exists,
                        ValueMatchKind.Absent => HeaderMatchMode.NotExists,
                        ValueMatchKind.Prefix => HeaderMatchMode.HeaderPrefix,
                        _ => HeaderMatchMode.ExactHeader,
                    },
                }).ToList() is { Count: > 0 } headers ? headers : null,
                QueryParameters = route.Query.Where(q => q.Kind is ValueMatchKind.Exact or ValueMatchKind.Prefix).Select(q => new RouteQueryParameter
                {
                    Name = q.Name,
                    Values = q.Values,
                    Mode = q.Kind == ValueMatchKind.Prefix ? QueryParameterMatchMode.Prefix : QueryParameterMatchMode.Exact,
                }).ToList() is { Count: > 0 } query ? query : null,
            },
        };
        if (RouteConditions.Of(route) is { } conditions)
        {
            // The conditions' text in the metadata too: a reload that changes only a pattern gives YARP a route that
            // differs, which it takes (with the conditions attached to it), instead of keeping the old one.
            config = config with { Metadata = new Dictionary<string, string> { [RouteConditions.MetadataKey] = route.Signature } };
            RouteConditions.Attach(config, conditions);
        }

        return config;
    }

    /// <summary>Cookie and header persistence as YARP session affinity, through <see cref="SignedAffinityPolicy"/>.</summary>
    private static SessionAffinityConfig? Affinity(PersistenceOptions persistence) => !persistence.IsSigned ? null : new SessionAffinityConfig
    {
        Enabled = true,
        Policy = persistence.Mode == PersistenceMode.Header ? SignedAffinityPolicy.HeaderName : SignedAffinityPolicy.CookieName,
        FailurePolicy = persistence.Reject ? "Return503Error" : "Redistribute",
        AffinityKeyName = persistence.Name,
        Cookie = new SessionAffinityCookieConfig
        {
            Path = persistence.Path,
            HttpOnly = persistence.HttpOnly,
            SameSite = persistence.SameSite,
            MaxAge = persistence.MaxAge,
            SecurePolicy = persistence.Secure switch { true => CookieSecurePolicy.Always, false => CookieSecurePolicy.None, null => CookieSecurePolicy.SameAsRequest },
        },
    };

    private static Dictionary<string, string> Metadata(PoolSnapshot pool, bool restricted, TrySettings tries)
    {
        var metadata = new Dictionary<string, string>
        {
            [TrySettings.MetadataKey] = tries.Canonical,
            [ConsistentHashPolicy.KeyMetadata] = pool.Settings.HashKey.ToString(),
            [ConsistentHashPolicy.VirtualNodesMetadata] = pool.Settings.VirtualNodes.ToString(CultureInfo.InvariantCulture),
        };
        if (restricted)
        {
            metadata[PoolRestrictions.MetadataKey] = "true";
        }

        if (pool.Settings.HealthChecks.Enabled)
        {
            metadata[AvailableDestinationsPolicy.ActiveChecksMetadata] = "true";
        }

        return metadata;
    }

    private static DestinationConfig Destination(BackendEntry backend)
    {
        var metadata = new Dictionary<string, string>
        {
            [DestinationMetadata.Weight] = backend.Weight.ToString(CultureInfo.InvariantCulture),
            [DestinationMetadata.Order] = backend.Order.ToString(CultureInfo.InvariantCulture),
        };
        if (backend.DrainingSince is not null)
        {
            metadata[DestinationMetadata.Draining] = "1";
        }

        return new DestinationConfig { Address = backend.Address, Metadata = metadata };
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Error, Message = "The proxy failed to apply a routing update")]
    private static partial void LogApplyFailed(ILogger logger, Exception exception);

    internal sealed record CompiledPool(ClusterConfig Cluster);
}

/// <summary>One compiled YARP configuration, for one routing snapshot version.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "A CancellationTokenSource without a timer holds nothing to release; disposing it could break YARP's registration on the token.")]
internal sealed class RoutingProxyConfig : IProxyConfig
{
    private readonly CancellationTokenSource _changed = new();

    public RoutingProxyConfig(long version, IReadOnlyList<RouteConfig> routes, IReadOnlyList<ClusterConfig> clusters)
    {
        Version = version;
        Routes = routes;
        Clusters = clusters;
        ChangeToken = new CancellationChangeToken(_changed.Token);
    }

    public long Version { get; }

    public IReadOnlyList<RouteConfig> Routes { get; }

    public IReadOnlyList<ClusterConfig> Clusters { get; }

    public IChangeToken ChangeToken { get; }

    internal void SignalChange() => _changed.Cancel();
}
