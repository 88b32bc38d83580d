using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Balancer.Tests.Kit;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Observability;

/// <summary>The seeds' stats shapes and the event stream, against real traffic, kills and registrations.</summary>
public sealed class StatsAndEventsTests(ITestOutputHelper output)
{
    private const string FastChecks = "BalanceHub: { algorithm: round-robin }\nhealth-checks: { enabled: true, interval: 200ms, timeout: 500ms, rise: 2, fall: 2 }\n";

    [Fact]
    public async Task ApiStats_AndLbMetrics_CountEveryRequest_AndEachBackendsShare_ThroughAKill()
    {
        await using var backends = await Backends.StartAsync(3);
        // Probes every 3 s, two failures to go down, no outlier detection: the requests sent right after the kill meet
        // the dead backend (round robin) and are retried.
        await using var lb = await TestBalancer.StartAsync(
            "BalanceHub: { algorithm: round-robin }\nhealth-checks: { enabled: true, interval: 3s, timeout: 500ms, rise: 2, fall: 2 }\noutlier-detection: { enabled: false }\n"
            + TestBalancer.BackendsYaml(backends.All), output);

        for (var i = 0; i < 30; i++)
        {
            (await lb.Client.GetAsync("/")).EnsureSuccessStatusCode();
        }

        using (var stats = JsonDocument.Parse(await lb.Admin.GetStringAsync("/api/stats")))
        {
            var root = stats.RootElement;
            Assert.Equal("round-robin", root.GetProperty("method").GetString());
            Assert.Equal("none", root.GetProperty("persistenceType").GetString());
            Assert.Equal(30, root.GetProperty("totalRequests").GetInt64());
            Assert.EndsWith("s", root.GetProperty("uptime").GetString(), StringComparison.Ordinal);
            var list = root.GetProperty("backends").EnumerateArray().ToList();
            Assert.Equal(3, list.Count);
            Assert.All(list, b =>
            {
                Assert.True(b.GetProperty("alive").GetBoolean());
                Assert.Equal(1, b.GetProperty("weight").GetInt32());
                Assert.Equal(10, b.GetProperty("requestCount").GetInt64());
                Assert.Equal(0, b.GetProperty("errorCount").GetInt64());
                Assert.Equal(33.33, b.GetProperty("loadPercentage").GetDouble());
                Assert.True(b.GetProperty("responseTimeAvg").GetDouble() > 0);
                Assert.Equal(10, b.GetProperty("durations").EnumerateArray().Sum(c => c.GetInt64()));
            });
        }

        await backends[2].KillAsync();
        // Before the probes notice, requests that reach the dead backend fail to connect and are retried elsewhere.
        for (var i = 0; i < 20; i++)
        {
            (await lb.Client.GetAsync("/")).EnsureSuccessStatusCode();
        }

        await Eventually.TrueAsync(async () => await StateAsync(lb, backends[2]) == "unhealthy", "the killed backend to be marked down");

        using var metrics = JsonDocument.Parse(await lb.Admin.GetStringAsync("/lb-metrics"));
        var m = metrics.RootElement;
        Assert.Equal(50, m.GetProperty("total_requests").GetInt64());
        Assert.Equal(50, m.GetProperty("success_requests").GetInt64());
        Assert.Equal(0, m.GetProperty("failed_requests").GetInt64());
        Assert.Equal(2, m.GetProperty("healthy_backends").GetInt32());
        Assert.Equal(3, m.GetProperty("total_backends").GetInt32());
        Assert.True(m.GetProperty("avg_latency_ms").GetDouble() > 0);
        Assert.True(m.GetProperty("uptime_seconds").GetInt64() >= 0);
        var byUrl = m.GetProperty("backends").EnumerateArray().ToDictionary(b => b.GetProperty("url").GetString()!);
        var dead = byUrl[backends[2].Origin];
        Assert.Equal("unhealthy", dead.GetProperty("state").GetString());
        // Every try the dead backend failed was retried once, on a live one: the client saw none of it.
        Assert.InRange(m.GetProperty("retry_attempts").GetInt64(), 1, 20);
        Assert.Equal(dead.GetProperty("total_failures").GetInt64(), m.GetProperty("retry_attempts").GetInt64());
        Assert.Equal(50 + m.GetProperty("retry_attempts").GetInt64(), byUrl.Values.Sum(b => b.GetProperty("total_requests").GetInt64()));
        Assert.All(byUrl.Values, b => Assert.InRange(b.GetProperty("last_checked").GetDateTimeOffset(), DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddSeconds(5)));
        Assert.Equal(0, byUrl[backends[0].Origin].GetProperty("total_failures").GetInt64());
    }

