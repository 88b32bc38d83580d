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
    private readonly ILoggerProvider? _logs;
    private WebApplication _app = null!;
    private FakeBackendOptions _options;
    private long _requests;
    private long _inFlight;
    private int _left;

    private FakeBackend(FakeBackendOptions options, ILoggerProvider? logs)
    {
        _options = options;
        _logs = logs;
    }

    /// <summary>The name this backend reports.</summary>
    public string Name => _options.Name;

    /// <summary>Where it listens, e.g. <c>http://127.0.0.1:3001</c>.</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>The port it listens on.</summary>
    public int Port => Address.Port;

    /// <summary>Requests received, <c>/health</c> probes not counted (including those still in progress).</summary>
    public long RequestCount => Interlocked.Read(ref _requests);

    /// <summary>Requests (but <c>/health</c>) being answered right now.</summary>
    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>How it behaves now; <see cref="Configure"/> changes it at run time.</summary>
    public FakeBackendOptions Options => Volatile.Read(ref _options);

    /// <summary>True while it listens (not killed).</summary>
    public bool Running { get; private set; }

    /// <summary>Changes how it behaves from the next request on (not where it listens).</summary>
    public void Configure(Func<FakeBackendOptions, FakeBackendOptions> change)
    {
        FakeBackendOptions current, next;
        do
        {
            current = Options;
            next = change(current) with { Port = current.Port, Bind = current.Bind, Name = current.Name };
        }
        while (Interlocked.CompareExchange(ref _options, next, current) != current);
    }

    /// <summary>Starts a fake backend; returns once it accepts connections.</summary>
    public static async Task<FakeBackend> StartAsync(FakeBackendOptions options, ILoggerProvider? logs = null, CancellationToken cancellationToken = default)
    {
        var backend = new FakeBackend(options, logs);
        await backend.ListenAsync(options.Port, cancellationToken).ConfigureAwait(false);
        if (options.Register is not null)
        {
            var answer = await backend.SendAsync(ControlAction.Add, options.Paths, options.Clients, cancellationToken).ConfigureAwait(false);
            if (!answer.Succeeded)
            {
                await backend.KillAsync().ConfigureAwait(false);
                throw new InvalidOperationException($"{options.Name}: the balancer refused the registration: {answer.Message}");
            }
        }

        return backend;
    }

    private async Task ListenAsync(int port, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (_logs is not null)
        {
            builder.Logging.AddProvider(_logs);
        }

        var bind = Options.Bind;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(bind, port);
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(5));

        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Address = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        _options = Options with { Port = Address.Port };
        _app = app;
        Running = true;
    }

    /// <summary>
    /// Dies as a crashed process does: the listener closes and open connections are cut, requests in flight
    /// included, without answers. The port is refused until <see cref="RestartAsync"/>.
    /// </summary>
    public async Task KillAsync()
    {
        if (!Running)
        {
            return;
        }

        Running = false;
        using var now = new CancellationTokenSource();
        await now.CancelAsync().ConfigureAwait(false);
        await _app.StopAsync(now.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Listens again on the same address and port after <see cref="KillAsync"/>.</summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        if (Running)
        {
            return;
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await ListenAsync(Port, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (IOException) when (attempt < 50)
            {
                await Task.Delay(100, cancellationToken).ConfigureAwait(false); // the old socket may still be closing
            }
        }
    }

    /// <summary>Sends one control-plane packet about this backend, from its own address, so the balancer sees where it lives.</summary>
    private async Task<ControlResponse> SendAsync(ControlAction action, IReadOnlyList<string> paths, IReadOnlyList<IPNetwork> clients, CancellationToken cancellationToken)
    {
        var options = Options;
        var from = options.Bind.Equals(IPAddress.Any) || options.Bind.Equals(IPAddress.IPv6Any) ? null : options.Bind;
        await using var client = await ControlPlaneClient.ConnectAsync(options.Register!, from, cancellationToken).ConfigureAwait(false);
        return await client.SendAsync(new RegistrationRequest(action, Port, paths, clients, action == ControlAction.Add ? options.Weight : null), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deregisters (when registered), then stops listening; in-flight requests get up to the shutdown timeout.</summary>
    public async Task StopAsync()
    {
        await LeaveAsync().ConfigureAwait(false);
        if (Running)
        {
            Running = false;
            await _app.StopAsync().ConfigureAwait(false);
        }
    }

    private async Task LeaveAsync()
    {
        if (Options.Register is null || Interlocked.Exchange(ref _left, 1) == 1)
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
        var options = Options;
        if (request.Path.Equals("/health", StringComparison.OrdinalIgnoreCase))
        {
            context.Response.StatusCode = options.Unhealthy ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
            await context.Response.WriteAsJsonAsync(new HealthBody(options.Name, options.Unhealthy ? "unhealthy" : "healthy"), FakeBackendJson.Default.HealthBody, cancellationToken: context.RequestAborted).ConfigureAwait(false);
            return;
        }

        Interlocked.Increment(ref _requests);
        Interlocked.Increment(ref _inFlight);
        try
        {
            await AnswerAsync(context, options).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client gave up; nothing to answer.
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private static async Task AnswerAsync(HttpContext context, FakeBackendOptions options)
    {
        var request = context.Request;
        if (options.Hang)
        {
            await Task.Delay(Timeout.Infinite, context.RequestAborted).ConfigureAwait(false);
        }

        if (options.Latency > TimeSpan.Zero)
        {
            await Task.Delay(options.Latency, context.RequestAborted).ConfigureAwait(false);
        }

        if (options.FailStatus is { } status && (options.FailRate >= 1.0 || Random.Shared.NextDouble() < options.FailRate))
        {
            context.Response.StatusCode = status;
        }

        var headers = new SortedDictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in request.Headers)
        {
            headers[name] = value.ToString();
        }

        var body = new EchoBody(options.Name, request.Method, request.Path.Value ?? "/", request.QueryString.Value ?? "", headers);
        await context.Response.WriteAsJsonAsync(body, FakeBackendJson.Default.EchoBody, cancellationToken: context.RequestAborted).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        var wasRunning = Running;
        await StopAsync().ConfigureAwait(false);
        if (wasRunning)
        {
            await _app.DisposeAsync().ConfigureAwait(false);
        }
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
