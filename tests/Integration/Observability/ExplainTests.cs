using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Balancer.Tests.Kit;
using FakeBackends;
using FakeBackends.Behaviors;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Observability;

/// <summary>"Why this backend": the decision trace a request asks for with <c>X-Balancer-Explain: 1</c>.</summary>
public sealed class ExplainTests(ITestOutputHelper output)
{
    private const string Explain = "X-Balancer-Explain";
    private const string Token = "expl-t0ken";

    [Fact]
    public async Task LeastConnections_TheResponseSaysWhyThisBackend_WhoWasExcludedAndWhy_AndTheFullTraceIsServedByItsId()
    {
        await using var backends = await Backends.StartAsync(4, (_, o) => o with { Behaviors = BehaviorCatalog.From("{ hang: 1, path: /hold }") });
        await using var lb = await TestBalancer.StartAsync($$"""
            BalanceHub: { algorithm: least-connections }
            proxy: { trusted-proxies: [127.0.0.1] }
            health-checks: { enabled: true, interval: 200ms, timeout: 2s, fall: 1 }
            observability: { explain: { enabled: true } }
            backends:
              - address: {{backends[0].Address}}
              - { address: "{{backends[1].Address}}", weight: 0 }
              - address: {{backends[2].Address}}
              - address: {{backends[3].Address}}
            """, output);
        await backends[2].KillAsync();
        await Eventually.TrueAsync(async () => (await lb.Admin.GetStringAsync("/lb-metrics")).Contains($"\"url\":\"{backends[2].Origin}\",\"state\":\"unhealthy\"", StringComparison.Ordinal), "the killed backend to be marked down");
        using var hold = new CancellationTokenSource();
        var held = lb.Client.GetAsync("/hold", hold.Token);
        await Eventually.TrueAsync(async () => await InFlightAsync(lb) == 1, "one request held at a backend");
        var busy = (await BackendsAsync(lb)).Single(b => b.GetProperty("activeConnections").GetInt32() == 1).GetProperty("address").GetString()!;
        var idle = new[] { backends[0].Origin, backends[3].Origin }.Single(b => b != busy);

        var (response, compact) = await AskAsync(lb, "/shop?item=1");
        using var _ = response;
        var echo = (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain(echo.Headers.Keys, h => h.Equals(Explain, StringComparison.OrdinalIgnoreCase)); // not the backend's business
        Assert.Matches("^id=[0-9a-f]{32}; pool=default; available=2/4; ", compact);
        Assert.Contains($"{backends[1].Origin} weight 0", compact, StringComparison.Ordinal);
        Assert.Matches($@"{Regex(backends[2].Origin)} unhealthy since \d{{4}}-\d\d-\d\dT", compact);
        Assert.Contains($"try 1={idle} (least-connections: {idle} had 0 in flight, {busy} 1)", compact, StringComparison.Ordinal);

        var id = compact[3..compact.IndexOf(';', StringComparison.Ordinal)];
        var trace = await CompleteTraceAsync(lb, id);
        Assert.Equal("GET", trace.GetProperty("method").GetString());
        Assert.Equal("/shop", trace.GetProperty("path").GetString());
        Assert.Equal("127.0.0.1", trace.GetProperty("client").GetString());
        Assert.Equal("default", trace.GetProperty("pool").GetString());
        Assert.Equal("least-connections", trace.GetProperty("algorithm").GetString());
        Assert.Equal(200, trace.GetProperty("status").GetInt32());
        var candidates = trace.GetProperty("candidates").EnumerateArray().ToDictionary(c => c.GetProperty("backend").GetString()!);
        Assert.Equal(4, candidates.Count);
        Assert.True(candidates[idle].GetProperty("available").GetBoolean());
        Assert.Equal(1, candidates[busy].GetProperty("inFlight").GetInt32());
        Assert.Equal("weight 0", candidates[backends[1].Origin].GetProperty("excluded").GetString());
        var unhealthy = candidates[backends[2].Origin].GetProperty("excluded").GetString()!;
        Assert.StartsWith("unhealthy since ", unhealthy, StringComparison.Ordinal);
        Assert.Contains("connect", unhealthy, StringComparison.OrdinalIgnoreCase); // the probe that failed, in its words
        var attempt = Assert.Single(trace.GetProperty("tries").EnumerateArray());
        Assert.Equal(idle, attempt.GetProperty("picked").GetString());
        Assert.Equal(idle, attempt.GetProperty("sentTo").GetString());
        Assert.Equal("success", attempt.GetProperty("outcome").GetString());
        Assert.Equal(2, attempt.GetProperty("candidates").GetInt32()); // the held one and the idle one: the two available
        Assert.Equal("off", attempt.GetProperty("affinity").GetString());

        using var list = JsonDocument.Parse(await lb.Admin.GetStringAsync("/explain"));
        Assert.Equal(id, list.RootElement[0].GetProperty("id").GetString());
        Assert.Equal(idle, list.RootElement[0].GetProperty("backend").GetString());

        await hold.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => held);
    }