    [Fact]
    public async Task ApiHealth_IsOk_WhileEveryPoolCanServe_And503WithWhatIsMissing_WhenOneCannot()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync(FastChecks + $$"""
            backends:
              - address: {{backends[0].Address}}
            pools:
              - name: api
                paths: [/api]
                backends: [{ address: "{{backends[1].Address}}" }]
            """, output);

        using (var ok = await lb.Admin.GetAsync("/api/health"))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal("ok", (await ok.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        }

        await backends[1].KillAsync();
        await Eventually.TrueAsync(async () => (await lb.Admin.GetAsync("/api/health")).StatusCode == HttpStatusCode.ServiceUnavailable, "readiness to fail");

        var body = await (await lb.Admin.GetAsync("/api/health")).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("degraded", body.GetProperty("status").GetString());
        Assert.Equal(1, body.GetProperty("healthyBackends").GetInt32());
        var api = body.GetProperty("pools").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "api");
        Assert.Equal((0, 1), (api.GetProperty("healthy").GetInt32(), api.GetProperty("total").GetInt32()));
    }

    [Fact]
    public async Task Events_TellOfEveryHealthChange_Registration_AndDrain_AsTheyHappen_AndResumeFromLastEventId()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync(FastChecks + TestBalancer.BackendsYaml(backends.All.Take(2)), output);
        await using var events = await EventSubscription.OpenAsync(lb.Admin);

        var killed = DateTimeOffset.UtcNow;
        await backends[1].KillAsync();
        var down = await events.NextAsync("down", backends[1].Origin);
        Assert.Equal("default", down.Pool);
        Assert.Contains("2 failures in a row", down.Reason, StringComparison.Ordinal);
        Assert.InRange(down.Time, killed, killed.AddSeconds(30));

        await backends[1].RestartAsync();
        var up = await events.NextAsync("up", backends[1].Origin);
        Assert.Contains("2 successes in a row", up.Reason, StringComparison.Ordinal);

        (await lb.Admin.PostAsJsonAsync("/backends", new { address = backends[2].Origin, weight = 2 })).EnsureSuccessStatusCode();
        var registered = await events.NextAsync("registered", backends[2].Origin);
        Assert.Equal("registered through the admin API, weight 2", registered.Reason);
        await events.NextAsync("up", backends[2].Origin);

        using (var drain = await lb.Admin.PostAsync($"/backends/{Uri.EscapeDataString(backends[2].Origin)}/drain", null))
        {
            Assert.Equal(HttpStatusCode.Accepted, drain.StatusCode);
        }

        await events.NextAsync("drain-start", backends[2].Origin);
        await events.NextAsync("drain-end", backends[2].Origin);
        var removed = await events.NextAsync("removed", backends[2].Origin);

        // A client that reconnects with the id it last saw gets what it missed, and nothing before it.
        await using var resumed = await EventSubscription.OpenAsync(lb.Admin, lastEventId: up.Id);
        var replayed = await resumed.NextAsync("removed", backends[2].Origin);
        Assert.Equal(removed.Id, replayed.Id);
        Assert.DoesNotContain(resumed.Seen, e => long.Parse(e.Id!, System.Globalization.CultureInfo.InvariantCulture) <= long.Parse(up.Id!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("registered", resumed.Seen[0].Event);
    }

    [Fact]
    public async Task AnOpenEventStream_EndsWhenTheBalancerStops_InsteadOfHoldingTheShutdownToItsDrainTimeout()
    {
        await using var lb = await TestBalancer.StartAsync("proxy: { drain-timeout: 2m }", output);
        await using var events = await EventSubscription.OpenAsync(lb.Admin);

        // Far below the drain timeout, far above what stopping takes.
        await lb.Running.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }


    private static async Task<string?> StateAsync(TestBalancer lb, global::FakeBackends.FakeBackend backend)
    {
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/lb-metrics"));
        return json.RootElement.GetProperty("backends").EnumerateArray().Single(b => b.GetProperty("url").GetString() == backend.Origin).GetProperty("state").GetString();
    }
}
