using System.Net.Http.Json;
using Balancer.Configuration;
using Balancer.ControlPlane;
using Balancer.Hosting;
using FakeBackends;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Balancer.Tests.Kit;

/// <summary>
/// A real balancer in this process, on free loopback ports, configured from YAML like a user would,
/// with a client for its proxy and its admin API. Disposing stops it and deletes its files.
/// </summary>
public sealed class TestBalancer : IAsyncDisposable
{
    private TestBalancer(RunningBalancer running, string directory, BalancerOptions options, TestLog log)
    {
        Log = log;
        Running = running;
        Directory = directory;
        Options = options;
        Client = new HttpClient { BaseAddress = running.ProxyUri, Timeout = TimeSpan.FromSeconds(60) };
        Admin = new HttpClient { BaseAddress = running.AdminUri, Timeout = TimeSpan.FromSeconds(60) };
    }

    public RunningBalancer Running { get; }

    /// <summary>What the balancer logged.</summary>
    public TestLog Log { get; }

    /// <summary>The directory holding config.yaml and everything relative to it (logs, data).</summary>
    public string Directory { get; }

    public BalancerOptions Options { get; }

    /// <summary>A client whose base address is the proxy.</summary>
    public HttpClient Client { get; }

    /// <summary>A client whose base address is the admin API.</summary>
    public HttpClient Admin { get; }

    /// <summary>Where the control plane listens.</summary>
    public System.Net.IPEndPoint ControlPlane => Running.ControlPlaneEndpoint;

    /// <summary>Opens a control-plane connection, from <paramref name="from"/> if given (127.0.0.2, say).</summary>
    public Task<ControlPlaneClient> ConnectControlPlaneAsync(System.Net.IPAddress? from = null) => ControlPlaneClient.ConnectAsync(ControlPlane, from);

    /// <summary>A client of the proxy whose connections come from the address <paramref name="from"/> (127.0.0.2, ...).</summary>
    public HttpClient ClientFrom(System.Net.IPAddress from) =>
        new(HandlerFrom(from), disposeHandler: true) { BaseAddress = Running.ProxyUri, Timeout = TimeSpan.FromSeconds(60) };

    /// <summary>A handler whose connections go to the proxy from the address <paramref name="from"/> (for HttpClient and ClientWebSocket alike).</summary>
    public SocketsHttpHandler HandlerFrom(System.Net.IPAddress from) => new()
    {
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
            socket.Bind(new System.Net.IPEndPoint(from, 0));
            await socket.ConnectAsync(Running.ProxyEndpoint, cancellationToken);
            return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
        },
    };

    /// <summary>GETs through the proxy from the client address <paramref name="from"/>; status and the answering backend, if any.</summary>
    public async Task<(System.Net.HttpStatusCode Status, string? Server)> GetFromAsync(System.Net.IPAddress from, string path)
    {
        using var client = ClientFrom(from);
        using var response = await client.GetAsync(path);
        var server = response.Content.Headers.ContentType?.MediaType == "application/json"
            ? (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))?.Server
            : null;
        return (response.StatusCode, server);
    }

    /// <summary>
    /// Starts a balancer from <paramref name="yaml"/>, with every listener moved to a free port on 127.0.0.1
    /// (unless <paramref name="keepListeners"/>). Extra <paramref name="args"/> work as on the command line.
    /// </summary>
    public static Task<TestBalancer> StartAsync(string yaml, ITestOutputHelper? output = null, bool keepListeners = false, params string[] args) =>
        StartInAsync(System.IO.Directory.CreateTempSubdirectory("lb-test-").FullName, yaml, output, keepListeners, args);

    /// <summary>As <see cref="StartAsync(string, ITestOutputHelper?, bool, string[])"/>, with <paramref name="services"/> added after the balancer's own.</summary>
    public static Task<TestBalancer> StartAsync(string yaml, ITestOutputHelper? output, Action<IServiceCollection> services) =>
        StartInAsync(System.IO.Directory.CreateTempSubdirectory("lb-test-").FullName, yaml, output, keepListeners: false, services, []);

    /// <summary>As <see cref="StartAsync(string, ITestOutputHelper?, bool, string[])"/>, in <paramref name="directory"/>: a restart that finds the previous run's database.</summary>
    public static Task<TestBalancer> StartInAsync(string directory, string yaml, ITestOutputHelper? output = null, bool keepListeners = false, params string[] args) =>
        StartInAsync(directory, yaml, output, keepListeners, services: null, args);

    /// <summary>Starts a balancer from go-load-balancer's <c>loadbalancer.conf</c> format (<paramref name="conf"/>), listeners moved as above.</summary>
    public static Task<TestBalancer> StartConfAsync(string conf, ITestOutputHelper? output = null, params string[] args) =>
        StartInAsync(System.IO.Directory.CreateTempSubdirectory("lb-test-").FullName, conf, output, keepListeners: false, services: null, args, "loadbalancer.conf");

    private static async Task<TestBalancer> StartInAsync(string directory, string yaml, ITestOutputHelper? output, bool keepListeners, Action<IServiceCollection>? services, string[] args, string fileName = "config.yaml")
    {
        var path = Path.Combine(directory, fileName);
        await File.WriteAllTextAsync(path, yaml);
        string[] listeners = keepListeners ? [] : ["--port", "0", "--admin-port", "0", "--control-port", "0", "--set", "proxy.bind=127.0.0.1"];
        var loaded = ConfigLoader.Load(path, [.. listeners, .. args], new Dictionary<string, string>());
        if (loaded.Options is null)
        {
            throw new InvalidOperationException("Test configuration rejected:\n" + string.Join("\n", loaded.Errors));
        }

        var log = new TestLog(output);
        var running = await BalancerApp.StartAsync(loaded.Options, logging => logging.ClearProviders().AddProvider(log), services);
        return new TestBalancer(running, directory, loaded.Options, log);
    }

    /// <summary>YAML for a default pool of <paramref name="backends"/>, in order.</summary>
    public static string BackendsYaml(IEnumerable<FakeBackend> backends) =>
        "backends:\n" + string.Concat(backends.Select(b => $"  - address: {b.Address}\n"));

    /// <summary>GETs <paramref name="path"/> through the proxy and returns the backend's echo of it.</summary>
    public async Task<EchoBody> GetEchoAsync(string path = "/")
    {
        using var response = await Client.GetAsync(path);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!;
    }

    /// <summary>Stops the balancer and deletes its directory (unless <see cref="KeepDirectory"/>).</summary>
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Admin.Dispose();
        await Running.DisposeAsync();
        if (!KeepDirectory)
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Leave config and database behind on dispose, for a restart.</summary>
    public bool KeepDirectory { get; set; }
}
