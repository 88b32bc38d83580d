using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Balancer.ControlPlane;
using Balancer.Tests.Kit;
using FakeBackends.Behaviors;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Observability;

/// <summary>A real Prometheus scrapes a balancer that has seen traffic, failures, an ejection and registrations.</summary>
public sealed class PrometheusScrapeTests(ITestOutputHelper output)
{
    private const string Token = "scrape-t0ken";

    private static readonly string[] Families =
    [
        // The balancer's own.
        "balancer_requests_total", "balancer_request_duration_seconds_bucket", "balancer_tries_total", "balancer_try_duration_seconds_bucket", "balancer_retries_total",
        "balancer_retry_budget_refusals_total", "balancer_backend_in_flight", "balancer_backend_health", "balancer_health_transitions_total",
        "balancer_outlier_ejections_total", "balancer_backend_ejected", "balancer_backend_weight", "balancer_backend_effective_weight",
        "balancer_backend_draining", "balancer_registrations_total", "balancer_control_plane_packets_total", "balancer_access_log_dropped_total",
        // Built in: ASP.NET Core, Kestrel, the backend HttpClient, the runtime, YARP.
        "http_server_request_duration_seconds_bucket", "kestrel_active_connections", "kestrel_queued_connections",
        "dotnet_gc_collections_total", "yarp_proxy_requests_started_total",
    ];

