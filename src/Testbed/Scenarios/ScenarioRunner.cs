using System.Globalization;
using System.Net.Http.Json;
using System.Net.Sockets;
using Balancer.Observability;
using Testbed.Load;

namespace Testbed.Scenarios;

/// <summary>What happened to one timeline event.</summary>
/// <param name="HappenedAt">When it was carried out, from the start of the measured load.</param>
/// <param name="Error">Why it could not be carried out, if it could not.</param>
public sealed record EventOutcome(TimeSpan At, TimeSpan HappenedAt, string Description, string? Error);

/// <summary>A finished run: every request clients made, every event, every expectation judged.</summary>
/// <param name="Problems">What went wrong outside the expectations (an event that failed): any fails the run.</param>
/// <param name="Stalls">Moments the testbed's own process or machine paused while the load ran.</param>
/// <param name="Collecting">How long garbage collection paused this process (balancer, backends and load alike) during the run.</param>
public sealed record ScenarioResult(
    Scenario Scenario, IReadOnlyList<RequestRecord> History, IReadOnlyList<EventOutcome> Events,
    IReadOnlyList<ExpectationResult> Expectations, IReadOnlyList<string> Problems, string Directory, DateTimeOffset StartedAt,
    IReadOnlyList<Stall>? Stalls = null, TimeSpan Collecting = default,
    IReadOnlyList<BalancerSideEvent>? BalancerEvents = null, IReadOnlyList<Outage>? Outages = null)
{
    /// <summary>What the balancer said it did during the run (its <c>GET /events</c>), on the run's clock.</summary>
    public IReadOnlyList<BalancerSideEvent> BalancerSide => BalancerEvents ?? [];

    /// <summary>Each time a backend was down, and when the balancer noticed and readmitted it.</summary>
    public IReadOnlyList<Outage> BackendOutages => Outages ?? [];

    /// <summary>A sentence on the testbed's pauses, or null when it kept time.</summary>
    public string? StallNote => Format.Stalls(Stalls ?? [], Collecting);

    public bool Passed => Problems.Count == 0 && Expectations.All(e => e.Passed);
}

/// <summary>
/// Runs a scenario: starts its fake backends and a real balancer (in this process) on free loopback ports, offers the
/// load, carries out the timeline, stops everything, joins the balancer's access log into the request history, and
/// judges the expectations. <paramref name="progress"/>, when given, gets a line a second while the load runs.
/// </summary>
public sealed class ScenarioRunner(TextWriter? progress = null)
{
    public async Task<ScenarioResult> RunAsync(Scenario scenario, string directory, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(directory);

        // A clean heap to begin with: what earlier runs left behind is not collected in the middle of this one.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var startedAt = DateTimeOffset.UtcNow;
        await using var backends = new ScenarioBackends(scenario.Backends);
        await backends.StartInitialAsync(cancellationToken).ConfigureAwait(false);

        // Chosen once the backends listen, so that no backend can be handed a port meant for the balancer.
        var free = LoopbackPort.Next(3);
        var ports = (Proxy: free[0], Admin: free[1], ControlPlane: free[2]);
        await using var redis = scenario.Redis ? await StartRedisAsync().ConfigureAwait(false) : null;
        var addresses = new Dictionary<string, string>(backends.Addresses(), StringComparer.Ordinal);
        if (redis is not null)
        {
            addresses[Scenario.RedisPort] = redis.Port.ToString(CultureInfo.InvariantCulture);
        }

        var balancerDirectory = Path.Combine(directory, "balancer");
        var loaded = BalancerSetup.Load(scenario, addresses, balancerDirectory, ports);
        if (loaded.Options is not { } options)
        {
            throw new ScenarioException(string.Join("\n", loaded.Errors));
        }

        using var log = new FileLog(Path.Combine(directory, "balancer.log"));
        var balancer = new BalancerHost(options, log);
        await using (balancer.ConfigureAwait(false))
        {
            await balancer.StartAsync().ConfigureAwait(false);
            await backends.ConnectAsync(balancer.ControlPlane, cancellationToken).ConfigureAwait(false);
            using var admin = new HttpClient { BaseAddress = balancer.AdminUri, Timeout = TimeSpan.FromSeconds(30) };
            using var eventsClient = new HttpClient { BaseAddress = balancer.AdminUri, Timeout = Timeout.InfiniteTimeSpan };
            await using var balancerEvents = await BalancerEventLog.StartAsync(eventsClient).ConfigureAwait(false);
            await using var load = new LoadGenerator(scenario.Load with { Target = balancer.ProxyUri });
            Say($"{scenario.Name}: {backends.Count} backend(s), balancer on {balancer.ProxyUri}, {Describe(scenario.Load)}");

            var collectingBefore = GC.GetTotalPauseDuration();
            var running = load.RunAsync(cancellationToken);
            var t0 = await load.MeasuredStart.ConfigureAwait(false);
            var t0Wall = DateTimeOffset.UtcNow - TimeProvider.System.GetElapsedTime(t0);
            using var stopProgress = new CancellationTokenSource();
            var ticker = ReportProgressAsync(load, scenario, stopProgress.Token);
            var events = new List<EventOutcome>();
            foreach (var timelineEvent in scenario.Timeline)
            {
                var wait = timelineEvent.At - TimeProvider.System.GetElapsedTime(t0);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
                }

                var happened = TimeProvider.System.GetElapsedTime(t0);
                string? error = null;
                try
                {
                    await CarryOutAsync(timelineEvent, backends, balancer, redis, admin, (options.Source!.Path, addresses), cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidOperationException or HttpRequestException or IOException or SocketException)
                {
                    error = e.Message;
                }

                events.Add(new EventOutcome(timelineEvent.At, happened, timelineEvent.Describe(), error));
                Say($"  t={Window.Seconds(happened),-7} {timelineEvent.Describe()}{(error is null ? "" : $": FAILED: {error}")}");
            }

            var result = await running.ConfigureAwait(false);
            var collecting = GC.GetTotalPauseDuration() - collectingBefore;
            await stopProgress.CancelAsync().ConfigureAwait(false);
            await ticker.ConfigureAwait(false);
            await balancer.StopAsync().ConfigureAwait(false);

            var accessLog = Path.Combine(balancerDirectory, "logs", AccessLog.FileName);
            var history = AccessLogJoin.AddRetries(result.Records, File.Exists(accessLog) ? await File.ReadAllLinesAsync(accessLog, cancellationToken).ConfigureAwait(false) : []);
            var seen = balancerEvents.Events(t0Wall, backends.AddressesEverStarted().ToDictionary(p => p.Value, p => p.Key, StringComparer.OrdinalIgnoreCase));
            var outages = Outage.Judge(OutagePeriods(scenario, events, t0Wall), seen, scenario.Load.Duration);
            var judged = scenario.Expectations.Select(e => e.Evaluate(history, outages)).ToList();
            var problems = events.Where(e => e.Error is not null).Select(e => $"event at {Window.Seconds(e.At)} ({e.Description}) failed: {e.Error}").ToList();
            return new ScenarioResult(scenario, history, events, judged, problems, directory, startedAt, result.Stalls, collecting, seen, outages);
        }
    }

