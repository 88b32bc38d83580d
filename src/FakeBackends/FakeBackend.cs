using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using Balancer.ControlPlane;
using FakeBackends.Behaviors;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace FakeBackends;

/// <summary>Where a fake backend is in its life.</summary>
public enum BackendState
{
    /// <summary>Listening.</summary>
    Running,

    /// <summary>Died abruptly (<see cref="FakeBackend.KillAsync"/>): connections cut, port refused.</summary>
    Killed,

    /// <summary>Stopped listening (<see cref="FakeBackend.RefuseAsync"/>): port refused, but still registered.</summary>
    Refusing,

    /// <summary>Left gracefully (<see cref="FakeBackend.StopAsync"/>): deregistered, stopped.</summary>
    Stopped,
}

/// <summary>
/// One fake backend on real Kestrel. Every request but <c>GET /health</c> and <c>/ws</c> runs through its behaviors
/// (<see cref="FakeBackendOptions.Behaviors"/>) and is then answered with JSON describing what arrived
/// (<c>{server, method, path, query, headers}</c>) and an <c>X-Backend</c> header naming it. <c>GET /health</c>
/// answers 200, or 503 when a behavior says so; <c>/ws</c> is a WebSocket echo. Its behaviors can be changed and it
/// can be killed, refused, restarted and stopped while it runs; with <see cref="FakeBackendOptions.Register"/> it
/// registers with a balancer on start and restart and leaves on a graceful stop, through the balancer's own codec.
/// </summary>
public sealed class FakeBackend : IAsyncDisposable
{
    /// <summary>The response header naming the backend that answered.</summary>
    public const string BackendHeader = "X-Backend";

    /// <summary>
    /// A process may host hundreds of backends: none of them watches appsettings files for changes, as each watcher
    /// costs an inotify instance and Linux allows a user only 128.
    /// </summary>
    internal static readonly WebApplicationOptions NoFileWatching = new() { Args = ["--hostBuilder:reloadConfigOnChange=false"] };

    private readonly ILoggerProvider? _logs;
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private WebApplication? _app;
    private FakeBackendOptions _options;
    private long _requests;
    private long _inFlight;

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

    /// <summary><see cref="Address"/> as the balancer writes it: <c>http://127.0.0.1:3001</c>, no trailing slash.</summary>
    public string Origin => Address.ToString().TrimEnd('/');

    /// <summary>Requests received, <c>/health</c> probes not counted (including those still in progress).</summary>
    public long RequestCount => Interlocked.Read(ref _requests);

    /// <summary>Requests (but <c>/health</c>) being answered right now.</summary>
    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>How it behaves now; <see cref="Configure"/> and <see cref="SetBehaviors"/> change it at run time.</summary>
    public FakeBackendOptions Options => Volatile.Read(ref _options);

    public BackendState State { get; private set; }

    /// <summary>True while it listens.</summary>
    public bool Running => State == BackendState.Running;

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

    /// <summary>Replaces its behaviors from the next request on.</summary>
    public void SetBehaviors(IReadOnlyList<IBehavior> behaviors) => Configure(o => o with { Behaviors = behaviors });

