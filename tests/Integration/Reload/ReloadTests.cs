using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Balancer.Tests.Kit;
using FakeBackends;
using FakeBackends.Behaviors;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Reload;

/// <summary>POST /reload (and the file watch): validate first, then pools, backends, weights and routes live, in-flight work untouched.</summary>
public sealed class ReloadTests(ITestOutputHelper output)
{
    private static async Task<(HttpStatusCode Status, JsonElement Body)> ReloadAsync(TestBalancer lb, string yaml)
    {
        await File.WriteAllTextAsync(Path.Combine(lb.Directory, "config.yaml"), yaml);
        using var response = await lb.Admin.PostAsync("/reload", null);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static async Task<string> ServerAsync(TestBalancer lb, string path = "/", string? host = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (host is not null)
        {
            request.Headers.Host = host;
        }

        using var response = await lb.Client.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server;
    }

    private static List<string> Strings(JsonElement body, string name) => [.. body.GetProperty(name).EnumerateArray().Select(e => e.GetString()!)];

    [Fact]
    public async Task AFileWithMistakes_ChangesNothing_AndSaysWhatIsWrong()
    {
        await using var backends = await Backends.StartAsync(2);
        var yaml = $$"""
            health-checks: { enabled: false }
            backends: [ { address: "{{backends[0].Address}}" } ]
            """;
        await using var lb = await TestBalancer.StartAsync(yaml, output);

        var (status, body) = await ReloadAsync(lb, $$"""
            health-checks: { enabled: false }
            backends: [ { address: "{{backends[1].Address}}", weight: lots } ]
            routes: [ { pool: nowhere } ]
            """);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.False(body.GetProperty("applied").GetBoolean());
        Assert.Equal(
            ["backends[0].weight (line 2): lots is not a weight (0-1000000)", "routes[0].pool (line 3): nowhere is not a pool (pools: default)"],
            Strings(body, "errors"));
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("b1", await ServerAsync(lb));
        }

        Assert.Contains(lb.Log.Lines, l => l.Contains("Configuration reload (POST /reload) refused, nothing changed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Weights_Pools_Routes_AndStaticBackends_ChangeLive_AndRegistrationsAreKept()
    {
        await using var backends = await Backends.StartAsync(4);
        await using var lb = await TestBalancer.StartAsync($$"""
            BalanceHub: { algorithm: weighted-round-robin }
            health-checks: { enabled: false }
            backends:
              - { address: "{{backends[0].Address}}" }
              - { address: "{{backends[1].Address}}" }
            """, output);
        (await lb.Admin.PostAsJsonAsync("/backends", new { address = backends[2].Origin, weight = 0 })).EnsureSuccessStatusCode();

        var (status, body) = await ReloadAsync(lb, $$"""
            BalanceHub: { algorithm: weighted-round-robin }
            health-checks: { enabled: false }
            backends:
              - { address: "{{backends[0].Address}}" }
              - { address: "{{backends[1].Address}}", weight: 3 }
            pools:
              - name: admin
                backends: [ { address: "{{backends[3].Address}}" } ]
            routes:
              - { pool: admin, hosts: [admin.example.com] }
            """);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("applied").GetBoolean());
        Assert.Contains("backends[1].weight", Strings(body, "changed"));
        Assert.Contains("routes[0].pool", Strings(body, "changed"));
        Assert.Empty(Strings(body, "restartNeeded"));
        var split = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            split.Add(await ServerAsync(lb));
        }

        Assert.Equal((2, 6), (split.Count(s => s == "b1"), split.Count(s => s == "b2")));
        Assert.Equal("b4", await ServerAsync(lb, host: "admin.example.com"));
        // The registration (weight 0) is still there, and still the API's.
        using var registered = await lb.Admin.GetAsync($"/backends/{Uri.EscapeDataString(backends[2].Origin)}");
        Assert.Equal(HttpStatusCode.OK, registered.StatusCode);

        // A static backend taken out of the file is gone; the route and pool taken out too.
        (status, _) = await ReloadAsync(lb, $$"""
            BalanceHub: { algorithm: weighted-round-robin }
            health-checks: { enabled: false }
            backends: [ { address: "{{backends[0].Address}}" } ]
            """);
        Assert.Equal(HttpStatusCode.OK, status);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("b1", await ServerAsync(lb));
            Assert.Equal("b1", await ServerAsync(lb, host: "admin.example.com"));
        }
    }

