using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using Balancer.Tests.Kit;
using FakeBackends;
using FakeBackends.Behaviors;
using Testbed.Scenarios;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Hosting;

public sealed class ShutdownTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Stop_WithSlowRequestInFlight_FinishesItAndRefusesNewConnections()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("latency: 2s") });
        await using var lb = await TestBalancer.StartAsync("proxy: { drain-timeout: 30s }\n" + TestBalancer.BackendsYaml(backends.All), output);

        var inFlight = lb.Client.GetAsync("/slow");
        await Eventually.TrueAsync(() => backends[0].RequestCount == 1, "the slow request to reach the backend");
        var stopping = lb.Running.StopAsync();

        using var response = await inFlight;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("b1", (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server);
        await stopping;
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await Assert.ThrowsAsync<SocketException>(() => socket.ConnectAsync(lb.Running.ProxyEndpoint));
    }

    [Fact]
    public async Task Sigterm_DrainsTheInFlightRequest_ThenExitsZero()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("latency: 2s") });
        var directory = Directory.CreateTempSubdirectory("lb-process-").FullName;
        await File.WriteAllTextAsync(Path.Combine(directory, "config.yaml"), "proxy: { bind: 127.0.0.1, drain-timeout: 30s }\n" + TestBalancer.BackendsYaml(backends.All));
        await using var process = BalancerProcess.Start(directory, "--port", "0", "--admin-port", "0", "--control-port", "0");
        var port = await process.WaitForListenerAsync("Proxy");
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };

        var inFlight = client.GetAsync($"http://127.0.0.1:{port}/slow");
        await Eventually.TrueAsync(() => backends[0].RequestCount == 1, "the slow request to reach the backend");
        process.Terminate();

        using var response = await inFlight;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, await process.WaitForExitAsync());
        output.WriteLine(process.StandardOutput);
        Assert.Contains("Shutting down", process.StandardOutput, StringComparison.Ordinal);
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task Sigterm_WithAWebSocketAndAHungRequestOpen_ClosesTheWebSocketWithACloseFrame_AndExitsZero()
    {
        await using var backends = await Backends.StartAsync(2, (i, o) => i == 1 ? o with { Behaviors = BehaviorCatalog.From("hang") } : o);
        var directory = Directory.CreateTempSubdirectory("lb-process-").FullName;
        await File.WriteAllTextAsync(Path.Combine(directory, "config.yaml"), $$"""
            proxy: { bind: 127.0.0.1, drain-timeout: 1s }
            BalanceHub: { access-logs-path: ./logs }
            backends: [ { address: "{{backends[0].Address}}" } ]
            pools: [ { name: stuck, paths: [/stuck], backends: [ { address: "{{backends[1].Address}}" } ] } ]
            """);
        await using var process = BalancerProcess.Start(directory, "--port", "0", "--admin-port", "0", "--control-port", "0");
        var port = await process.WaitForListenerAsync("Proxy");
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/ws"), CancellationToken.None);
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var hung = client.GetAsync($"http://127.0.0.1:{port}/stuck/forever");
        await Eventually.TrueAsync(() => backends[1].RequestCount == 1, "the hung request to reach its backend");

        process.Terminate();

        var buffer = new byte[64];
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var received = await socket.ReceiveAsync(buffer, wait.Token);
        Assert.Equal(System.Net.WebSockets.WebSocketMessageType.Close, received.MessageType);
        Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.EndpointUnavailable, socket.CloseStatus); // 1001: going away
        Assert.Equal(0, await process.WaitForExitAsync());
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => hung); // what was left is closed, not finished
        output.WriteLine(process.StandardOutput);
        Assert.DoesNotContain("Unhandled exception", process.StandardError, StringComparison.Ordinal);
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task BrokenConfig_ExitsWithCode2_ListingEveryError_BeforeBindingAnything()
    {
        var directory = Directory.CreateTempSubdirectory("lb-process-").FullName;
        var adminPort = LoopbackPort.Next();
        await File.WriteAllTextAsync(Path.Combine(directory, "config.yaml"), $"""
            Original-Server:
              allow: [10.0.0.0/99]
            BalanceHub:
              lisen: 5000
              tcpListener: 70000
              protocol: HTTP
            admin: {"{"} port: {adminPort} {"}"}
            """);
        using var probe = new TcpListener(IPAddress.Loopback, adminPort);

        await using var process = BalancerProcess.Start(directory);
        var exitCode = await process.WaitForExitAsync();

        output.WriteLine(process.StandardError);
        Assert.Equal(2, exitCode);
        Assert.Contains("Original-Server.allow[0] (line 2): 10.0.0.0/99 is not an IP address or CIDR", process.StandardError, StringComparison.Ordinal);
        Assert.Contains("BalanceHub.lisen (line 4): unknown key; did you mean listen?", process.StandardError, StringComparison.Ordinal);
        Assert.Contains("BalanceHub.tcpListener (line 5): 70000 is not a port", process.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("listening", process.StandardOutput, StringComparison.OrdinalIgnoreCase);
        probe.Start(); // the admin port was never taken
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task Help_PrintsOptionsAndExitsZero()
    {
        await using var process = BalancerProcess.Start(Path.GetTempPath(), "--help");

        Assert.Equal(0, await process.WaitForExitAsync());
        foreach (var option in new[] { "--config", "--algorithm", "--port", "--admin-port", "--set", "--debug" })
        {
            Assert.Contains(option, process.StandardOutput, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task PortAlreadyTaken_ExitsWithCode1_AndSaysWhy()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var directory = Directory.CreateTempSubdirectory("lb-process-").FullName;
        await File.WriteAllTextAsync(Path.Combine(directory, "config.yaml"), "proxy: { bind: 127.0.0.1 }");

        await using var process = BalancerProcess.Start(directory, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--admin-port", "0", "--control-port", "0");

        Assert.Equal(1, await process.WaitForExitAsync());
        Assert.Contains("Could not start", process.StandardError, StringComparison.Ordinal);
        Assert.Contains(port.ToString(System.Globalization.CultureInfo.InvariantCulture), process.StandardError, StringComparison.Ordinal);
        Directory.Delete(directory, recursive: true);
    }
}
