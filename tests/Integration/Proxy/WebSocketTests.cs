using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using Balancer.Tests.Kit;
using Balancer.Observability;
using FakeBackends;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Proxy;

/// <summary>WebSockets through every algorithm, restrictions and persistence; counted; kept open across unrelated changes; closed at a drain's end.</summary>
public sealed class WebSocketTests(ITestOutputHelper output)
{
    /// <summary>A WebSocket to the fake backends' echo through the proxy, from <paramref name="from"/>, with <paramref name="cookie"/>.</summary>
    private static async Task<(ClientWebSocket Socket, string Backend)> ConnectAsync(TestBalancer lb, IPAddress? from = null, string? cookie = null)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        if (cookie is not null)
        {
            socket.Options.SetRequestHeader("Cookie", cookie);
        }

        using var invoker = new HttpMessageInvoker(lb.HandlerFrom(from ?? IPAddress.Loopback));
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{lb.Running.ProxyEndpoint.Port}/ws"), invoker, CancellationToken.None);
        return (socket, socket.HttpResponseHeaders!["X-Backend"].Single());
    }

    private static async Task<string> EchoAsync(ClientWebSocket socket, string text)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        var buffer = new byte[1024];
        var received = await socket.ReceiveAsync(buffer, timeout.Token);
        return Encoding.UTF8.GetString(buffer, 0, received.Count);
    }

    public static TheoryData<string> Algorithms => [.. Balancer.LoadBalancing.AlgorithmNames.All];

    [Theory]
    [MemberData(nameof(Algorithms))]
    public async Task WebSockets_AreProxied_ThroughEveryAlgorithm_AndCounted(string algorithm)
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync($"""
            BalanceHub: {"{"} algorithm: {algorithm} {"}"}
            {TestBalancer.BackendsYaml(backends.All)}
            """, output);
        // This balancer's own instruments (balancers in one test process share the meter's name, and so its exported series).
        var meter = lb.Running.App.Services.GetRequiredService<BalancerMetrics>().Meter;
        using var opened = new MetricCollector<long>(meter, "balancer.websockets");
        using var open = new MetricCollector<long>(meter, "balancer.websockets.open");

        var (socket, backend) = await ConnectAsync(lb);
        using (socket)
        {
            Assert.Contains(backend, new[] { "b1", "b2" });
            Assert.Equal("hello", await EchoAsync(socket, "hello"));
            Assert.Equal(1, open.GetMeasurementSnapshot().Sum(m => m.Value));
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        }

        await Eventually.TrueAsync(() => open.GetMeasurementSnapshot().Sum(m => m.Value) == 0, "the WebSocket to be counted closed");
        var measurement = Assert.Single(opened.GetMeasurementSnapshot());
        Assert.Equal((1, "default"), (measurement.Value, measurement.Tags["pool"]));
    }

    [Fact]
    public async Task WebSockets_FollowClientRestrictions_AndCookiePersistence()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync($$"""
            persistence: cookie
            backends:
              - { address: "{{backends[0].Address}}", clients: [127.0.0.2/32] }
              - { address: "{{backends[1].Address}}" }
              - { address: "{{backends[2].Address}}" }
            """, output);

        // b1 serves only 127.0.0.2: from 127.0.0.3, never b1.
        for (var i = 0; i < 4; i++)
        {
            var (socket, backend) = await ConnectAsync(lb, IPAddress.Parse("127.0.0.3"));
            using (socket)
            {
                Assert.NotEqual("b1", backend);
                Assert.Equal("x", await EchoAsync(socket, "x"));
            }
        }

        // A cookie from an ordinary request pins the WebSocket to the same backend.
        using var client = new HttpClient(new SocketsHttpHandler { UseCookies = false }) { BaseAddress = lb.Running.ProxyUri };
        using var first = await client.GetAsync("/");
        var pinned = (await first.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server;
        var cookie = first.Headers.GetValues("Set-Cookie").Single().Split(';')[0];
        for (var i = 0; i < 4; i++)
        {
            var (socket, backend) = await ConnectAsync(lb, cookie: cookie);
            using (socket)
            {
                Assert.Equal(pinned, backend);
            }
        }
    }

    [Fact]
    public async Task AnOpenWebSocket_SurvivesUnrelatedBackendsComingAndGoing()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync($$"""
            health-checks: { enabled: false }
            backends: [ { address: "{{backends[0].Address}}" } ]
            """, output);
        var (socket, backend) = await ConnectAsync(lb);
        using var _ = socket;
        Assert.Equal("b1", backend);

        for (var i = 1; i < 3; i++)
        {
            (await lb.Admin.PostAsJsonAsync("/backends", new { address = backends[i].Origin })).EnsureSuccessStatusCode();
            Assert.Equal($"still {i}", await EchoAsync(socket, $"still {i}"));
            (await lb.Admin.PutAsJsonAsync($"/backends/{Uri.EscapeDataString(backends[i].Origin)}", new { weight = 5 })).EnsureSuccessStatusCode();
            Assert.Equal(HttpStatusCode.NoContent, (await lb.Admin.DeleteAsync($"/backends/{Uri.EscapeDataString(backends[i].Origin)}")).StatusCode);
            Assert.Equal($"after {i}", await EchoAsync(socket, $"after {i}"));
        }

        Assert.Equal(WebSocketState.Open, socket.State);
    }

    [Fact]
    public async Task ADrainThatTimesOut_ClosesItsBackendsWebSockets_WithACloseFrame_AndLeavesOthersOpen()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync("""
            health-checks: { enabled: false }
            drain: { timeout: 1s }
            """, output);
        (await lb.Admin.PostAsJsonAsync("/backends", new { address = backends[0].Origin })).EnsureSuccessStatusCode();
        var (drained, first) = await ConnectAsync(lb);
        using var _ = drained;
        (await lb.Admin.PostAsJsonAsync("/backends", new { address = backends[1].Origin })).EnsureSuccessStatusCode();
        (await lb.Admin.PutAsJsonAsync($"/backends/{Uri.EscapeDataString(backends[0].Origin)}", new { weight = 0 })).EnsureSuccessStatusCode();
        var (other, second) = await ConnectAsync(lb);
        using var __ = other;
        Assert.Equal(("b1", "b2"), (first, second));

        Assert.Equal(HttpStatusCode.Accepted, (await lb.Admin.PostAsync($"/backends/{Uri.EscapeDataString(backends[0].Origin)}/drain", null)).StatusCode);

        var buffer = new byte[64];
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var received = await drained.ReceiveAsync(buffer, wait.Token);
        Assert.Equal(WebSocketMessageType.Close, received.MessageType);
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, drained.CloseStatus); // 1001: going away
        Assert.Equal("still here", await EchoAsync(other, "still here"));
    }
}
