using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Balancer.Caching;
using Balancer.Configuration;
using Balancer.Health;
using Balancer.Hosting;
using Balancer.Networking;
using Balancer.Observability;
using Balancer.Redis;
using Balancer.Registry;
using Balancer.Reload;

namespace Balancer.Admin;

/// <summary>The REST admin API, on the admin listener only.</summary>
internal static class AdminEndpoints
{
    public static void Map(IEndpointRouteBuilder endpoints, BalancerOptions balancer)
    {
        var options = balancer.Admin;
        var admin = endpoints.MapGroup("").WithMetadata(new ListenerMetadata(ListenerKind.Admin));
        var guard = new AdminGuard(options, OwnListeners.HostAddresses());
        var expected = options.Token is { } token ? Encoding.UTF8.GetBytes("Bearer " + token) : null;
        IResult? Unguarded(HttpContext context) => guard.Check(context.Request) is { } refusal ? Problem(refusal.Status, refusal.Detail) : null;
        IResult? Refuse(HttpContext context) => Unguarded(context) ?? (expected is null || CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(context.Request.Headers.Authorization.ToString()), expected)
            ? null
            : Problem(StatusCodes.Status401Unauthorized, "a valid Authorization: Bearer token is required"));

        // The dashboard's own files hold nothing secret and a browser cannot send a token to load a page: they are served
        // behind the host guard only, and the page asks for the token before it calls the API.
        var files = endpoints.MapGroup("").WithMetadata(new ListenerMetadata(ListenerKind.Admin));
        files.AddEndpointFilter(async (context, next) => Unguarded(context.HttpContext) is { } refusal ? refusal : await next(context).ConfigureAwait(false));
        Dashboard.Map(files);

        admin.AddEndpointFilter(async (context, next) => Refuse(context.HttpContext) is { } refusal ? refusal : await next(context).ConfigureAwait(false));

        admin.MapGet("/health", () => Results.Json(new AdminHealth("ok"), AdminJson.Default.AdminHealth));

        admin.MapGet("/backends", (BackendStates states) =>
            Results.Json(states.All().ToList(), AdminJson.Default.ListBackendView));

        admin.MapGet("/backends/{**address}", (string address, BackendStates states) =>
            WithAddress(address, normalized => states.Find(normalized) is { } backend
                ? Results.Json(backend, AdminJson.Default.BackendView)
                : Problem(StatusCodes.Status404NotFound, $"{normalized} is not a backend")));

        // Drain: no new requests; removed once idle (or at the drain timeout).
        admin.MapPost("/backends/{**address}", (string address, HttpRequest request, BackendRegistry registry, BackendStates states) =>
            address.EndsWith("/drain", StringComparison.OrdinalIgnoreCase)
                ? WithAddressAsync(address[..^"/drain".Length], async normalized =>
                {
                    var result = await registry.ApplyAsync(new RegistryChange.Drain(normalized), request.HttpContext.RequestAborted).ConfigureAwait(false);
                    return result.Succeeded ? Results.Json(states.View(result.Backend!), AdminJson.Default.BackendView, statusCode: StatusCodes.Status202Accepted) : Refused(result);
                })
                : Task.FromResult(Problem(StatusCodes.Status404NotFound, "POST /backends/{address}/drain drains a backend; POST /backends adds one")));

        admin.MapPost("/backends", async (HttpRequest request, BackendRegistry registry, BackendStates states, ActiveHealthChecker health) =>
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
                ? Results.Json(states.View(result.Backend!), AdminJson.Default.BackendView, statusCode: StatusCodes.Status201Created)
                : Refused(result);
        });

        admin.MapPut("/backends/{**address}", (string address, HttpRequest request, BackendRegistry registry, BackendStates states) =>
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
                return result.Succeeded ? Results.Json(states.View(result.Backend!), AdminJson.Default.BackendView) : Refused(result);
            }));

        admin.MapDelete("/backends/{**address}", (string address, HttpRequest request, BackendRegistry registry) =>
            WithAddressAsync(address, async normalized =>
            {
                var result = await registry.ApplyAsync(new RegistryChange.Deregister(normalized, [], []), request.HttpContext.RequestAborted).ConfigureAwait(false);
                return result.Succeeded ? Results.NoContent() : Refused(result);
            }));

        // Deletes stored responses from Redis, shared by every balancer using it: one URL, a path prefix or all.
        admin.MapPost("/api/cache/purge", async (HttpRequest request, ResponseCache cache, RedisConnection redis) =>
        {
            if (!balancer.Pools.Any(p => p.Cache is not null))
            {
                return Problem(StatusCodes.Status409Conflict, "no pool has the response cache on (redis-server.caching, or cache in a pool)");
            }

            var body = await PurgeRequest.ReadAsync(request).ConfigureAwait(false);
            if (body.Patterns is not { } patterns)
            {
                return Problem(body.TooLarge ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest, body.Error!);
            }

            return await cache.PurgeAsync(patterns, request.HttpContext.RequestAborted).ConfigureAwait(false) is { } purged
                ? Results.Json(new PurgeResult(purged), AdminJson.Default.PurgeResult)
                : Problem(StatusCodes.Status503ServiceUnavailable, $"Redis at {redis.Endpoint} is down: nothing was purged (entries expire by themselves)");
        });

        // Reads config.yaml again and puts what can change live in force; a file with mistakes changes nothing.
        admin.MapPost("/reload", async (HttpRequest request, ConfigReloader reloader) =>
        {
            var result = await reloader.ReloadAsync("POST /reload", request.HttpContext.RequestAborted).ConfigureAwait(false);
            var status = result.Applied ? StatusCodes.Status200OK : result.Invalid ? StatusCodes.Status400BadRequest : StatusCodes.Status500InternalServerError;
            return Results.Json(result, AdminJson.Default.ReloadResult, statusCode: status);
        });

        ObservabilityEndpoints.Map(admin, balancer, Refuse);
    }

    private static IResult WithAddress(string raw, Func<string, IResult> handle) =>
        ValueParsers.BackendAddress(Uri.UnescapeDataString(raw), out var address, out var error) ? handle(address) : Problem(StatusCodes.Status400BadRequest, $"address: {error}");

    private static Task<IResult> WithAddressAsync(string raw, Func<string, Task<IResult>> handle) =>
        ValueParsers.BackendAddress(Uri.UnescapeDataString(raw), out var address, out var error) ? handle(address) : Task.FromResult(Problem(StatusCodes.Status400BadRequest, $"address: {error}"));

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
}

internal sealed record AdminHealth(string Status);

internal sealed record PurgeResult(long Purged);

[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(AdminHealth))]
[JsonSerializable(typeof(PurgeResult))]
[JsonSerializable(typeof(ReloadResult))]
[JsonSerializable(typeof(BackendView))]
[JsonSerializable(typeof(List<BackendView>))]
internal sealed partial class AdminJson : JsonSerializerContext;
