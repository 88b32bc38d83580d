using System.Net;
using System.Text.Json.Serialization;
using FakeBackends.Behaviors;

namespace FakeBackends;

/// <summary>
/// Several fake backends in one process, and a small control endpoint (loopback) through which their behaviors and
/// lives are changed while they run:
/// <list type="table">
/// <item><c>GET /backends</c>, <c>GET /backends/{name}</c>: name, address, state, behaviors, request counts.</item>
/// <item><c>PUT /backends/{name}/behaviors</c> with behaviors as YAML or JSON (<c>[latency: 200ms]</c>; <c>healthy</c> for none).</item>
/// <item><c>POST /backends/{name}/{kill|refuse|restart|stop|register|deregister|drain}</c>.</item>
/// </list>
/// </summary>
public sealed class FakeBackendHost : IAsyncDisposable
{
    private readonly IReadOnlyList<FakeBackend> _backends;
    private readonly WebApplication? _control;

    private FakeBackendHost(IReadOnlyList<FakeBackend> backends, WebApplication? control, Uri? controlAddress)
    {
        _backends = backends;
        _control = control;
        ControlAddress = controlAddress;
    }

    public IReadOnlyList<FakeBackend> Backends => _backends;

    /// <summary>Where the control endpoint listens, if it was asked for.</summary>
    public Uri? ControlAddress { get; }

    /// <summary>Starts every backend (in order), then the control endpoint on <paramref name="controlPort"/> (0: any free port; null: none).</summary>
    public static async Task<FakeBackendHost> StartAsync(IReadOnlyList<FakeBackendOptions> backends, int? controlPort, ILoggerProvider? logs = null, CancellationToken cancellationToken = default)
    {
        var started = new List<FakeBackend>();
        try
        {
            foreach (var options in backends)
            {
                started.Add(await FakeBackend.StartAsync(options, logs, cancellationToken).ConfigureAwait(false));
            }

            if (controlPort is not { } port)
            {
                return new FakeBackendHost(started, null, null);
            }

            var control = BuildControl(started, port);
            await control.StartAsync(cancellationToken).ConfigureAwait(false);
            var address = control.Urls.First();
            return new FakeBackendHost(started, control, new Uri(address));
        }
        catch
        {
            foreach (var backend in started)
            {
                await backend.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    private static WebApplication BuildControl(IReadOnlyList<FakeBackend> backends, int port)
    {
        var builder = WebApplication.CreateSlimBuilder(FakeBackend.NoFileWatching);
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Loopback, port);
        });
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, ControlJson.Default));
        var app = builder.Build();
        FakeBackend? Find(string name) => backends.FirstOrDefault(b => b.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
        IResult NotFound(string name) => Results.Problem(statusCode: StatusCodes.Status404NotFound, detail: $"no backend named {name} (there are: {string.Join(", ", backends.Select(b => b.Name))})");

        app.MapGet("/backends", () => Results.Json(backends.Select(Info).ToList(), ControlJson.Default.ListBackendInfo));
        app.MapGet("/backends/{name}", (string name) => Find(name) is { } backend ? Results.Json(Info(backend), ControlJson.Default.BackendInfo) : NotFound(name));
        app.MapPut("/backends/{name}/behaviors", async (string name, HttpRequest request) =>
        {
            if (Find(name) is not { } backend)
            {
                return NotFound(name);
            }

            using var body = new StreamReader(request.Body);
            var text = await body.ReadToEndAsync(request.HttpContext.RequestAborted).ConfigureAwait(false);
            var (behaviors, errors) = BehaviorCatalog.Parse(text, new BehaviorEnvironment(backend.Options.Time, Random.Shared));
            if (behaviors is null)
            {
                return Results.Problem(statusCode: StatusCodes.Status400BadRequest, detail: string.Join("; ", errors));
            }

            backend.SetBehaviors(behaviors);
            return Results.Json(Info(backend), ControlJson.Default.BackendInfo);
        });
        app.MapPost("/backends/{name}/{action}", async (string name, string action, HttpRequest request) =>
        {
            if (Find(name) is not { } backend)
            {
                return NotFound(name);
            }

            var aborted = request.HttpContext.RequestAborted;
            switch (action.ToUpperInvariant())
            {
                case "KILL":
                    await backend.KillAsync().ConfigureAwait(false);
                    break;
                case "REFUSE":
                    await backend.RefuseAsync().ConfigureAwait(false);
                    break;
                case "RESTART":
                    await backend.RestartAsync(aborted).ConfigureAwait(false);
                    break;
                case "STOP":
                    await backend.StopAsync().ConfigureAwait(false);
                    break;
                case "REGISTER" or "DEREGISTER" or "DRAIN" when backend.Options.Register is null:
                    return Results.Problem(statusCode: StatusCodes.Status409Conflict, detail: $"{name} was started without --register: it has no balancer to talk to");
                case "REGISTER" or "DEREGISTER" or "DRAIN":
                    var upper = action.ToUpperInvariant();
                    var answer = upper == "REGISTER" ? await backend.RegisterAsync(aborted).ConfigureAwait(false) : await backend.DeregisterAsync(drain: upper == "DRAIN", aborted).ConfigureAwait(false);
                    if (!answer.Succeeded)
                    {
                        return Results.Problem(statusCode: StatusCodes.Status409Conflict, detail: $"the balancer refused: {answer.Message}");
                    }

                    break;
                default:
                    return Results.Problem(statusCode: StatusCodes.Status400BadRequest, detail: $"{action} is not an action (kill, refuse, restart, stop, register, deregister, drain)");
            }

            return Results.Json(Info(backend), ControlJson.Default.BackendInfo);
        });
        return app;
    }

    private static BackendInfo Info(FakeBackend backend) => new(
        backend.Name, backend.Origin, backend.State.ToString().ToLowerInvariant(),
        BehaviorCatalog.Describe(backend.Options.Behaviors), backend.RequestCount, backend.InFlight);

    public async ValueTask DisposeAsync()
    {
        if (_control is not null)
        {
            await _control.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var backend in _backends)
        {
            await backend.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>A backend as the control endpoint shows it.</summary>
public sealed record BackendInfo(string Name, string Address, string State, string Behaviors, long Requests, long InFlight);

[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(BackendInfo))]
[JsonSerializable(typeof(List<BackendInfo>))]
[JsonSerializable(typeof(Microsoft.AspNetCore.Mvc.ProblemDetails))]
internal sealed partial class ControlJson : JsonSerializerContext;