    /// <remarks>
    /// The balancer runs as a process of its own, as in production: ASP.NET Core's and Kestrel's meters are per
    /// process to an exporter, and this test process also hosts the fake backends' Kestrels.
    /// </remarks>
    [Fact]
    public async Task ARealPrometheus_ScrapesEverySeriesFamily_WithTheCountsOfTheTrafficSent()
    {
        await using var backends = await Backends.StartAsync(5, (i, o) => i == 1 ? o with { Behaviors = BehaviorCatalog.From("fail: { status: 500 }") } : o);
        var directory = Directory.CreateTempSubdirectory("lb-prometheus-").FullName;
        await File.WriteAllTextAsync(Path.Combine(directory, "config.yaml"), $$"""
            BalanceHub: { algorithm: round-robin }
            proxy: { bind: 127.0.0.1, slow-start: 1m }
            admin: { token: {{Token}} }
            health-checks: { enabled: true, interval: 200ms, timeout: 2s, fall: 2 }
            outlier-detection: { consecutive-failures: 2, base-ejection-time: 5m }
            retries: { on-status: [500] }
            backends:
              - address: {{backends[0].Address}}
              - address: {{backends[1].Address}}
              - address: {{backends[2].Address}}
            """);
        await using var process = BalancerProcess.Start(directory, "--port", "0", "--admin-port", "0", "--control-port", "0");
        var proxyPort = await process.WaitForListenerAsync("Proxy");
        var adminPort = await process.WaitForListenerAsync("Admin API");
        var controlPort = await process.WaitForListenerAsync("Control plane");
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{proxyPort}") };
        using var admin = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{adminPort}"), DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", Token) } };

        // Start counts only once every backend has passed a probe: on a busy machine a first probe can time out, and
        // the failing backend would then take none of the traffic whose retries and ejection this test counts.
        await Eventually.TrueAsync(async () => (await admin.GetStringAsync("/lb-metrics")).Contains("\"healthy_backends\":3,", StringComparison.Ordinal), "all three backends to be healthy");
        const int requests = 60;
        for (var i = 0; i < requests; i++)
        {
            using var _ = await client.GetAsync($"/r{i}");
        }

        await backends[2].KillAsync();
        await Eventually.TrueAsync(async () => (await admin.GetStringAsync("/lb-metrics")).Contains($"\"url\":\"{backends[2].Origin}\",\"state\":\"unhealthy\"", StringComparison.Ordinal), "the killed backend to be marked down");
        using (var created = await admin.PostAsJsonAsync("/backends", new { address = backends[3].Origin }))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        await using (var control = await ControlPlaneClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, controlPort)))
        {
            Assert.True((await control.SendAsync(new RegistrationRequest(ControlAction.Add, backends[4].Port, [], [], null))).Succeeded);
        }

        await using var prometheus = await PrometheusServer.StartAsync($"127.0.0.1:{adminPort}", token: Token);

        foreach (var family in Families)
        {
            try
            {
                await Eventually.TrueAsync(async () => (await prometheus.QueryAsync($"count({family})")).Count > 0, $"Prometheus to hold {family}");
            }
            catch (TimeoutException)
            {
                var held = await prometheus.QueryAsync("count by (__name__) ({__name__=~\".+\"})");
                throw new TimeoutException($"Prometheus holds no {family} (target {await prometheus.TargetAsync()}); it holds {string.Join(", ", held.Select(h => h.Labels["__name__"]))}");
            }
        }

        await Eventually.TrueAsync(async () => await SumAsync(prometheus, "balancer_requests_total") == requests, $"{requests} requests in balancer_requests_total");
        Assert.Equal(2, await SumAsync(prometheus, $"balancer_tries_total{{backend=\"{backends[1].Origin}\",outcome=\"status_5xx\"}}"));
        Assert.Equal(1, await SumAsync(prometheus, $"balancer_outlier_ejections_total{{backend=\"{backends[1].Origin}\"}}"));
        Assert.Equal(2, await SumAsync(prometheus, "balancer_retries_total{reason=\"status\"}"));
        Assert.Equal(0, await SumAsync(prometheus, "balancer_retry_budget_refusals_total"));
        Assert.Equal(1, await SumAsync(prometheus, $"balancer_health_transitions_total{{backend=\"{backends[2].Origin}\",state=\"down\"}}"));
        Assert.Equal(1, await SumAsync(prometheus, $"balancer_backend_health{{backend=\"{backends[2].Origin}\",state=\"unhealthy\"}}"));
        Assert.Equal(1, await SumAsync(prometheus, "balancer_registrations_total{source=\"api\",operation=\"register\",result=\"applied\"}"));
        Assert.Equal(1, await SumAsync(prometheus, "balancer_registrations_total{source=\"control-plane\",operation=\"register\",result=\"applied\"}"));
        Assert.Equal(1, await SumAsync(prometheus, "balancer_control_plane_packets_total{action=\"add\",result=\"applied\"}"));
        Assert.True(await SumAsync(prometheus, "yarp_proxy_requests_started_total") >= requests + 2);
        Assert.True(await SumAsync(prometheus, "http_server_request_duration_seconds_count{http_route=\"/{**rest}\"}") >= requests);
        await process.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task AStatusTheBudgetWillNotRetry_IsCountedAsARefusal_AndGoesToTheClient()
    {
        await using var backends = await Backends.StartAsync(2, (_, o) => o with { Behaviors = BehaviorCatalog.From("fail: { status: 503 }") });
        // A pool of its own, so no other balancer in this test process can add to its series.
        await using var lb = await TestBalancer.StartAsync($$"""
            BalanceHub: { algorithm: round-robin }
            retries: { budget-percent: 0 }
            outlier-detection: { enabled: false }
            pools:
              - name: refusals
                paths: [/r]
                backends: [{ address: "{{backends[0].Address}}" }, { address: "{{backends[1].Address}}" }]
            """, output);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await lb.Client.GetAsync("/r/x")).StatusCode);
        }

        var text = await lb.Admin.GetStringAsync("/metrics");
        var line = text.Split('\n').Single(l => l.StartsWith("balancer_retry_budget_refusals_total{", StringComparison.Ordinal) && l.Contains("pool=\"refusals\"", StringComparison.Ordinal));
        Assert.EndsWith(" 5", line, StringComparison.Ordinal);
        Assert.DoesNotContain(text.Split('\n'), l => l.StartsWith("balancer_retries_total{", StringComparison.Ordinal) && l.Contains("pool=\"refusals\"", StringComparison.Ordinal));
    }

    /// <summary>
    /// ASP.NET Core's and HttpClient's instruments that change on every request and repeat the balancer's own series
    /// are off by default (they cost the request path, and plain YARP pays nothing for them); their flags bring them back.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheFrameworksPerRequestInstruments_AreOffUnlessAskedFor(bool asked)
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync($$"""
            BalanceHub: { algorithm: round-robin }
            health-checks: { enabled: false }
            observability: { aspnetcore-request-metrics: {{(asked ? "true" : "false")}}, http-client-request-metrics: {{(asked ? "true" : "false")}} }
            backends: [{ address: "{{backends[0].Address}}" }]
            """, output);
        for (var i = 0; i < 3; i++)
        {
            (await lb.Client.GetAsync("/x")).EnsureSuccessStatusCode();
        }

        var families = (await lb.Admin.GetStringAsync("/metrics")).Split('\n').Where(l => !l.StartsWith('#')).Select(l => l.Split('{', ' ')[0]).ToHashSet();
        Assert.Contains("http_server_request_duration_seconds_bucket", families); // the one the dashboards are built on: always
        foreach (var family in new[] { "http_server_active_requests", "aspnetcore_routing_match_attempts_total", "http_client_open_connections", "http_client_request_duration_seconds_bucket" })
        {
            Assert.True(families.Contains(family) == asked, $"{family}: expected {(asked ? "present" : "absent")}");
        }
    }

    [Fact]
    public async Task Metrics_NeedTheToken_AndCanBeTurnedOff()
    {
        await using var withToken = await TestBalancer.StartAsync($"admin: {{ token: {Token} }}", output);
        await using var off = await TestBalancer.StartAsync("observability: { metrics: false }", output);

        using var refused = await withToken.Admin.GetAsync("/metrics");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", Token) } };
        using var allowed = await withToken.Admin.SendAsync(request);
        using var rebinding = new HttpRequestMessage(HttpMethod.Get, "/metrics") { Headers = { Host = "evil.example", Authorization = new AuthenticationHeaderValue("Bearer", Token) } };
        using var rebound = await withToken.Admin.SendAsync(rebinding);
        using var disabled = await off.Admin.GetAsync("/metrics");

        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Contains("# TYPE balancer_access_log_dropped_total counter", await allowed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, rebound.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, disabled.StatusCode);
    }


    private static async Task<double> SumAsync(PrometheusServer prometheus, string selector) =>
        (await prometheus.QueryAsync($"sum({selector})")) is [var only] ? only.Value : 0;
}
