using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Balancer.Configuration;
using Balancer.Hosting;
using Balancer.Registry;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.Admin;

/// <summary>The REST admin API, on the admin listener only.</summary>
internal static class AdminEndpoints
{
    public static void Map(IEndpointRouteBuilder endpoints, AdminOptions options)
    {
        var admin = endpoints.MapGroup("").WithMetadata(new ListenerMetadata(ListenerKind.Admin));
        if (options.Token is { } token)
        {
            var expected = Encoding.UTF8.GetBytes("Bearer " + token);
            admin.AddEndpointFilter(async (context, next) =>
            {
                var given = Encoding.UTF8.GetBytes(context.HttpContext.Request.Headers.Authorization.ToString());
                return CryptographicOperations.FixedTimeEquals(given, expected)
                    ? await next(context).ConfigureAwait(false)
                    : Results.Problem(statusCode: StatusCodes.Status401Unauthorized, detail: "a valid Authorization: Bearer token is required");
            });
        }

        admin.MapGet("/health", () => Results.Json(new AdminHealth("ok"), AdminJson.Default.AdminHealth));
        admin.MapGet("/backends", (BackendRegistry registry, IProxyStateLookup state) =>
            Results.Json(ListBackends(registry.Current, state), AdminJson.Default.ListBackendView));
    }

    private static List<BackendView> ListBackends(RoutingSnapshot snapshot, IProxyStateLookup state)
    {
        var views = new List<BackendView>();
        foreach (var pool in snapshot.Pools)
        {
            state.TryGetCluster(pool.Name, out var cluster);
            foreach (var backend in pool.Backends)
            {
                DestinationState? destination = null;
                cluster?.Destinations.TryGetValue(backend.Address, out destination);
                var health = destination?.Health.Active ?? DestinationHealth.Unknown;
                views.Add(new BackendView(
                    backend.Address,
                    pool.Name,
                    backend.Weight,
                    health != DestinationHealth.Unhealthy,
                    health.ToString().ToLowerInvariant(),
                    destination?.ConcurrentRequestCount ?? 0,
                    backend.Source.ToString().ToLowerInvariant()));
            }
        }

        return views;
    }
}

/// <summary>A backend as the admin API shows it.</summary>
/// <param name="Healthy">False only once a health check has failed it; a backend not yet probed counts as healthy.</param>
/// <param name="Health">healthy, unhealthy, or unknown (not probed yet, or checks off).</param>
internal sealed record BackendView(string Address, string Pool, int Weight, bool Healthy, string Health, int ActiveConnections, string Source);

internal sealed record AdminHealth(string Status);

[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(AdminHealth))]
[JsonSerializable(typeof(List<BackendView>))]
internal sealed partial class AdminJson : JsonSerializerContext;