    [Fact]
    public async Task ARetriedTry_SaysWhyItWasRetried_AndWhereTheRequestWentNext()
    {
        await using var backends = await Backends.StartAsync(3, (i, o) => i == 0 ? o with { Behaviors = BehaviorCatalog.From("fail: { status: 503 }") } : o);
        await using var lb = await TestBalancer.StartAsync($$"""
            BalanceHub: { algorithm: round-robin }
            proxy: { trusted-proxies: [127.0.0.1] }
            health-checks: { enabled: false }
            outlier-detection: { enabled: false }
            retries: { on-status: [503] }
            observability: { explain: { enabled: true } }
            """ + "\n" + TestBalancer.BackendsYaml(backends.All), output);

        var compacts = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var (response, compact) = await AskAsync(lb, "/r");
            using var _ = response;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            compacts.Add(compact);
        }

        var retried = Assert.Single(compacts, c => c.Contains(" retried: ", StringComparison.Ordinal));
        output.WriteLine(retried);
        Assert.Contains($"try 1={backends[0].Origin} (round-robin: next in the rotation over 3 in pool order", retried, StringComparison.Ordinal);
        Assert.Contains(" retried: answered 503; try 2=", retried, StringComparison.Ordinal);
        Assert.Contains("(retry: of the backends not tried yet, two drawn at random and the one with fewer in flight)", retried, StringComparison.Ordinal);