    /// <summary>
    /// When each backend was down during the measured load: from a kill, refuse or stop in the timeline to the restart or
    /// start that brought it back, and the down periods of a behavior with a schedule of its own (a flap).
    /// </summary>
    private static List<(string Backend, TimeSpan Down, TimeSpan? Up, string Cause)> OutagePeriods(Scenario scenario, IReadOnlyList<EventOutcome> carriedOut, DateTimeOffset t0Wall)
    {
        var periods = new List<(string, TimeSpan, TimeSpan?, string)>();
        var open = new Dictionary<string, (TimeSpan Down, string Cause)>(StringComparer.Ordinal);
        foreach (var (timelineEvent, outcome) in scenario.Timeline.Zip(carriedOut))
        {
            if (outcome.Error is not null || timelineEvent is not BackendEvent lifecycle)
            {
                continue;
            }

            foreach (var name in lifecycle.Backends)
            {
                if (lifecycle.Action is BackendAction.Kill or BackendAction.Refuse or BackendAction.Stop && !open.ContainsKey(name))
                {
                    open[name] = (outcome.HappenedAt, $"{lifecycle.Action.ToString().ToLowerInvariant()} {name}");
                }
                else if (lifecycle.Action is BackendAction.Restart or BackendAction.Start && open.Remove(name, out var was))
                {
                    periods.Add((name, was.Down, outcome.HappenedAt, was.Cause));
                }
            }
        }

        periods.AddRange(open.Select(o => (o.Key, o.Value.Down, (TimeSpan?)null, o.Value.Cause)));
        var end = t0Wall + scenario.Load.Duration;
        foreach (var spec in scenario.Backends)
        {
            foreach (var schedule in spec.Behaviors.OfType<FakeBackends.Behaviors.IOutageSchedule>())
            {
                foreach (var (down, up) in schedule.DownPeriods(t0Wall, end).Where(p => p.Down >= t0Wall))
                {
                    periods.Add((spec.Name, down - t0Wall, up <= end ? up - t0Wall : null, $"{spec.Name} flaps down"));
                }
            }
        }

        return periods;
    }