    /// <summary>Starts a fake backend; returns once it accepts connections (and, if it registers, once registered).</summary>
    public static async Task<FakeBackend> StartAsync(FakeBackendOptions options, ILoggerProvider? logs = null, CancellationToken cancellationToken = default)
    {
        var backend = new FakeBackend(options, logs);
        await backend.ListenAsync(options.Port, cancellationToken).ConfigureAwait(false);
        if (options.Register is not null && options.RegisterOnStart)
        {
            var answer = await backend.RegisterAsync(cancellationToken).ConfigureAwait(false);
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
        var builder = WebApplication.CreateSlimBuilder(NoFileWatching);
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
        app.UseWebSockets();
        app.Run(HandleAsync);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Address = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        _options = Options with { Port = Address.Port };
        _app = app;
        State = BackendState.Running;
    }

    /// <summary>
    /// Dies as a crashed process does: the listener closes and open connections are cut, requests in flight
    /// included, without answers. The port is refused until <see cref="RestartAsync"/>. It stays registered.
    /// </summary>
    public Task KillAsync() => StopListeningAsync(BackendState.Killed, abrupt: true);

    /// <summary>
    /// Stops listening, as a process that closed its port: new connections are refused, requests in flight finish
    /// (up to 5 s). It stays registered; <see cref="RestartAsync"/> listens again.
    /// </summary>
    public Task RefuseAsync() => StopListeningAsync(BackendState.Refusing, abrupt: false);

    private async Task StopListeningAsync(BackendState next, bool abrupt)
    {
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            if (State != BackendState.Running)
            {
                return;
            }

            State = next;
            using var now = new CancellationTokenSource();
            if (abrupt)
            {
                await now.CancelAsync().ConfigureAwait(false);
            }

            await _app!.StopAsync(now.Token).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
            _app = null;
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>
    /// Listens again on the same address and port after <see cref="KillAsync"/>, <see cref="RefuseAsync"/> or
    /// <see cref="StopAsync"/>, and registers again if it registers at all (a restarted process announces itself).
    /// </summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        await _lifecycle.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (State == BackendState.Running)
            {
                return;
            }

            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await ListenAsync(Port, cancellationToken).ConfigureAwait(false);
                    break;
                }
                catch (IOException) when (attempt < 50)
                {
                    await Task.Delay(100, cancellationToken).ConfigureAwait(false); // the old socket may still be closing
                }
            }
        }
        finally
        {
            _lifecycle.Release();
        }

        if (Options.Register is not null && Options.RegisterOnStart)
        {
            var answer = await RegisterAsync(cancellationToken).ConfigureAwait(false);
            if (!answer.Succeeded)
            {
                throw new InvalidOperationException($"{Name}: the balancer refused the registration on restart: {answer.Message}");
            }
        }
    }

    /// <summary>Whether its last registration or removal through the control plane left it registered.</summary>
    public bool Registered { get; private set; }

    /// <summary>Registers with the balancer of <see cref="FakeBackendOptions.Register"/>: its paths, clients and weight.</summary>
    public async Task<ControlResponse> RegisterAsync(CancellationToken cancellationToken = default)
    {
        var answer = await SendAsync(new RegistrationRequest(ControlAction.Add, Port, Options.Paths, Options.Clients, Options.Weight), cancellationToken).ConfigureAwait(false);
        Registered |= answer.Succeeded;
        return answer;
    }

    /// <summary>Removes itself from the balancer (at once, or draining first).</summary>
    public async Task<ControlResponse> DeregisterAsync(bool drain = false, CancellationToken cancellationToken = default)
    {
        var answer = await SendAsync(new RegistrationRequest(ControlAction.Remove, Port, [], [], null, drain), cancellationToken).ConfigureAwait(false);
        Registered &= !answer.Succeeded;
        return answer;
    }

    /// <summary>Sends one control-plane packet about this backend, from its own address, so the balancer sees where it lives.</summary>
    private async Task<ControlResponse> SendAsync(RegistrationRequest request, CancellationToken cancellationToken)
    {
        var options = Options;
        var balancer = options.Register ?? throw new InvalidOperationException($"{Name} has no balancer to register with");
        var from = options.Bind.Equals(IPAddress.Any) || options.Bind.Equals(IPAddress.IPv6Any) ? null : options.Bind;
        await using var client = await ControlPlaneClient.ConnectAsync(balancer, from, cancellationToken).ConfigureAwait(false);
        return await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Leaves gracefully: deregisters (when registered), then stops listening; requests in flight get up to 5 s.</summary>
    public async Task StopAsync()
    {
        if (Registered && State is BackendState.Running or BackendState.Refusing)
        {
            try
            {
                await DeregisterAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
            {
                // The balancer is gone: nothing to leave.
            }
        }

        if (State == BackendState.Running)
        {
            await StopListeningAsync(BackendState.Stopped, abrupt: false).ConfigureAwait(false);
        }

        State = BackendState.Stopped;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var options = Options;
        context.Response.Headers[BackendHeader] = options.Name;
        if (request.Path.Equals("/health", StringComparison.OrdinalIgnoreCase))
        {
            var now = options.Time.GetUtcNow();
            var healthy = options.Behaviors.All(b => b.IsHealthy(now));
            context.Response.StatusCode = healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
            await context.Response.WriteAsJsonAsync(new HealthBody(options.Name, healthy ? "healthy" : "unhealthy"), FakeBackendJson.Default.HealthBody, cancellationToken: context.RequestAborted).ConfigureAwait(false);
            return;
        }

        Interlocked.Increment(ref _requests);
        Interlocked.Increment(ref _inFlight);
        try
        {
            if (request.Path.Equals("/ws", StringComparison.OrdinalIgnoreCase) && context.WebSockets.IsWebSocketRequest)
            {
                await EchoWebSocketAsync(context).ConfigureAwait(false);
                return;
            }

            var behaviors = options.Behaviors;
            var behaviorContext = new BehaviorContext(context);
            Task Run(int index) => index < behaviors.Count
                ? behaviors[index].InvokeAsync(behaviorContext, () => Run(index + 1))
                : EchoAsync(behaviorContext, options.Name);
            await Run(0).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client gave up (or the connection was cut on purpose); nothing to answer.
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    /// <summary>The answer at the end of every behavior chain: the request as it arrived, padded if a behavior asks.</summary>
    private static async Task EchoAsync(BehaviorContext context, string name)
    {
        var request = context.Http.Request;
        var headers = new SortedDictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (header, value) in request.Headers)
        {
            headers[header] = value.ToString();
        }

        var body = JsonSerializer.SerializeToUtf8Bytes(new EchoBody(name, request.Method, request.Path.Value ?? "/", request.QueryString.Value ?? "", headers), FakeBackendJson.Default.EchoBody);
        if (body.Length < context.PadBodyTo)
        {
            var padded = new byte[context.PadBodyTo];
            body.CopyTo(padded, 0);
            padded.AsSpan(body.Length).Fill((byte)' '); // trailing whitespace: still the same JSON
            body = padded;
        }

        var response = context.Http.Response;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = body.Length;
        await response.Body.WriteAsync(body, context.Aborted).ConfigureAwait(false);
    }

    private static async Task EchoWebSocketAsync(HttpContext context)
    {
        using var socket = await context.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var received = await socket.ReceiveAsync(buffer, context.RequestAborted).ConfigureAwait(false);
            if (received.MessageType == WebSocketMessageType.Close)
            {
                await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", context.RequestAborted).ConfigureAwait(false);
                return;
            }

            await socket.SendAsync(buffer.AsMemory(0, received.Count), received.MessageType, received.EndOfMessage, context.RequestAborted).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _lifecycle.Dispose();
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