        var trace = await CompleteTraceAsync(lb, retried[3..retried.IndexOf(';', StringComparison.Ordinal)]);
        var tries = trace.GetProperty("tries").EnumerateArray().ToList();
        Assert.Equal(2, tries.Count);
        Assert.Equal((backends[0].Origin, "status_5xx", 503, "answered 503"), (tries[0].GetProperty("sentTo").GetString(), tries[0].GetProperty("outcome").GetString(), tries[0].GetProperty("status").GetInt32(), tries[0].GetProperty("retried").GetString()));
        Assert.Equal(("success", 200), (tries[1].GetProperty("outcome").GetString(), tries[1].GetProperty("status").GetInt32()));
        Assert.Equal((3, 2), (tries[0].GetProperty("candidates").GetInt32(), tries[1].GetProperty("candidates").GetInt32())); // the retry: the two not tried
        Assert.NotEqual(backends[0].Origin, tries[1].GetProperty("sentTo").GetString());
        Assert.Equal(JsonValueKind.Null, tries[1].GetProperty("retried").ValueKind);
    }

    [Fact]
    public async Task ATryThatTimedOut_Is504InTheTrace_AsTheClientSawIt()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("hang") });
        await using var lb = await TestBalancer.StartAsync(
            "proxy: { response-headers-timeout: 300ms, trusted-proxies: [127.0.0.1] }\nobservability: { explain: { enabled: true } }\n" + TestBalancer.BackendsYaml(backends.All), output);

        var (response, compact) = await AskAsync(lb, "/slow");
        using var _ = response;

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains($"try 1={backends[0].Origin} (round-robin: the only backend available) -> timeout 504", compact, StringComparison.Ordinal);
        var trace = await CompleteTraceAsync(lb, Id(compact));
        var attempt = Assert.Single(trace.GetProperty("tries").EnumerateArray());
        Assert.Equal(("timeout", 504), (attempt.GetProperty("outcome").GetString(), attempt.GetProperty("status").GetInt32()));
        Assert.Equal(504, trace.GetProperty("status").GetInt32());
        Assert.Contains(trace.GetProperty("notes").EnumerateArray(), n => n.GetString()!.StartsWith("try 1 failed and was not retried: no backend is left", StringComparison.Ordinal));
    }

    [Fact]
    public async Task OnlyTrustedOrTokenBearingClients_AreExplained_AndNeitherHeaderReachesTheBackend()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync($$"""
            admin: { token: {{Token}} }
            proxy: { trusted-proxies: [127.0.0.9] }
            observability: { explain: { enabled: true, keep: 2 } }
            """ + "\n" + TestBalancer.BackendsYaml(backends.All), output);
        lb.Admin.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);

        var untrusted = await SendAsync(lb, IPAddress.Loopback, token: null);
        var wrongToken = await SendAsync(lb, IPAddress.Loopback, token: "guess");
        var withToken = await SendAsync(lb, IPAddress.Loopback, token: Token);
        var trusted = await SendAsync(lb, IPAddress.Parse("127.0.0.9"), token: null);

        Assert.Null(untrusted.Compact);
        Assert.Null(wrongToken.Compact);
        Assert.NotNull(withToken.Compact);
        Assert.NotNull(trusted.Compact);
        foreach (var (_, forwarded) in new[] { untrusted, wrongToken, withToken, trusted })
        {
            Assert.DoesNotContain(forwarded, h => h.Equals(Explain, StringComparison.OrdinalIgnoreCase) || h.Equals("X-Balancer-Token", StringComparison.OrdinalIgnoreCase));
        }

        // Two kept: the third explained request pushes the first out.
        var third = await SendAsync(lb, IPAddress.Parse("127.0.0.9"), token: null);
        using var gone = await lb.Admin.GetAsync($"/explain/{Id(withToken.Compact!)}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        Assert.Contains("only the last 2 are (observability.explain.keep)", await gone.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("127.0.0.9", (await CompleteTraceAsync(lb, Id(third.Compact!))).GetProperty("client").GetString());

        // The traces are the admin API's: they need its token.
        using var anonymous = new HttpClient { BaseAddress = lb.Running.AdminUri };
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"/explain/{Id(third.Compact!)}")).StatusCode);
    }

    [Fact]
    public async Task Off_ByDefault_NoTrace_NeitherHeaderReachesTheBackend_AndTheEndpointSaysHowToTurnItOn()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("proxy: { trusted-proxies: [127.0.0.1] }\n" + TestBalancer.BackendsYaml(backends.All), output);

        var (compact, forwarded) = await SendAsync(lb, IPAddress.Loopback, token: "an-admin-token-is-never-a-backends-business");

        Assert.Null(compact);
        Assert.DoesNotContain(forwarded, h => h.Equals(Explain, StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(forwarded, h => h.Equals("X-Balancer-Token", StringComparison.OrdinalIgnoreCase));
        using var endpoint = await lb.Admin.GetAsync("/explain/0af7651916cd43dd8448eb211c80319c");
        Assert.Equal(HttpStatusCode.NotFound, endpoint.StatusCode);
        Assert.Contains("observability.explain.enabled", await endpoint.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task HashingAlgorithms_NameTheKey_TheHashAndWhereItLands_KeepingAHeadersValueOutOfTheResponse()
    {
        await using var backends = await Backends.StartAsync(4);
        await using var lb = await TestBalancer.StartAsync($$"""
            proxy: { trusted-proxies: [127.0.0.0/8] }
            observability: { explain: { enabled: true } }
            pools:
              - { name: users, paths: [/users], algorithm: consistent-hash, hash-key: "header:X-User", backends: [ { address: "{{backends[0].Address}}" }, { address: "{{backends[1].Address}}" } ] }
              - { name: clients, paths: [/clients], algorithm: ip-hash, backends: [ { address: "{{backends[2].Address}}" }, { address: "{{backends[3].Address}}" } ] }
            """, output);

        var (userResponse, userCompact) = await AskAsync(lb, "/users/me", user: "alice-secret-session");
        userResponse.Dispose();
        Assert.Matches(@"\(consistent-hash: key header:X-User -> hash [0-9a-f]{16} -> ring point \d+ of \d+ -> http://127\.0\.0\.1:\d+\)", userCompact);
        Assert.DoesNotContain("alice", userCompact, StringComparison.Ordinal);
        var userTry = Assert.Single((await CompleteTraceAsync(lb, Id(userCompact))).GetProperty("tries").EnumerateArray());
        Assert.Equal("alice-secret-session", userTry.GetProperty("key").GetString());

        var (clientCompact, _) = await SendAsync(lb, IPAddress.Parse("127.0.0.4"), token: null, path: "/clients/x");
        output.WriteLine(clientCompact);
        Assert.Matches(@"\(ip-hash: client 127\.0\.0\.4 -> hash [0-9a-f]{16} -> Maglev slot \d+ of \d+ -> http://127\.0\.0\.1:\d+\)", clientCompact!);
        Assert.Contains("pool=clients", clientCompact, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Restrictions_SayWhetherAPathOrTheClientKeptABackendOut()
    {
        await using var backends = await Backends.StartAsync(4);
        await using var lb = await TestBalancer.StartAsync($$"""
            proxy: { trusted-proxies: [127.0.0.1] }
            observability: { explain: { enabled: true } }
            backends:
              - { address: "{{backends[0].Address}}", clients: [10.0.0.0/8] }
              - { address: "{{backends[1].Address}}", paths: [/api] }
              - { address: "{{backends[2].Address}}" }
              - { address: "{{backends[3].Address}}", paths: [/web], clients: [10.0.0.0/8] }
            """, output);

        var (compact, _) = await SendAsync(lb, IPAddress.Loopback, token: null, path: "/other/page");

        var trace = await CompleteTraceAsync(lb, Id(compact!));
        var candidates = Excluded(trace);
        Assert.Equal("restricted by client: admits only 10.0.0.0/8, not 127.0.0.1", candidates[backends[0].Origin]);
        Assert.Equal("restricted by path: serves only /api", candidates[backends[1].Origin]);
        Assert.Null(candidates[backends[2].Origin]);
        Assert.Equal("restricted by path: serves only /web", candidates[backends[3].Origin]);
        Assert.Contains($"try 1={backends[2].Origin} (round-robin: the only backend available)", compact, StringComparison.Ordinal);

        // /web is backends[3]'s alone, and it does not admit 127.0.0.1: 403, and the trace says which rule did what.
        var (refused, refusedCompact) = await AskAsync(lb, "/web/page");
        using var _ = refused;
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("available=0/4", refusedCompact, StringComparison.Ordinal);
        var refusedTrace = await CompleteTraceAsync(lb, Id(refusedCompact));
        candidates = Excluded(refusedTrace);
        Assert.Equal("restricted by client: admits only 10.0.0.0/8, not 127.0.0.1", candidates[backends[3].Origin]);
        // The catch-alls are out because a backend registered /web: by path, whatever clients they admit.
        Assert.StartsWith("restricted by path: serves only paths no backend registered", candidates[backends[0].Origin], StringComparison.Ordinal);
        Assert.StartsWith("restricted by path: serves only paths no backend registered", candidates[backends[2].Origin], StringComparison.Ordinal);
        Assert.Contains(refusedTrace.GetProperty("notes").EnumerateArray(), n => n.GetString() == "403: no backend serving /web/page admits the client 127.0.0.1");
        Assert.Empty(refusedTrace.GetProperty("tries").EnumerateArray());
    }

    private static Dictionary<string, string?> Excluded(JsonElement trace) =>
        trace.GetProperty("candidates").EnumerateArray().ToDictionary(c => c.GetProperty("backend").GetString()!, c => c.GetProperty("excluded").GetString());

    /// <summary>GET <paramref name="path"/> from 127.0.0.1 asking for the trace: the response (the caller's to dispose) and its compact trace.</summary>
    private async Task<(HttpResponseMessage Response, string Compact)> AskAsync(TestBalancer lb, string path, string? user = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add(Explain, "1");
        if (user is not null)
        {
            request.Headers.Add("X-User", user);
        }

        var response = await lb.Client.SendAsync(request);
        var compact = Assert.Single(response.Headers.GetValues(Explain));
        output.WriteLine(compact);
        return (response, compact);
    }

    private static string Id(string compact) => compact[3..compact.IndexOf(';', StringComparison.Ordinal)];

    private static string Regex(string text) => System.Text.RegularExpressions.Regex.Escape(text);

    /// <summary>The full trace, once its request is over (the client can have the response a moment before the balancer is done with it).</summary>
    private static async Task<JsonElement> CompleteTraceAsync(TestBalancer lb, string id)
    {
        JsonElement trace = default;
        await Eventually.TrueAsync(async () =>
        {
            using var response = await lb.Admin.GetAsync($"/explain/{id}");
            response.EnsureSuccessStatusCode();
            trace = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
            return trace.GetProperty("complete").GetBoolean();
        }, $"the trace {id} to be complete");
        return trace;
    }

    private static async Task<List<JsonElement>> BackendsAsync(TestBalancer lb)
    {
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        return [.. json.RootElement.EnumerateArray().Select(b => b.Clone())];
    }

    private static async Task<int> InFlightAsync(TestBalancer lb) => (await BackendsAsync(lb)).Sum(b => b.GetProperty("activeConnections").GetInt32());

    /// <summary>An explained GET from the client address <paramref name="from"/>: the response's compact trace, and the headers the backend got.</summary>
    private static async Task<(string? Compact, IReadOnlyCollection<string> Forwarded)> SendAsync(TestBalancer lb, IPAddress from, string? token, string path = "/")
    {
        using var client = lb.ClientFrom(from);
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add(Explain, "1");
        if (token is not null)
        {
            request.Headers.Add("X-Balancer-Token", token);
        }

        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echo = (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!;
        return (response.Headers.TryGetValues(Explain, out var values) ? values.Single() : null, echo.Headers.Keys.ToList());
    }
}
