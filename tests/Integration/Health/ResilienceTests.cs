using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Balancer.Observability;
using Balancer.Tests.Kit;
using FakeBackends;
using FakeBackends.Behaviors;
using Testbed.Scenarios;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Health;

/// <summary>Dead, failing, hanging and recovering backends under a steady stream of requests: what clients see.</summary>
public sealed class ResilienceTests(ITestOutputHelper output)
{
    private const string FastChecks = "health-checks: { enabled: true, path: /health, interval: 200ms, timeout: 500ms, rise: 2, fall: 2 }\n";

    [Fact]
    public async Task KillOneOfThree_NoFailedGet_ItGetsNothingOnceDetected_ThenComesBackAndRampsUp()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync(
            FastChecks + "BalanceHub: { algorithm: round-robin, access-logs-path: ./logs }\nproxy: { slow-start: 3s }\n" + TestBalancer.BackendsYaml(backends.All), output);
        await using var stream = SteadyLoad.Start(lb.Client);
        await stream.MoreAsync(200);

        await backends[1].KillAsync();
        await Eventually.TrueAsync(async () => await HealthAsync(lb, backends[1]) == "unhealthy", "the killed backend to be marked unhealthy");
        var detected = DateTime.UtcNow;
        await Eventually.TrueAsync(() => stream.Outcomes.Count(o => o.Started > detected.AddSeconds(1.5)) > 100, "traffic well after detection");

        await backends[1].RestartAsync();
        await Eventually.TrueAsync(async () => await HealthAsync(lb, backends[1]) == "healthy", "the restarted backend to be re-admitted");
        var readmitted = DateTime.UtcNow;
        await Eventually.TrueAsync(() => stream.Outcomes.Count(o => o.Started > readmitted.AddSeconds(3.5)) > 300, "requests after the ramp");
        var outcomes = await stream.StopAsync();

        await lb.Running.StopAsync();
        var accessLog = await File.ReadAllLinesAsync(Path.Combine(lb.Directory, "logs", AccessLog.FileName));
        Assert.True(
            outcomes.All(o => o.Status == 200),
            "failed requests: " + string.Join("; ", outcomes.Where(o => o.Status != 200).Select(o => $"{o.Status} {o.Server} at {o.Started:HH:mm:ss.fff}"))
                + "\n" + string.Join("\n", accessLog.Where(l => !l.Contains("\" 200 ", StringComparison.Ordinal))));
        // Once detected, no try went to the dead backend: every request after that was answered at the first try.
        var afterDetection = accessLog
            .Select(ParseLogTime).Where(l => l.Time > detected.AddSeconds(1) && l.Time < readmitted).ToList();
        Assert.NotEmpty(afterDetection);
        Assert.All(afterDetection, l => Assert.Equal(0, l.Retries));
        // After re-admission it takes traffic again, less at first (slow start) than once ramped up.
        double ShareOfB2(DateTime from, DateTime to)
        {
            var window = outcomes.Where(o => o.Started >= from && o.Started < to).ToList();
            return window.Count(o => o.Server == "b2") / (double)window.Count;
        }