    [Fact]
    public async Task StaticBackendsAReloadAddsAndRemoves_AreOnTheEventFeed()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync($$"""
            health-checks: { enabled: false }
            backends: [ { address: "{{backends[0].Address}}" } ]
            """, output);
        var feed = lb.Running.App.Services.GetRequiredService<Balancer.Observability.EventFeed>();
        var before = feed.Since(0).Select(e => e.Id).DefaultIfEmpty(0).Max();

        Assert.Equal(HttpStatusCode.OK, (await ReloadAsync(lb, $$"""
            health-checks: { enabled: false }
            backends: [ { address: "{{backends[1].Address}}", weight: 2 } ]
            """)).Status);

        var events = feed.Since(before).Select(e => (e.Kind, e.Backend)).ToList();
        Assert.Contains(("registered", backends[1].Origin), events);
        Assert.Contains(("removed", backends[0].Origin), events);
    }

    [Fact]
    public async Task InFlightRequests_AndWebSockets_SurviveAReload()
    {
        // The first backend holds its answer until the test lets it go: the request is in flight across the whole reload.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var held = await ScriptedBackend.StartAsync(async (context, _) =>
        {
            await gate.Task;
            await context.Response.WriteAsync("held");
        });
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync($$"""
            health-checks: { enabled: false }
            backends: [ { address: "{{held.Address}}" } ]
            pools: [ { name: ws, paths: [/ws], backends: [ { address: "{{backends[1].Address}}" } ] } ]
            """, output);
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{lb.Running.ProxyEndpoint.Port}/ws"), CancellationToken.None);
        var slow = lb.Client.GetAsync("/slow");
        await Eventually.TrueAsync(() => held.Seen("/slow") == 1, "the held request to reach its backend");

        // The held request's pool gets another backend and weight, the WebSocket's pool another algorithm, and a route.
        var (status, _) = await ReloadAsync(lb, $$"""
            health-checks: { enabled: false }
            backends: [ { address: "{{held.Address}}", weight: 2 }, { address: "{{backends[0].Address}}" } ]
            pools: [ { name: ws, algorithm: least-connections, paths: [/ws], backends: [ { address: "{{backends[1].Address}}" } ] } ]
            routes: [ { pool: ws, path: /socket } ]
            """);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(slow.IsCompleted);

        gate.SetResult();
        using var answer = await slow;
        Assert.Equal((HttpStatusCode.OK, "held"), (answer.StatusCode, await answer.Content.ReadAsStringAsync()));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await socket.SendAsync("across"u8.ToArray(), WebSocketMessageType.Text, true, timeout.Token);
        var buffer = new byte[64];
        var received = await socket.ReceiveAsync(buffer, timeout.Token);
        Assert.Equal("across", Encoding.UTF8.GetString(buffer, 0, received.Count));
    }

    [Fact]
    public async Task ARouteWhosePatternAloneChanges_MatchesTheNewPattern()
    {
        await using var backends = await Backends.StartAsync(2);
        string Yaml(string regex) => $$"""
            health-checks: { enabled: false }
            backends: [ { address: "{{backends[0].Address}}" } ]
            pools: [ { name: numbers, backends: [ { address: "{{backends[1].Address}}" } ] } ]
            routes: [ { name: ids, pool: numbers, path: { regex: "{{regex}}" } } ]
            """;
        await using var lb = await TestBalancer.StartAsync(Yaml("^/a/[0-9]+$"), output);
        Assert.Equal(("b2", "b1"), (await ServerAsync(lb, "/a/1"), await ServerAsync(lb, "/b/1")));

        var (status, body) = await ReloadAsync(lb, Yaml("^/b/[0-9]+$"));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["routes[0].path.regex"], Strings(body, "changed"));
        Assert.Equal(("b1", "b2"), (await ServerAsync(lb, "/a/1"), await ServerAsync(lb, "/b/1")));
    }

    [Fact]
    public async Task APoolsRetriesOnStatus_ChangeLive()
    {
        // b1 answers 500 to everything, b2 answers: with 500 among on-status the request is retried on b2.
        await using var backends = await Backends.StartAsync(2, (i, o) => i == 0 ? o with { Behaviors = BehaviorCatalog.From("fail: 500") } : o);
        string Yaml(string statuses) => $$"""
            health-checks: { enabled: false }
            outlier-detection: { enabled: false }
            pools:
              - name: api
                paths: [/]
                retries: { attempts: 2, on-status: [{{statuses}}], budget-percent: 100 }
                backends: [ { address: "{{backends[0].Address}}" }, { address: "{{backends[1].Address}}" } ]
            """;
        await using var lb = await TestBalancer.StartAsync(Yaml("503"), output);
        async Task<int> FailuresAsync()
        {
            var failures = 0;
            for (var i = 0; i < 4; i++)
            {
                using var response = await lb.Client.GetAsync("/x");
                failures += response.IsSuccessStatusCode ? 0 : 1;
            }

            return failures;
        }

        Assert.Equal(2, await FailuresAsync()); // 500 is not retried: b1's half fail
        Assert.Equal(HttpStatusCode.OK, (await ReloadAsync(lb, Yaml("500, 503"))).Status);
        Assert.Equal(0, await FailuresAsync());
    }

    [Fact]
    public async Task APoolThatWouldGoWithoutItsRateLimit_IsRefused()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync($$"""
            rate-limit: { rate: 100/s }
            backends: [ { address: "{{backends[0].Address}}" } ]
            """, output);

        var (status, body) = await ReloadAsync(lb, $$"""
            rate-limit: { rate: 100/s }
            backends: [ { address: "{{backends[0].Address}}" } ]
            pools: [ { name: fresh, paths: [/fresh], backends: [ { address: "{{backends[1].Address}}" } ] } ]
            """);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(["pool fresh: its response cache or rate limit would be new, and those take a restart; nothing changed"], Strings(body, "errors"));
    }

    [Fact]
    public async Task HealthChecksTurnedOffByAReload_LetDownBackendsBackIn()
    {
        await using var backends = await Backends.StartAsync(2, (i, o) => i == 1 ? o with { Behaviors = BehaviorCatalog.From("unhealthy") } : o);
        string Yaml(bool checks) => $$"""
            health-checks: { enabled: {{(checks ? "true" : "false")}}, type: http, interval: 200ms }
            backends: [ { address: "{{backends[0].Address}}" }, { address: "{{backends[1].Address}}" } ]
            """;
        await using var lb = await TestBalancer.StartAsync(Yaml(true), output);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("b1", await ServerAsync(lb)); // b2 fails its probes (its /health says so) but answers requests
        }

        Assert.Equal(HttpStatusCode.OK, (await ReloadAsync(lb, Yaml(false))).Status);
        var servers = new HashSet<string>();
        for (var i = 0; i < 4; i++)
        {
            servers.Add(await ServerAsync(lb));
        }

        Assert.Equal(["b1", "b2"], servers.Order());
    }

    [Fact]
    public async Task SettingsThatTakeARestart_AreReported_AndLeftAsTheyRun()
    {
        await using var backends = await Backends.StartAsync(1);
        var backend = $$"""backends: [ { address: "{{backends[0].Address}}" } ]""";
        await using var lb = await TestBalancer.StartAsync($"proxy: {{ drain-timeout: 30s }}\n{backend}", output);

        var (status, body) = await ReloadAsync(lb, $"proxy: {{ drain-timeout: 5s }}\ndrain: {{ timeout: 10s }}\nretries: {{ attempts: 1 }}\n{backend}");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["drain.timeout", "proxy.drain-timeout"], Strings(body, "restartNeeded"));
        Assert.Equal(["retries.attempts"], Strings(body, "changed")); // retries are every pool's, and pools change live
        // Asked again, still reported: they are still as they were.
        (status, body) = await ReloadAsync(lb, $"proxy: {{ drain-timeout: 5s }}\ndrain: {{ timeout: 10s }}\nretries: {{ attempts: 1 }}\n{backend}");
        Assert.Equal(["drain.timeout", "proxy.drain-timeout"], Strings(body, "restartNeeded"));
    }

    [Fact]
    public async Task WithReloadWatch_WritingTheFile_Reloads()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync($$"""
            reload: { watch: true }
            health-checks: { enabled: false }
            backends: [ { address: "{{backends[0].Address}}" } ]
            """, output);
        Assert.Equal("b1", await ServerAsync(lb));

        await File.WriteAllTextAsync(Path.Combine(lb.Directory, "config.yaml"), $$"""
            reload: { watch: true }
            health-checks: { enabled: false }
            backends: [ { address: "{{backends[1].Address}}" } ]
            """);

        await Eventually.TrueAsync(async () => await ServerAsync(lb) == "b2", "the written file to be in force");
    }

    [Fact]
    public async Task Reload_NeedsTheToken_WhenOneIsSet()
    {
        await using var lb = await TestBalancer.StartAsync("admin: { token: s3cret-token-for-tests }", output);
        using (var response = await lb.Admin.PostAsync("/reload", null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, "/reload");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "s3cret-token-for-tests");
        using var authorized = await lb.Admin.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, authorized.StatusCode);
    }
}
