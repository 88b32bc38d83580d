using System.Globalization;
using Balancer.Configuration;
using Balancer.Registry;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;

namespace Balancer.Proxy;

/// <summary>
/// Compiles the registry's routing snapshot into YARP routes and clusters: one cluster per pool, whose
/// policy is the pool's algorithm; one route per path prefix of a pool, and a catch-all to the default pool.
/// </summary>
internal sealed class RoutingConfigProvider(BackendRegistry registry, BalancerOptions options) : IProxyConfigProvider
{
    public IProxyConfig GetConfig() => Compile(registry.Current, options);

    internal static RoutingProxyConfig Compile(RoutingSnapshot snapshot, BalancerOptions options)
    {
        var routes = new List<RouteConfig>();
        var clusters = new List<ClusterConfig>();
        foreach (var pool in snapshot.Pools)
        {
            clusters.Add(ClusterFor(pool, options));
            if (pool.Paths.Count == 0)
            {
                routes.Add(new RouteConfig
                {
                    RouteId = pool.Name,
                    ClusterId = pool.Name,
                    Match = new RouteMatch { Path = "/{**rest}" },
                });
                continue;
            }

            for (var i = 0; i < pool.Paths.Count; i++)
            {
                // A catch-all parameter may be empty, so "/api/{**rest}" admits "/api" and "/api/x" but not "/apix".
                routes.Add(new RouteConfig
                {
                    RouteId = $"{pool.Name}#{i}",
                    ClusterId = pool.Name,
                    Match = new RouteMatch { Path = pool.Paths[i] == "/" ? "/{**rest}" : pool.Paths[i] + "/{**rest}" },
                });
            }
        }

        return new RoutingProxyConfig(routes, clusters);
    }

    private static ClusterConfig ClusterFor(PoolSnapshot pool, BalancerOptions options)
    {
        var health = options.HealthChecks;
        return new ClusterConfig
        {
            ClusterId = pool.Name,
            LoadBalancingPolicy = pool.Algorithm,
            HealthCheck = new HealthCheckConfig
            {
                // Unhealthy backends are never picked; with none left, the answer is 503 rather than a doomed attempt.
                AvailableDestinationsPolicy = HealthCheckConstants.AvailableDestinations.HealthyAndUnknown,
                Active = health.Enabled
                    ? new ActiveHealthCheckConfig
                    {
                        Enabled = true,
                        Interval = health.Interval,
                        Timeout = health.Timeout,
                        Policy = HealthCheckConstants.ActivePolicy.ConsecutiveFailures,
                        Path = health.Path,
                    }
                    : null,
            },
            HttpRequest = new ForwarderRequestConfig { ActivityTimeout = options.Proxy.ActivityTimeout },
            Destinations = pool.Backends.ToDictionary(
                b => b.Address,
                b => new DestinationConfig
                {
                    Address = b.Address,
                    Metadata = new Dictionary<string, string>
                    {
                        [DestinationMetadata.Weight] = b.Weight.ToString(CultureInfo.InvariantCulture),
                        [DestinationMetadata.Order] = b.Order.ToString(CultureInfo.InvariantCulture),
                    },
                },
                StringComparer.OrdinalIgnoreCase),
        };
    }
}

/// <summary>One compiled YARP configuration.</summary>
internal sealed class RoutingProxyConfig(IReadOnlyList<RouteConfig> routes, IReadOnlyList<ClusterConfig> clusters) : IProxyConfig
{
    public IReadOnlyList<RouteConfig> Routes { get; } = routes;

    public IReadOnlyList<ClusterConfig> Clusters { get; } = clusters;

    public IChangeToken ChangeToken { get; } = NullChangeToken.Singleton;
}
