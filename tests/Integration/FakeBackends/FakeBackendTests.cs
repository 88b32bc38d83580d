using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Balancer.Tests.Kit;
using FakeBackends;
using FakeBackends.Behaviors;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.FakeBackends;

/// <summary>What each behavior looks like on the wire, from a real client to a real Kestrel.</summary>
public sealed class FakeBackendTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Answers_NameTheBackend_InTheBodyAndAHeader()
    {
        await using var backends = await Backends.StartAsync(1);
        using var client = new HttpClient { BaseAddress = backends[0].Address };

        using var response = await client.GetAsync("/hello?x=1");

        Assert.Equal("b1", response.Headers.GetValues(FakeBackend.BackendHeader).Single());
        Assert.Contains("\"server\":\"b1\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResetBeforeHeaders_TheClientSeesAConnectionReset()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("reset") });
        using var client = new HttpClient { BaseAddress = backends[0].Address };

        var error = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("/"));

        Assert.Equal(SocketError.ConnectionReset, FindSocketError(error));
    }

    [Fact]
    public async Task ResetMidBody_TheClientGetsHeadersThenLosesTheBody()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("reset: { when: mid-body }") });
        using var client = new HttpClient { BaseAddress = backends[0].Address };

        using var response = await client.GetAsync("/", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var error = await Assert.ThrowsAnyAsync<Exception>(() => response.Content.ReadAsByteArrayAsync());
        Assert.Equal(SocketError.ConnectionReset, FindSocketError(error));
    }

    [Fact]
    public async Task CloseAfter_TheConnectionDiesAfterItsNthAnswer()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("close-after: 2") });
        using var socket = new TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, backends[0].Port);
        var stream = socket.GetStream();
        var request = Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: x\r\n\r\n");

        await stream.WriteAsync(request);
        var first = await ReadResponseAsync(stream);
        await stream.WriteAsync(request);
        var second = await ReadResponseAsync(stream);
        var after = await ReadToCloseAsync(stream);

        Assert.StartsWith("HTTP/1.1 200", first, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", second, StringComparison.Ordinal);
        Assert.DoesNotContain("Connection: close", second, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("", after); // closed by the server with no further word
    }

    [Fact]
    public async Task Trickle_TheBodyTakesAsLongAsTheBandwidthSays()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("trickle: { rate: 8KB, size: 4KB }") });
        using var client = new HttpClient { BaseAddress = backends[0].Address };
        var clock = Stopwatch.StartNew();

        var body = await client.GetByteArrayAsync("/");

        Assert.Equal(4096, body.Length);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.4), $"4 KB at 8 KB/s took {clock.Elapsed}"); // a bound below: a trickle is never faster
    }

    [Fact]
    public async Task SlowClose_AnswersAtOnce_ThenKeepsTheConnectionAWhile()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("slow-close: 1s") });
        using var socket = new TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, backends[0].Port);
        var stream = socket.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        var clock = Stopwatch.StartNew();

        var response = await ReadResponseAsync(stream);
        var answered = clock.Elapsed;
        await ReadToCloseAsync(stream);

        Assert.Contains("Connection: close", response, StringComparison.OrdinalIgnoreCase);
        Assert.True(clock.Elapsed - answered >= TimeSpan.FromSeconds(0.9), $"closed {clock.Elapsed - answered} after the answer");
    }

    [Fact]
    public async Task Flap_HealthFollowsThePeriods()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("flap: { up: 300ms, down: 300ms }") });
        using var client = new HttpClient { BaseAddress = backends[0].Address };
        var seen = new HashSet<HttpStatusCode>();

        await Eventually.TrueAsync(async () =>
        {
            using var response = await client.GetAsync("/health");
            seen.Add(response.StatusCode);
            return seen.Count == 2;
        }, "/health to answer both 200 and 503");

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable], seen.Order());
    }

    [Fact]
    public async Task WebSocket_EchoesEveryMessage()
    {
        await using var backends = await Backends.StartAsync(1);
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{backends[0].Port}/ws"), CancellationToken.None);

        var echoed = await EchoAsync(socket, "hello");

        Assert.Equal("hello", echoed);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
    }

    [Fact]
    public async Task WebSocket_ThroughTheBalancer()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(TestBalancer.BackendsYaml(backends.All), output);
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{lb.Running.ProxyEndpoint.Port}/ws"), CancellationToken.None);

        Assert.Equal("one", await EchoAsync(socket, "one"));
        Assert.Equal("two", await EchoAsync(socket, "two"));
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        Assert.Equal(WebSocketState.Closed, socket.State);
    }

    [Fact]
    public async Task KillRefuseRestart_ThePortFollows_AndInFlightRequestsFinishOnARefuse()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("latency: 500ms") });
        var backend = backends[0];
        using var client = new HttpClient { BaseAddress = backend.Address };

        var inFlight = client.GetAsync("/slow");
        await Eventually.TrueAsync(() => backend.InFlight == 1, "the request to arrive");
        await backend.RefuseAsync();
        Assert.Equal(HttpStatusCode.OK, (await inFlight).StatusCode);
        Assert.Equal(BackendState.Refusing, backend.State);
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("/"));

        await backend.RestartAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/")).StatusCode);

        var cut = client.GetAsync("/cut");
        await Eventually.TrueAsync(() => backend.InFlight == 1, "the request to arrive");
        await backend.KillAsync();
        await Assert.ThrowsAsync<HttpRequestException>(() => cut);
        Assert.Equal(BackendState.Killed, backend.State);
    }

    [Fact]
    public async Task Registered_ItLeavesOnStop_AndComesBackOnRestart()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        var backend = await FakeBackend.StartAsync(new FakeBackendOptions { Name = "r1", Register = lb.ControlPlane });
        await using var _ = backend;
        Assert.Equal("r1", (await lb.GetEchoAsync("/")).Server);

        await backend.StopAsync();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await lb.Client.GetAsync("/")).StatusCode);

        await backend.RestartAsync();
        Assert.Equal("r1", (await lb.GetEchoAsync("/")).Server);
    }

    private static async Task<string> EchoAsync(ClientWebSocket socket, string message)
    {
        await socket.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[1024];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var received = await socket.ReceiveAsync(buffer, timeout.Token);
        return Encoding.UTF8.GetString(buffer, 0, received.Count);
    }

    /// <summary>Reads one response with a Content-Length body.</summary>
    private static async Task<string> ReadResponseAsync(NetworkStream stream)
    {
        var text = new StringBuilder();
        var buffer = new byte[8192];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                return text.ToString();
            }

            text.Append(Encoding.ASCII.GetString(buffer, 0, read));
            var all = text.ToString();
            var end = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            var length = System.Text.RegularExpressions.Regex.Match(all, "Content-Length: (\\d+)", System.Text.RegularExpressions.RegexOptions.IgnoreCase);
            if (end >= 0 && length.Success && all.Length >= end + 4 + int.Parse(length.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))
            {
                return all;
            }
        }
    }

    private static async Task<string> ReadToCloseAsync(NetworkStream stream)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var reader = new StreamReader(stream, Encoding.ASCII, leaveOpen: true);
        try
        {
            return await reader.ReadToEndAsync(timeout.Token);
        }
        catch (IOException)
        {
            return ""; // reset rather than closed: still nothing more was said
        }
    }

    private static SocketError? FindSocketError(Exception? error)
    {
        for (; error is not null; error = error.InnerException)
        {
            if (error is SocketException socket)
            {
                return socket.SocketErrorCode;
            }
        }

        return null;
    }
}
