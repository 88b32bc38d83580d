using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Balancer.Configuration;
using Balancer.Health;
using Balancer.Hosting;
using Balancer.Networking;
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
        var guard = new AdminGuard(options, OwnListeners.HostAddresses());
        admin.AddEndpointFilter(async (context, next) =>
            guard.Check(context.HttpContext.Request) is { } refusal ? Problem(refusal.Status, refusal.Detail) : await next(context).ConfigureAwait(false));
        if (options.Token is { } token)
        {
            var expected = Encoding.UTF8.GetBytes("Bearer " + token);
            admin.AddEndpointFilter(async (context, next) =>
            {
                var given = Encoding.UTF8.GetBytes(context.HttpContext.Request.Headers.Authorization.ToString());
                return CryptographicOperations.FixedTimeEquals(given, expected)
                    ? await next(context).ConfigureAwait(false)
                    : Problem(StatusCodes.Status401Unauthorized, "a valid Authorization: Bearer token is required");
            });
        }

        admin.MapGet("/health", () => Results.Json(new AdminHealth("ok"), AdminJson.Default.AdminHealth));

        admin.MapGet("/backends", (BackendRegistry registry, IProxyStateLookup state, ActiveHealthChecker health) =>
            Results.Json(registry.Current.Pools.SelectMany(p => p.Backends).Select(b => View(b, state, health)).ToList(), AdminJson.Default.ListBackendView));

        admin.MapGet("/backends/{**address}", (string address, BackendRegistry registry, IProxyStateLookup state, ActiveHealthChecker health) =>
            WithAddress(address, normalized => Find(registry, normalized) is { } backend
                ? Results.Json(View(backend, state, health), AdminJson.Default.BackendView)
                : Problem(StatusCodes.Status404NotFound, $"{normalized} is not a backend")));

        // Drain: no new requests; removed once idle (or at the drain timeout).
        admin.MapPost("/backends/{**address}", (string address, HttpRequest request, BackendRegistry registry, IProxyStateLookup state, ActiveHealthChecker health) =>
            address.EndsWith("/drain", StringComparison.OrdinalIgnoreCase)
                ? WithAddressAsync(address[..^"/drain".Length], async normalized =>
                {
                    var result = await registry.ApplyAsync(new RegistryChange.Drain(normalized), request.HttpContext.RequestAborted).ConfigureAwait(false);
                    return result.Succeeded ? Results.Json(View(result.Backend!, state, health), AdminJson.Default.BackendView, statusCode: StatusCodes.Status202Accepted) : Refused(result);
                })
                : Task.FromResult(Problem(StatusCodes.Status404NotFound, "POST /backends/{address}/drain drains a backend; POST /backends adds one")));

        admin.MapPost("/backends", async (HttpRequest request, BackendRegistry registry, IProxyStateLookup state, ActiveHealthChecker health) =>
        {
            var body = await BackendRequest.ReadAsync(request, BackendRequest.Create).ConfigureAwait(false);
            if (body.Error is not null)
            {
                return Problem(body.TooLarge ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest, body.Error);
            }

            var change = new RegistryChange.Register(body.Address!, body.Pool ?? PoolOptions.DefaultName, body.Weight, body.Paths, body.Clients, BackendSource.Api, MustBeNew: true);
            var result = await registry.ApplyAsync(change, request.HttpContext.RequestAborted).ConfigureAwait(false);
            if (result.Succeeded)
            {
                await health.AnswerAsync(result, request.HttpContext.RequestAborted).ConfigureAwait(false); // the view then shows the first probe
            }

            return result.Succeeded
                ? Results.Json(View(result.Backend!, state, health), AdminJson.Default.BackendView, statusCode: StatusCodes.Status201Created)
                : Refused(result);
        });

        admin.MapPut("/backends/{**address}", (string address, HttpRequest request, BackendRegistry registry, IProxyStateLookup state, ActiveHealthChecker health) =>
            WithAddressAsync(address, async normalized =>
            {
                var body = await BackendRequest.ReadAsync(request, BackendRequest.Update).ConfigureAwait(false);
                if (body.Error is not null)
                {
                    return Problem(body.TooLarge ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest, body.Error);
                }

                var change = new RegistryChange.Update(
                    normalized,
                    body.Weight,
                    body.Given.Contains("paths") ? body.Paths : null,
                    body.Given.Contains("clients") ? body.Clients : null);
                var result = await registry.ApplyAsync(change, request.HttpContext.RequestAborted).ConfigureAwait(false);
                return result.Succeeded ? Results.Json(View(result.Backend!, state, health), AdminJson.Default.BackendView) : Refused(result);
            }));

        admin.MapDelete("/backends/{**address}", (string address, HttpRequest request, BackendRegistry registry) =>
            WithAddressAsync(address, async normalized =>
            {
                var result = await registry.ApplyAsync(new RegistryChange.Deregister(normalized, [], []), request.HttpContext.RequestAborted).ConfigureAwait(false);
                return result.Succeeded ? Results.NoContent() : Refused(result);
            }));
    }

    private static IResult WithAddress(string raw, Func<string, IResult> handle) =>
        ValueParsers.BackendAddress(Uri.UnescapeDataString(raw), out var address, out var error) ? handle(address) : Problem(StatusCodes.Status400BadRequest, $"address: {error}");

    private static Task<IResult> WithAddressAsync(string raw, Func<string, Task<IResult>> handle) =>
        ValueParsers.BackendAddress(Uri.UnescapeDataString(raw), out var address, out var error) ? handle(address) : Task.FromResult(Problem(StatusCodes.Status400BadRequest, $"address: {error}"));

    private static BackendEntry? Find(BackendRegistry registry, string address) =>
        registry.Current.Pools.SelectMany(p => p.Backends).FirstOrDefault(b => b.Address.Equals(address, StringComparison.OrdinalIgnoreCase));

    private static IResult Refused(ChangeResult result) => Problem(
        result.Outcome switch
        {
            ChangeOutcome.NotFound => StatusCodes.Status404NotFound,
            ChangeOutcome.Conflict => StatusCodes.Status409Conflict,
            ChangeOutcome.Invalid => StatusCodes.Status400BadRequest,
            _ => StatusCodes.Status503ServiceUnavailable,
        },
        result.Message);

    private static IResult Problem(int status, string detail) => Results.Problem(statusCode: status, detail: detail);

    private static BackendView View(BackendEntry backend, IProxyStateLookup state, ActiveHealthChecker checker)
    {
        DestinationState? destination = null;
        if (state.TryGetCluster(backend.Pool, out var cluster))
        {
            cluster.Destinations.TryGetValue(backend.Address, out destination);
        }

        var probes = checker.StateOf(backend.Pool, backend.Address);
        var health = probes?.Health ?? BackendHealth.Unknown;
        var outliers = destination is null ? null : OutlierDetector.StateOf(destination);
        var ejected = destination?.Health.Passive == DestinationHealth.Unhealthy;
        return new BackendView(
            backend.Address,
            backend.Pool,
            backend.Weight,
            health != BackendHealth.Unhealthy && !ejected,
            health.ToString().ToLowerInvariant(),
            probes?.Reason,
            probes?.LastProbe,
            ejected,
            ejected ? outliers?.EjectedUntil : null,
            backend.DrainingSince is not null,
            destination?.ConcurrentRequestCount ?? 0,
            backend.Paths,
            [.. backend.Clients.Networks.Select(n => n.ToString())],
            backend.Source switch { BackendSource.ControlPlane => "control-plane", BackendSource.Api => "api", _ => "config" });
    }
}

/// <summary>A backend as the admin API shows it.</summary>
/// <param name="Healthy">False once a health check has failed it or outlier detection has ejected it.</param>
/// <param name="Health">Active checks: healthy, unhealthy, or unknown (not probed yet, or checks off).</param>
/// <param name="HealthReason">The probe that made it so, e.g. "GET /health: 503, expected 200-399 (2 failures in a row)".</param>
/// <param name="LastProbe">The latest probe's outcome.</param>
/// <param name="Ejected">Outlier detection took it out; it returns at <paramref name="EjectedUntil"/>.</param>
/// <param name="Draining">It takes no new requests and is removed once idle.</param>
/// <param name="Source">config, control-plane or api.</param>
internal sealed record BackendView(
    string Address, string Pool, int Weight, bool Healthy, string Health, string? HealthReason, string? LastProbe,
    bool Ejected, DateTimeOffset? EjectedUntil, bool Draining, int ActiveConnections,
    IReadOnlyList<string> Paths, IReadOnlyList<string> Clients, string Source);

internal sealed record AdminHealth(string Status);

[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(AdminHealth))]
[JsonSerializable(typeof(BackendView))]
[JsonSerializable(typeof(List<BackendView>))]
internal sealed partial class AdminJson : JsonSerializerContext;
