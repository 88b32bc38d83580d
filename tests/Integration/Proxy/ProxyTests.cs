using System.Net;
using System.Net.Http.Json;
using Balancer.Tests.Kit;
using FakeBackends;
using FakeBackends.Behaviors;
using Testbed.Scenarios;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Proxy;

public sealed class ProxyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task RoundRobin_NineSequentialRequests_RotateThroughBackendsInConfigOrder()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { algorithm: round_robin }\n" + TestBalancer.BackendsYaml(backends.All), output);

        var servers = new List<string>();
        for (var i = 0; i < 9; i++)
        {
            servers.Add((await lb.GetEchoAsync($"/r/{i}")).Server);
        }

        Assert.Equal(["b1", "b2", "b3", "b1", "b2", "b3", "b1", "b2", "b3"], servers);
    }

    [Fact]
    public async Task LeastConnections_BackendHoldingARequest_GetsNoMoreUntilItFinishes()
    {
        // b1 holds whatever it gets for a minute; b2 and b3 answer at once.
        await using var backends = await Backends.StartAsync(3, (i, o) => i == 0 ? o with { Behaviors = BehaviorCatalog.From("latency: 1m") } : o);
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { algorithm: Least-Connected }\n" + TestBalancer.BackendsYaml(backends.All), output);
        using var abandon = new CancellationTokenSource();

        // Requests go one at a time: each is either answered (by b2 or b3) or seen arriving at b1, where it stays.
        var held = new List<Task>();
        var answeredBy = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            var atB1 = backends[0].RequestCount;
            var request = lb.Client.GetAsync($"/lc/{i}", abandon.Token);
            await Eventually.TrueAsync(() => request.IsCompleted || backends[0].RequestCount > atB1, $"request {i} to be answered or to reach b1");
            if (request.IsCompleted)
            {
                using var response = await request;
                answeredBy.Add((await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server);
            }
            else
            {
                held.Add(request);
            }
        }

        Assert.Equal(1, backends[0].RequestCount);
        _ = Assert.Single(held);
        Assert.Equal(29, answeredBy.Count);
        Assert.DoesNotContain("b1", answeredBy);
        Assert.Contains("b2", answeredBy);
        Assert.Contains("b3", answeredBy);
        await abandon.CancelAsync();
    }

    [Fact]
    public async Task ForwardedHeaders_FromUntrustedClient_AreReplacedNotBelieved()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(TestBalancer.BackendsYaml(backends.All), output);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/who");
        request.Headers.Add("X-Forwarded-For", "6.6.6.6");
        request.Headers.Add("X-Forwarded-Proto", "https");
        request.Headers.Add("X-Forwarded-Host", "evil.example");
        request.Headers.Add("Forwarded", "for=6.6.6.6");
        request.Headers.Add("X-Real-IP", "6.6.6.6");
        request.Headers.Host = "shop.example:8080";

        using var response = await lb.Client.SendAsync(request);
        var echo = (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!;

        Assert.Equal("127.0.0.1", echo.Headers["X-Forwarded-For"]);
        Assert.Equal("http", echo.Headers["X-Forwarded-Proto"]);
        Assert.Equal("shop.example:8080", echo.Headers["X-Forwarded-Host"]);
        Assert.False(echo.Headers.ContainsKey("Forwarded"));
        Assert.False(echo.Headers.ContainsKey("X-Real-IP"));
    }

    [Fact]
    public async Task ForwardedHeaders_FromTrustedProxy_AreAppendedTo()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("proxy: { trusted-proxies: [127.0.0.0/8] }\n" + TestBalancer.BackendsYaml(backends.All), output);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/who");
        request.Headers.Add("X-Forwarded-For", "203.0.113.7");
        request.Headers.Add("X-Forwarded-Proto", "https");
        request.Headers.Add("Forwarded", "for=203.0.113.7");

        using var response = await lb.Client.SendAsync(request);
        var echo = (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!;

        Assert.Equal("203.0.113.7, 127.0.0.1", echo.Headers["X-Forwarded-For"]);
        Assert.Equal("https, http", echo.Headers["X-Forwarded-Proto"]);
        Assert.Equal("for=203.0.113.7", echo.Headers["Forwarded"]);
    }

    [Fact]
    public async Task HopByHopRequestHeaders_AreNotForwarded()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(TestBalancer.BackendsYaml(backends.All), output);

        // Two requests on one connection; the second closes it so the whole exchange can be read to the end.
        var exchange = await RawHttp.SendAsync(lb.Running.ProxyEndpoint,
            "GET /hop HTTP/1.1\r\nHost: x\r\nConnection: X-Session-Secret\r\nX-Session-Secret: s3cr3t\r\n" +
            "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\n" +
            "X-Kept: yes\r\n\r\n" +
            "GET /end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200", exchange, StringComparison.Ordinal);
        var firstBody = exchange[..exchange.IndexOf("\"path\":\"/end\"", StringComparison.Ordinal)];
        Assert.Contains("\"X-Kept\":\"yes\"", firstBody, StringComparison.Ordinal);
        foreach (var hop in new[] { "X-Session-Secret", "s3cr3t", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "\"TE\"", "\"Connection\"" })
        {
            Assert.DoesNotContain(hop, firstBody[firstBody.IndexOf('{', StringComparison.Ordinal)..], StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task HopByHopResponseHeaders_AreNotReturnedToTheClient()
    {
        await using var backend = new RawHttp.Server(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Backend-Internal\r\nX-Backend-Internal: secret\r\n" +
            "Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-Kept: yes\r\n\r\nok");
        await using var lb = await TestBalancer.StartAsync($"backends: [ {{ address: \"{backend.Address}\" }} ]", output);

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
        Assert.True(response.Headers.Contains("X-Kept"));
        Assert.False(response.Headers.Contains("X-Backend-Internal"));
        Assert.False(response.Headers.Contains("Keep-Alive"));
        Assert.False(response.Headers.Contains("Proxy-Authenticate"));
    }

    [Fact]
    public async Task NoBackend_Answers503WithRetryAfter()
    {
        await using var lb = await TestBalancer.StartAsync("proxy: { retry-after: 7s }", output);

        using var response = await lb.Client.GetAsync("/anything");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);
        Assert.Contains("no backend is available", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BackendRefusesConnections_Answers502()
    {
        // Without active checks: they would take the dead backend out before the first request (503, not 502).
        await using var lb = await TestBalancer.StartAsync($"health-checks: {{ enabled: false }}\nbackends: [ {{ address: \"http://127.0.0.1:{LoopbackPort.Next()}\" }} ]", output);

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Null(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task BackendSilentPastActivityTimeout_Answers504()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("latency: 1m") });
        await using var lb = await TestBalancer.StartAsync("proxy: { activity-timeout: 300ms }\n" + TestBalancer.BackendsYaml(backends.All), output);

        using var response = await lb.Client.GetAsync("/slow");

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
    }

    [Fact]
    public async Task BackendErrorStatus_IsPassedThroughUntouched()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("fail: 503") });
        await using var lb = await TestBalancer.StartAsync(TestBalancer.BackendsYaml(backends.All), output);

        using var response = await lb.Client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Null(response.Headers.RetryAfter);
        Assert.Equal("b1", (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server);
    }

    [Fact]
    public async Task Pools_PathPrefixesGoToTheirPool_OnSegmentBoundaries()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync($$"""
            backends: [ { address: "{{backends[0].Address}}" } ]
            pools:
              - name: api
                paths: [/api/v2]
                backends: [ { address: "{{backends[1].Address}}" } ]
            """, output);

        Assert.Equal("b2", (await lb.GetEchoAsync("/api/v2")).Server);
        Assert.Equal("b2", (await lb.GetEchoAsync("/api/v2/users?id=3")).Server);
        Assert.Equal("b1", (await lb.GetEchoAsync("/api/v2x")).Server);
        Assert.Equal("b1", (await lb.GetEchoAsync("/api")).Server);
        Assert.Equal("/api/v2/users", (await lb.GetEchoAsync("/api/v2/users")).Path);
    }

    [Fact]
    public async Task Pools_NestedPrefixes_LongestMatchWins()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync($$"""
            backends: [ { address: "{{backends[0].Address}}" } ]
            pools:
              - name: api
                paths: [/api]
                backends: [ { address: "{{backends[1].Address}}" } ]
              - name: api-v2
                paths: [/api/v2]
                backends: [ { address: "{{backends[2].Address}}" } ]
            """, output);

        Assert.Equal("b3", (await lb.GetEchoAsync("/api/v2/users")).Server);
        Assert.Equal("b3", (await lb.GetEchoAsync("/API/V2")).Server);
        Assert.Equal("b2", (await lb.GetEchoAsync("/api/v1")).Server);
        Assert.Equal("b2", (await lb.GetEchoAsync("/api")).Server);
        Assert.Equal("b1", (await lb.GetEchoAsync("/other")).Server);
    }

    [Fact]
    public async Task WeightZeroBackend_ReceivesNothing()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync($$"""
            backends:
              - { address: "{{backends[0].Address}}", weight: 0 }
              - { address: "{{backends[1].Address}}" }
            """, output);

        for (var i = 0; i < 6; i++)
        {
            Assert.Equal("b2", (await lb.GetEchoAsync()).Server);
        }
    }

    [Fact]
    public async Task RequestBodyAndQuery_ReachTheBackendIntact()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(TestBalancer.BackendsYaml(backends.All), output);

        using var response = await lb.Client.PostAsync("/orders?x=1&y=%20z", new StringContent("{\"a\":1}", System.Text.Encoding.UTF8, "application/json"));
        var echo = (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!;

        Assert.Equal("POST", echo.Method);
        Assert.Equal("/orders", echo.Path);
        Assert.Equal("?x=1&y=%20z", echo.Query);
        Assert.Equal("7", echo.Headers["Content-Length"]);
    }

    [Fact]
    public async Task RequestBodyOverLimit_IsRejectedWith413_BeforeAnyBackendSeesIt()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("proxy: { limits: { max-request-body-size: 1KB } }\n" + TestBalancer.BackendsYaml(backends.All), output);

        using var response = await lb.Client.PostAsync("/upload", new ByteArrayContent(new byte[4096]));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(0, backends[0].RequestCount);
    }

    [Fact]
    public async Task ChunkedRequestBodyOverLimit_IsRejectedWith413()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("proxy: { limits: { max-request-body-size: 1KB } }\n" + TestBalancer.BackendsYaml(backends.All), output);
        using var content = new StreamContent(new MemoryStream(new byte[64 * 1024]));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/upload") { Content = content };
        request.Headers.TransferEncodingChunked = true;

        using var response = await lb.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }
}
