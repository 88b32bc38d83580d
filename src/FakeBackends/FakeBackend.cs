using System.Net;
using System.Text.Json;
using Balancer.ControlPlane;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace FakeBackends;

/// <summary>
/// One fake backend on real Kestrel: answers every request with JSON describing what it received
/// (<c>{server, method, path, query, headers}</c>) and <c>GET /health</c> with its health.
/// </summary>
public sealed class FakeBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly FakeBackendOptions _options;
    private long _requests;
    private int _left;

    private FakeBackend(WebApplication app, FakeBackendOptions options)
    {
        _app = app;
        _options = options;
    }

    /// <summary>The name this backend reports.</summary>
    public string Name => _options.Name;

    /// <summary>Where it listens, e.g. <c>http://127.0.0.1:3001</c>.</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>The port it listens on.</summary>
    public int Port => Address.Port;

    /// <summary>Requests received, <c>/health</c> probes not counted (including those still in progress).</summary>
    public long RequestCount => Interlocked.Read(ref _requests);

    /// <summary>Starts a fake backend; returns once it accepts connections.</summary>
    public static async Task<FakeBackend> StartAsync(FakeBackendOptions options, ILoggerProvider? logs = null, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(options.Bind, options.Port);
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(5));

        var app = builder.Build();
        var backend = new FakeBackend(app, options);
        app.Run(backend.HandleAsync);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        backend.Address = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        if (options.Register is not null)
        {
            var answer = await backend.SendAsync(ControlAction.Add, options.Paths, options.Clients, cancellationToken).ConfigureAwait(false);
            if (!answer.Succeeded)
            {
                await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
                throw new InvalidOperationException($"{options.Name}: the balancer refused the registration: {answer.Message}");
            }
        }

        return backend;
    }

    /// <summary>Sends one control-plane packet about this backend, from its own address, so the balancer sees where it lives.</summary>
    private async Task<ControlResponse> SendAsync(ControlAction action, IReadOnlyList<string> paths, IReadOnlyList<IPNetwork> clients, CancellationToken cancellationToken)
    {
        var from = _options.Bind.Equals(IPAddress.Any) || _options.Bind.Equals(IPAddress.IPv6Any) ? null : _options.Bind;
        await using var client = await ControlPlaneClient.ConnectAsync(_options.Register!, from, cancellationToken).ConfigureAwait(false);
        return await client.SendAsync(new RegistrationRequest(action, Port, paths, clients, action == ControlAction.Add ? _options.Weight : null), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deregisters (when registered), then stops listening; in-flight requests get up to the shutdown timeout.</summary>
    public async Task StopAsync()
    {
        await LeaveAsync().ConfigureAwait(false);
        await _app.StopAsync().ConfigureAwait(false);
    }

    private async Task LeaveAsync()
    {
        if (_options.Register is null || Interlocked.Exchange(ref _left, 1) == 1)
        {
            return;
        }

        try
        {
            await SendAsync(ControlAction.Remove, [], [], CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            // The balancer is gone: nothing to leave.
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        if (request.Path.Equals("/health", StringComparison.OrdinalIgnoreCase))
        {
            context.Response.StatusCode = _options.Unhealthy ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
            await context.Response.WriteAsJsonAsync(new HealthBody(_options.Name, _options.Unhealthy ? "unhealthy" : "healthy"), FakeBackendJson.Default.HealthBody, cancellationToken: context.RequestAborted).ConfigureAwait(false);
            return;
        }

        Interlocked.Increment(ref _requests);
        if (_options.Latency > TimeSpan.Zero)
        {
            await Task.Delay(_options.Latency, context.RequestAborted).ConfigureAwait(false);
        }

        if (_options.FailStatus is { } status && (_options.FailRate >= 1.0 || Random.Shared.NextDouble() < _options.FailRate))
        {
            context.Response.StatusCode = status;
        }

        var headers = new SortedDictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in request.Headers)
        {
            headers[name] = value.ToString();
        }

        var body = new EchoBody(_options.Name, request.Method, request.Path.Value ?? "/", request.QueryString.Value ?? "", headers);
        await context.Response.WriteAsJsonAsync(body, FakeBackendJson.Default.EchoBody, cancellationToken: context.RequestAborted).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>What a fake backend answers: the request as it arrived.</summary>
public sealed record EchoBody(string Server, string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers);

/// <summary>What <c>/health</c> answers.</summary>
public sealed record HealthBody(string Server, string Status);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[System.Text.Json.Serialization.JsonSerializable(typeof(EchoBody))]
[System.Text.Json.Serialization.JsonSerializable(typeof(HealthBody))]
public sealed partial class FakeBackendJson : System.Text.Json.Serialization.JsonSerializerContext;