        var early = ShareOfB2(readmitted, readmitted.AddSeconds(1));
        var late = ShareOfB2(readmitted.AddSeconds(3.5), DateTime.MaxValue);
        output.WriteLine($"b2 share: first second after re-admission {early:P1}, after the ramp {late:P1}");
        Assert.True(late > 0.2, $"after the ramp b2 took {late:P1} of requests");
        Assert.True(early < late * 0.8, $"no ramp: {early:P1} at first against {late:P1} later");
    }

    [Fact]
    public async Task WithOnlyBalanceHubsSections_KillOneOfThreeAndRestartIt_NoClientErrors_BackWithinTenSeconds()
    {
        // BalanceHub's own config: no health-checks section. The defaults must find the dead backend and the restarted one.
        await using var lb = await TestBalancer.StartAsync("""
            Original-Server: { allow: [127.0.0.0/8] }
            BalanceHub: { algorithm: round-robin, access-logs-path: ./logs }
            """, output);
        await using var backends = await Backends.StartAsync(3, (_, o) => o with { Register = lb.ControlPlane });
        await using var stream = SteadyLoad.Start(lb.Client);
        await stream.MoreAsync(200);

        await backends[1].KillAsync();
        var killed = DateTime.UtcNow;
        await Eventually.TrueAsync(async () => await HealthAsync(lb, backends[1]) == "unhealthy", "the killed backend to be found dead");
        var detected = DateTime.UtcNow;
        // Traffic well inside the dead window, however fast the machine: a count alone can pass in less than the margin below.
        await Eventually.TrueAsync(() => stream.Outcomes.Count(o => o.Started > detected.AddSeconds(0.5)) > 200, "traffic while the backend is known dead");
        await backends[1].RestartAsync();
        var restarted = DateTime.UtcNow;
        var before = backends[1].RequestCount;
        await Eventually.TrueAsync(() => backends[1].RequestCount > before, "traffic to the restarted backend", TimeSpan.FromSeconds(10));
        var back = DateTime.UtcNow;
        await stream.MoreAsync(200);
        var outcomes = await stream.StopAsync();

        output.WriteLine($"found dead {(detected - killed).TotalSeconds:0.0}s after the kill; traffic {(back - restarted).TotalSeconds:0.0}s after the restart");
        Assert.True(outcomes.All(o => o.Status == 200), "failed: " + string.Join("; ", outcomes.Where(o => o.Status != 200).Select(o => $"{o.Status} {o.Server}")));
        await lb.Running.StopAsync();
        var whileDead = (await File.ReadAllLinesAsync(Path.Combine(lb.Directory, "logs", AccessLog.FileName)))
            .Select(l => (Line: l, Time: ParseLogTime(l).Time)).Where(l => l.Time > detected.AddSeconds(0.1) && l.Time < restarted).ToList();
        Assert.NotEmpty(whileDead);
        Assert.All(whileDead, l => Assert.Equal(0, ParseLogTime(l.Line).Retries)); // no try went to it once it was found dead
    }

    [Fact]
    public async Task ABackendThatDiesAfterItsResponseHeaders_BeforeAnyBodyReachedTheClient_IsRetriedElsewhere()
    {
        // What a killed backend does to the requests it is answering: headers out, then a reset. Nothing has reached the
        // client yet, so an idempotent request can still go elsewhere (this was a rare 502 in the kill-one-of-three test).
        using var dying = new TcpListener(IPAddress.Loopback, 0);
        dying.Start();
        var answered = 0;
        using var stop = new CancellationTokenSource();
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var client = await dying.AcceptTcpClientAsync(stop.Token);
                var stream = client.GetStream();
                var head = new StringBuilder();
                var buffer = new byte[4096];
                int read;
                while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) && (read = await stream.ReadAsync(buffer, stop.Token)) > 0)
                {
                    head.Append(Encoding.ASCII.GetString(buffer, 0, read));
                }

                if (head.Length == 0)
                {
                    continue; // a health check's connect
                }

                Interlocked.Increment(ref answered);
                await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"u8.ToArray(), stop.Token);
                await stream.FlushAsync(stop.Token);
                client.Client.LingerState = new System.Net.Sockets.LingerOption(true, 0); // close with a reset
            }
        });
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(
            $"BalanceHub: {{ algorithm: round-robin }}\nbackends: [ {{ address: \"http://127.0.0.1:{((IPEndPoint)dying.LocalEndpoint).Port}\" }}, {{ address: \"{backends[0].Address}\" }} ]", output);

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            using var response = await lb.Client.GetAsync($"/answer/{i}");
            statuses.Add(response.StatusCode);
        }

        await stop.CancelAsync();
        Assert.True(answered > 0, "the dying backend was never picked");
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
    }

    [Fact]
    public async Task BackendFailingHalfItsRequests_IsEjected_AndClientsSeeRetriedSuccess()
    {
        await using var backends = await Backends.StartAsync(3, (i, o) => i == 0 ? o with { Behaviors = BehaviorCatalog.From("fail: { status: 500, rate: 0.5 }") } : o);
        await using var lb = await TestBalancer.StartAsync(
            "retries: { on-status: [500, 502, 503, 504] }\noutlier-detection: { consecutive-failures: 3, base-ejection-time: 1m }\n" + TestBalancer.BackendsYaml(backends.All), output);
        await using var stream = SteadyLoad.Start(lb.Client);

        await Eventually.TrueAsync(async () => await EjectedAsync(lb, backends[0]), "the failing backend to be ejected");
        var atEjection = backends[0].RequestCount;
        await stream.MoreAsync(300);
        var outcomes = await stream.StopAsync();

        Assert.All(outcomes, o => Assert.Equal(200, o.Status));
        Assert.Equal(atEjection, backends[0].RequestCount);
    }

    [Fact]
    public async Task AllBackendsDown_Answer503WithRetryAfter_AtOnce_AndRecoveryIsAutomatic()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync(FastChecks + TestBalancer.BackendsYaml(backends.All), output);

        await backends[0].KillAsync();
        await backends[1].KillAsync();
        await Eventually.TrueAsync(async () => await HealthAsync(lb, backends[0]) == "unhealthy" && await HealthAsync(lb, backends[1]) == "unhealthy", "both backends to be marked down");
        var clock = Stopwatch.StartNew();
        using var refused = await lb.Client.GetAsync("/");
        var took = clock.Elapsed;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.True(took < TimeSpan.FromSeconds(2), $"the 503 took {took}");

        await backends[0].RestartAsync();
        await backends[1].RestartAsync();
        await Eventually.TrueAsync(async () => (await lb.Client.GetAsync("/")).StatusCode == HttpStatusCode.OK, "service to come back by itself");
    }

    [Fact]
    public async Task HangingBackend_TriesTimeOut_RetriedElsewhere_AndNothingLeaks()
    {
        await using var backends = await Backends.StartAsync(2, (i, o) => i == 0 ? o with { Behaviors = BehaviorCatalog.From("hang") } : o);
        await using var lb = await TestBalancer.StartAsync(
            "proxy: { response-headers-timeout: 300ms }\noutlier-detection: { enabled: false }\nBalanceHub: { algorithm: round-robin }\n" + TestBalancer.BackendsYaml(backends.All), output);

        for (var i = 0; i < 6; i++)
        {
            Assert.Equal("b2", (await lb.GetEchoAsync($"/h/{i}")).Server);
        }

        Assert.True(backends[0].RequestCount >= 3, "the hanging backend was never tried");
        await Eventually.TrueAsync(() => backends[0].InFlight == 0, "the hanging backend's requests to be abandoned");
        await Eventually.TrueAsync(async () => await ActiveAsync(lb) == 0, "the balancer to hold no request");
    }

    [Fact]
    public async Task HangingOnlyBackend_Answers504_WithinTheTimeout()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("hang") });
        await using var lb = await TestBalancer.StartAsync("proxy: { response-headers-timeout: 300ms }\n" + TestBalancer.BackendsYaml(backends.All), output);
        var clock = Stopwatch.StartNew();

        using var response = await lb.Client.GetAsync("/stuck");

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
        await Eventually.TrueAsync(() => backends[0].InFlight == 0, "the hanging request to be abandoned");
    }

    [Fact]
    public async Task Post_IsRetriedAfterAFailedConnect_ButNotAfterA503()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var failing = await Backends.StartAsync(1, (_, o) => o with { Name = "fails", Behaviors = BehaviorCatalog.From("fail: 503") });
        var closed = $"http://127.0.0.1:{LoopbackPort.Next()}";
        await using var refusing = await TestBalancer.StartAsync($"BalanceHub: {{ algorithm: round-robin }}\nbackends: [ {{ address: \"{closed}\" }}, {{ address: \"{backends[0].Address}\" }} ]", output);
        await using var answering503 = await TestBalancer.StartAsync($"BalanceHub: {{ algorithm: round-robin }}\nbackends: [ {{ address: \"{failing[0].Address}\" }}, {{ address: \"{backends[0].Address}\" }} ]", output);

        for (var i = 0; i < 4; i++)
        {
            using var sent = await refusing.Client.PostAsync("/orders", new StringContent("{\"n\":1}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode); // the refused connect never reached a backend: safe to resend
        }

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            using var posted = await answering503.Client.PostAsync("/orders", new StringContent("{\"n\":1}", Encoding.UTF8, "application/json"));
            statuses.Add(posted.StatusCode);
        }

        Assert.Contains(HttpStatusCode.ServiceUnavailable, statuses); // a POST that reached a backend is never sent twice
        Assert.Equal(2, failing[0].RequestCount);
    }

    [Fact]
    public async Task RetryBudgetOfZero_PassesFailuresThrough()
    {
        await using var backends = await Backends.StartAsync(2, (i, o) => i == 0 ? o with { Behaviors = BehaviorCatalog.From("fail: 503") } : o);
        await using var lb = await TestBalancer.StartAsync("retries: { budget-percent: 0 }\noutlier-detection: { enabled: false }\nBalanceHub: { algorithm: round-robin }\n" + TestBalancer.BackendsYaml(backends.All), output);

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await lb.Client.GetAsync("/");
            statuses.Add(response.StatusCode);
        }

        Assert.Equal(2, statuses.Count(s => s == HttpStatusCode.ServiceUnavailable));
    }

    [Fact]
    public async Task TcpChecks_NoticeAClosedPort()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync(
            "health-checks: { enabled: true, type: tcp, interval: 200ms, timeout: 500ms, fall: 1 }\n" + TestBalancer.BackendsYaml(backends.All), output);
        Assert.Equal("healthy", await HealthAsync(lb, backends[0]));

        await backends[0].KillAsync();

        await Eventually.TrueAsync(async () => await HealthAsync(lb, backends[0]) == "unhealthy", "the closed port to be noticed");
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        Assert.StartsWith("connection refused", json.RootElement[0].GetProperty("healthReason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NewBackend_TakesNoTrafficUntilItsFirstProbePasses()
    {
        await using var backends = await Backends.StartAsync(2, (i, o) => i == 1 ? o with { Behaviors = BehaviorCatalog.From("unhealthy"), Name = "sick" } : o);
        await using var lb = await TestBalancer.StartAsync(FastChecks.Replace("interval: 200ms", "interval: 1h", StringComparison.Ordinal) + TestBalancer.BackendsYaml([backends[0]]), output);
        await using var control = await lb.ConnectControlPlaneAsync();

        Assert.True((await control.SendAsync(Registrations.Add(backends[1].Port))).Succeeded);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("b1", (await lb.GetEchoAsync()).Server);
        }

        Assert.Equal(0, backends[1].RequestCount);
        Assert.Equal("unhealthy", await HealthAsync(lb, backends[1]));
    }

    [Fact]
    public async Task Drain_ThroughTheApi_NoNewRequests_InFlightFinishes_ThenRemoved()
    {
        await using var slow = await Backends.StartAsync(1, (_, o) => o with { Name = "slow", Behaviors = BehaviorCatalog.From("latency: 1s") });
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { algorithm: round-robin }", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        await control.SendAsync(Registrations.Add(slow[0].Port));
        await control.SendAsync(Registrations.Add(backends[0].Port));

        var inFlight = lb.Client.GetAsync("/long");
        await Eventually.TrueAsync(() => slow[0].RequestCount == 1, "a request to be in flight at the slow backend");
        using var drain = await lb.Admin.PostAsync($"/backends/127.0.0.1:{slow[0].Port}/drain", null);
        Assert.Equal(HttpStatusCode.Accepted, drain.StatusCode);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("b1", (await lb.GetEchoAsync()).Server);
        }

        using var finished = await inFlight;
        Assert.Equal(HttpStatusCode.OK, finished.StatusCode);
        Assert.Equal("slow", (await finished.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server);
        await Eventually.TrueAsync(async () => !(await lb.Admin.GetStringAsync("/backends")).Contains($":{slow[0].Port}", StringComparison.Ordinal), "the drained backend to be removed");
        Assert.Equal(1, slow[0].RequestCount);
    }

    [Fact]
    public async Task Drain_ThroughTheControlPlane_RemovesTheBackendOnceIdle()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        await control.SendAsync(Registrations.Add(backends[0].Port));

        var answer = await control.SendAsync(Registrations.Remove(backends[0].Port) with { Drain = true });

        Assert.True(answer.Succeeded, answer.Message);
        Assert.StartsWith("draining http://127.0.0.1:", answer.Message, StringComparison.Ordinal);
        await Eventually.TrueAsync(async () => (await lb.Admin.GetStringAsync("/backends")) == "[]", "the idle backend to be removed");
    }

    [Fact]
    public async Task MaxRequestsPerBackend_ExcessGoesElsewhere_ThenQueues_ThenIsRefused()
    {
        await using var backends = await Backends.StartAsync(2, (_, o) => o with { Behaviors = BehaviorCatalog.From("latency: 1s") });
        await using var lb = await TestBalancer.StartAsync(
            "proxy: { limits: { max-requests-per-backend: 1, queue-timeout: 200ms } }\nBalanceHub: { algorithm: round-robin }\n" + TestBalancer.BackendsYaml(backends.All), output);

        var three = Enumerable.Range(0, 3).Select(i => lb.Client.GetAsync($"/limited/{i}")).ToList();
        var statuses = (await Task.WhenAll(three)).Select(r => r.StatusCode).ToList();

        Assert.Equal(2, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(1, statuses.Count(s => s == HttpStatusCode.ServiceUnavailable));
        Assert.Equal(1, backends[0].RequestCount);
        Assert.Equal(1, backends[1].RequestCount);
    }

    [Fact]
    public async Task MaxRequestsPerBackend_UnderContention_EveryQueuedRequestIsServedInTurn_NeverTwoAtOnce()
    {
        // One slot, forty requests at once: each freed slot must wake the next one waiting (a lost wake-up would leave a
        // request asleep until its queue timeout, and a 503), and the backend never sees two at a time.
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("latency: 20ms") });
        await using var lb = await TestBalancer.StartAsync(
            "proxy: { limits: { max-requests-per-backend: 1, queue-timeout: 30s } }\n" + TestBalancer.BackendsYaml(backends.All), output);
        var most = 0L;
        using var watch = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!watch.IsCancellationRequested)
            {
                most = Math.Max(most, backends[0].InFlight);
                await Task.Delay(1);
            }
        });

        var statuses = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            using var response = await lb.Client.GetAsync($"/one-at-a-time/{i}");
            return response.StatusCode;
        }));
        await watch.CancelAsync();
        await watcher;

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(40, backends[0].RequestCount);
        Assert.Equal(1, most);
    }

    private static async Task<JsonElement> BackendAsync(TestBalancer lb, FakeBackend backend)
    {
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        return json.RootElement.EnumerateArray().Single(b => b.GetProperty("address").GetString() == backend.Address.ToString().TrimEnd('/')).Clone();
    }

    private static async Task<string?> HealthAsync(TestBalancer lb, FakeBackend backend) => (await BackendAsync(lb, backend)).GetProperty("health").GetString();

    private static async Task<bool> EjectedAsync(TestBalancer lb, FakeBackend backend) => (await BackendAsync(lb, backend)).GetProperty("ejected").GetBoolean();

    private static async Task<int> ActiveAsync(TestBalancer lb)
    {
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        return json.RootElement.EnumerateArray().Sum(b => b.GetProperty("activeConnections").GetInt32());
    }

    private static (DateTime Time, int Retries) ParseLogTime(string line)
    {
        var fields = line.Split(' ');
        var time = DateTime.Parse(fields[0], System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal);
        // ... "status duration pool backend retries "user-agent"": retries is the field before the quoted user agent
        var beforeAgent = line[..line.LastIndexOf(" \"", StringComparison.Ordinal)].Split(' ');
        return (time, int.Parse(beforeAgent[^1], System.Globalization.CultureInfo.InvariantCulture));
    }
}