    private static async Task CarryOutAsync(
        TimelineEvent timelineEvent, ScenarioBackends backends, BalancerHost balancer, RedisServer? redis, HttpClient admin,
        (string Path, IReadOnlyDictionary<string, string> Addresses) config, CancellationToken cancellationToken)
    {
        switch (timelineEvent)
        {
            case ReloadEvent reload:
                await File.WriteAllTextAsync(config.Path, BalancerSetup.Fill(reload.Config, config.Addresses), cancellationToken).ConfigureAwait(false);
                using (var response = await admin.PostAsync("/reload", null, cancellationToken).ConfigureAwait(false))
                {
                    await EnsureAsync(response, "reload", cancellationToken).ConfigureAwait(false);
                }

                break;
            case BackendEvent { Action: BackendAction.Drain } drain:
                foreach (var name in drain.Backends)
                {
                    using var response = await admin.PostAsync($"/backends/{HostPort(backends.Address(name))}/drain", null, cancellationToken).ConfigureAwait(false);
                    await EnsureAsync(response, $"drain {name}", cancellationToken).ConfigureAwait(false);
                }

                break;
            case BackendEvent lifecycle:
                await Task.WhenAll(lifecycle.Backends.Select(name => backends.ApplyAsync(name, lifecycle.Action, cancellationToken))).ConfigureAwait(false);
                break;
            case SetBehaviorEvent set:
                foreach (var name in set.Backends)
                {
                    backends.Get(name).SetBehaviors(set.Behaviors);
                }

                break;
            case SetWeightEvent weight:
                foreach (var name in weight.Backends)
                {
                    using var response = await admin.PutAsJsonAsync($"/backends/{HostPort(backends.Address(name))}", new WeightBody(weight.Weight), ScenarioJson.Default.WeightBody, cancellationToken).ConfigureAwait(false);
                    await EnsureAsync(response, $"set the weight of {name}", cancellationToken).ConfigureAwait(false);
                }

                break;
            case RestartBalancerEvent:
                await balancer.RestartAsync().ConfigureAwait(false);
                break;
            case RedisEvent { Start: true } when redis is not null:
                await redis.StartAgainAsync().ConfigureAwait(false);
                break;
            case RedisEvent when redis is not null:
                await redis.StopAsync().ConfigureAwait(false);
                break;
            default:
                throw new InvalidOperationException($"no way to carry out {timelineEvent.Describe()}");
        }
    }

    private static async Task EnsureAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{what}: the admin API answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        }
    }

    private static async Task<RedisServer> StartRedisAsync()
    {
        try
        {
            return await RedisServer.StartAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidOperationException)
        {
            throw new ScenarioException(e.Message);
        }
    }

    private static string HostPort(string address) => new Uri(address).Authority;

    private async Task ReportProgressAsync(LoadGenerator load, Scenario scenario, CancellationToken stop)
    {
        if (progress is null)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        var second = 0;
        try
        {
            // Each tick reports the second before last: by then nearly all its requests have been answered.
            for (var tick = 1; await timer.WaitForNextTickAsync(stop).ConfigureAwait(false); tick++)
            {
                for (; second <= tick - 2 && TimeSpan.FromSeconds(second) < scenario.Load.Duration; second++)
                {
                    ReportSecond(load, second);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        // The load is over: the seconds not reported yet are complete.
        for (; TimeSpan.FromSeconds(second) < scenario.Load.Duration; second++)
        {
            ReportSecond(load, second);
        }
    }

    private void ReportSecond(LoadGenerator load, int second)
    {
        var from = TimeSpan.FromSeconds(second);
        var records = load.Completed.Where(r => r.Due >= from && r.Due < from + TimeSpan.FromSeconds(1)).ToList();
        var summary = LoadSummary.Of(records, TimeSpan.FromSeconds(1));
        var busiest = summary.Backends.OrderByDescending(b => b.Value).ThenBy(b => b.Key, StringComparer.Ordinal).Take(6).OrderBy(b => b.Key, StringComparer.Ordinal);
        var shares = string.Join(" ", busiest.Select(b => $"{b.Key} {Format.Percent(summary.ShareOf(b.Value), 0)}"))
            + (summary.Backends.Count > 6 ? $" and {summary.Backends.Count - 6} more" : "");
        Say(string.Create(CultureInfo.InvariantCulture,
            $"  t={Window.Seconds(from),-7} {summary.Requests,5} req/s  {summary.Failed,4} failed  p99 {Format.Milliseconds(summary.Latency.Percentile(99)),9}  in flight {load.InFlight,4}  {shares}"));
    }

    private void Say(string line)
    {
        if (progress is not null)
        {
            lock (progress)
            {
                progress.WriteLine(line);
            }
        }
    }

    private static string Describe(LoadOptions load) =>
        (load.Model == LoadModel.Open ? $"open model at {Format.Number(load.Rate)} requests/s" : $"closed model, {load.Concurrency} clients")
        + $" for {Window.Seconds(load.Duration)}{(load.Warmup > TimeSpan.Zero ? $" after {Window.Seconds(load.Warmup)} of warm-up" : "")}, from {load.Clients.Count} client address(es)";

}

/// <summary>A scenario that could not be set up (the balancer would not start, say).</summary>
public sealed class ScenarioException(string message) : Exception(message);

internal sealed record WeightBody(int Weight);

[System.Text.Json.Serialization.JsonSerializable(typeof(WeightBody))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
internal sealed partial class ScenarioJson : System.Text.Json.Serialization.JsonSerializerContext;
