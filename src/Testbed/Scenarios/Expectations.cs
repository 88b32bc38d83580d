using System.Globalization;
using System.Net;
using Testbed.Load;

namespace Testbed.Scenarios;

/// <summary>
/// Which recorded requests an expectation looks at: a time window, and optionally a client, path, method and status
/// (<c>status-is</c>).
/// </summary>
public sealed record Window(TimeSpan? From = null, TimeSpan? To = null, IPNetwork? Client = null, string? Path = null, string? Method = null, int? Status = null)
{
    public static Window All { get; } = new();

    public IReadOnlyList<RequestRecord> Select(IEnumerable<RequestRecord> history) => [.. history.Where(Covers)];

    public bool Covers(RequestRecord r) =>
        (From is not { } from || r.Due >= from)
        && (To is not { } to || r.Due < to)
        && (Client is not { } client || (IPAddress.TryParse(r.Client, out var address) && client.Contains(address)))
        && (Path is not { } path || path == "/" || r.Path.Equals(path, StringComparison.OrdinalIgnoreCase) || r.Path.StartsWith(path + "/", StringComparison.OrdinalIgnoreCase))
        && (Method is not { } method || r.Method.Equals(method, StringComparison.OrdinalIgnoreCase))
        && (Status is not { } status || r.Status == status);

    public string Describe()
    {
        var parts = new List<string>();
        if (From is not null || To is not null)
        {
            parts.Add($"{Seconds(From ?? TimeSpan.Zero)}–{(To is { } to ? Seconds(to) : "end")}");
        }

        if (Client is { } client)
        {
            parts.Add($"client {(client.PrefixLength == (client.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128) ? client.BaseAddress : client)}");
        }

        if (Path is not null)
        {
            parts.Add($"path {Path}");
        }

        if (Method is not null)
        {
            parts.Add(Method);
        }

        if (Status is { } status)
        {
            parts.Add($"status {status.ToString(CultureInfo.InvariantCulture)}");
        }

        return parts.Count == 0 ? "" : $" ({string.Join(", ", parts)})";
    }

    internal static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s";
}

/// <summary>What an expectation found: whether it held, the value measured, and for a failure some requests that show why.</summary>
public sealed record ExpectationResult(string Expectation, bool Passed, string Measured, IReadOnlyList<string> Evidence);

/// <summary>A claim about what clients saw, checked over every recorded request in its window (never a sample).</summary>
public abstract record Expectation(Window Where)
{
    /// <summary>The claim in words, window included.</summary>
    public string Describe() => Claim() + Where.Describe();

    protected abstract string Claim();

    public ExpectationResult Evaluate(IReadOnlyList<RequestRecord> history)
    {
        var window = Where.Select(history);
        if (window.Count == 0)
        {
            return new ExpectationResult(Describe(), false, "no requests in the window", ["an expectation over no requests proves nothing: widen the window or the load"]);
        }

        var (passed, measured, evidence) = Check(window);
        return new ExpectationResult(Describe(), passed, measured, passed ? [] : evidence.Take(5).ToList());
    }

    protected abstract (bool Passed, string Measured, IEnumerable<string> Evidence) Check(IReadOnlyList<RequestRecord> window);

    /// <summary>Judged over the whole run: the requests, and the outages with what the balancer made of them.</summary>
    public virtual ExpectationResult Evaluate(IReadOnlyList<RequestRecord> history, IReadOnlyList<Outage> outages) => Evaluate(history);

    /// <summary>One request as evidence: <c>t=3.214s 127.0.0.2 GET /a → 502 b2 (connection refused)</c>.</summary>
    protected static string Show(RequestRecord r) =>
        $"t={Window.Seconds(r.Due)} {r.Client} {r.Method} {r.Path} → {(r.Status == 0 ? "no answer" : r.Status.ToString(CultureInfo.InvariantCulture))}"
        + (r.Backend is null ? "" : $" from {r.Backend}") + (r.Retries is > 0 ? $" after {r.Retries} retr{(r.Retries == 1 ? "y" : "ies")}" : "")
        + (r.Error is null ? "" : $" ({r.Error})") + $" in {Format.Milliseconds(r.Latency)}";

    protected static string Of(int part, int whole) => $"{Format.Percent(part / (double)whole)} ({part} of {whole})";
}

/// <summary><c>error-rate: 0.01</c>: at most this share of requests failed (no answer, or 5xx).</summary>
public sealed record ErrorRateExpectation(Window Where, double Max) : Expectation(Where)
{
    protected override string Claim() => $"error rate ≤ {Format.Percent(Max)}";

    protected override (bool, string, IEnumerable<string>) Check(IReadOnlyList<RequestRecord> window)
    {
        var failed = window.Where(r => r.Failed).ToList();
        return (failed.Count <= Max * window.Count, Of(failed.Count, window.Count), failed.Select(Show));
    }
}

/// <summary><c>no-requests-to: b2</c>: no request was answered by this backend.</summary>
public sealed record NoRequestsToExpectation(Window Where, string Backend) : Expectation(Where)
{
    protected override string Claim() => $"no requests answered by {Backend}";

    protected override (bool, string, IEnumerable<string>) Check(IReadOnlyList<RequestRecord> window)
    {
        var reached = window.Where(r => r.Backend == Backend).ToList();
        return (reached.Count == 0, $"{reached.Count} of {window.Count}", reached.Select(Show));
    }
}

/// <summary><c>share: { backend: b1, min: 0.08, max: 0.12 }</c>: of the answered requests, this backend answered this share.</summary>
public sealed record ShareExpectation(Window Where, string Backend, double? Min, double? Max) : Expectation(Where)
{
    protected override string Claim() => $"share of {Backend} " + (Min, Max) switch
    {
        ({ } min, { } max) => $"in {Format.Percent(min, 1)}–{Format.Percent(max, 1)}",
        ({ } min, null) => $"≥ {Format.Percent(min, 1)}",
        _ => $"≤ {Format.Percent(Max!.Value, 1)}",
    };

    protected override (bool, string, IEnumerable<string>) Check(IReadOnlyList<RequestRecord> window)
    {
        var answered = window.Where(r => r.Backend is not null).ToList();
        if (answered.Count == 0)
        {
            return (false, "no request was answered by any backend", []);
        }

        var mine = answered.Count(r => r.Backend == Backend);
        var share = mine / (double)answered.Count;
        var others = answered.GroupBy(r => r.Backend!).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}: {Of(g.Count(), answered.Count)}");
        return ((Min is null || share >= Min) && (Max is null || share <= Max), Of(mine, answered.Count), others);
    }
}

/// <summary><c>latency: { p99: 200ms }</c>: percentiles (p50, p90, p99, p99.9) or the max of answered requests, at most these.</summary>
public sealed record LatencyExpectation(Window Where, IReadOnlyList<(string Name, double Percentile, TimeSpan Limit)> Limits) : Expectation(Where)
{
    protected override string Claim() => "latency " + string.Join(", ", Limits.Select(l => $"{l.Name} ≤ {Format.Milliseconds(l.Limit)}"));

    protected override (bool, string, IEnumerable<string>) Check(IReadOnlyList<RequestRecord> window)
    {
        var histogram = new LatencyHistogram();
        foreach (var r in window.Where(r => r.Status != 0))
        {
            histogram.Record(r.Latency);
        }

        var measured = Limits.Select(l => (l.Name, Value: l.Percentile >= 100 ? histogram.Max : histogram.Percentile(l.Percentile), l.Limit)).ToList();
        var slowest = window.Where(r => r.Status != 0).OrderByDescending(r => r.Latency).Select(Show);
        return (histogram.Count > 0 && measured.All(m => m.Value <= m.Limit), string.Join(", ", measured.Select(m => $"{m.Name} {Format.Milliseconds(m.Value)}")), slowest);
    }
}

/// <summary><c>status: [200, 503]</c>: every request got one of these statuses (0 stands for no answer).</summary>
public sealed record StatusExpectation(Window Where, IReadOnlySet<int> Allowed) : Expectation(Where)
{
    protected override string Claim() => $"every status in [{string.Join(", ", Allowed.Order())}]";

    protected override (bool, string, IEnumerable<string>) Check(IReadOnlyList<RequestRecord> window)
    {
        var others = window.Where(r => !Allowed.Contains(r.Status)).ToList();
        var seen = string.Join(", ", window.GroupBy(r => r.Status).OrderBy(g => g.Key).Select(g => $"{g.Key}: {g.Count()}"));
        return (others.Count == 0, seen, others.Select(Show));
    }
}

/// <summary><c>sticky: 1.0</c>: this share of clients (with two answers or more) were answered by one backend only.</summary>
public sealed record StickyExpectation(Window Where, double Min) : Expectation(Where)
{
    protected override string Claim() => $"clients sticking to one backend ≥ {Format.Percent(Min, 1)}";

    protected override (bool, string, IEnumerable<string>) Check(IReadOnlyList<RequestRecord> window)
    {
        var clients = window.Where(r => r.Backend is not null).GroupBy(r => r.Client).Where(g => g.Count() >= 2).ToList();
        if (clients.Count == 0)
        {
            return (false, "no client had two answers", []);
        }

        var wandering = clients.Where(g => g.Select(r => r.Backend).Distinct().Count() > 1).ToList();
        var sticking = clients.Count - wandering.Count;
        return (sticking >= Min * clients.Count, Of(sticking, clients.Count),
            wandering.Select(g => $"{g.Key} was answered by {Spread(g)}"));
    }

    /// <summary>The backends that answered one client, busiest first: all of a few, the top of many.</summary>
    private static string Spread(IEnumerable<RequestRecord> requests)
    {
        var backends = requests.GroupBy(r => r.Backend).OrderByDescending(b => b.Count()).ThenBy(b => b.Key, StringComparer.Ordinal).Select(b => $"{b.Key} ({b.Count()})").ToList();
        return backends.Count <= 5 ? string.Join(", ", backends) : $"{string.Join(", ", backends.Take(4))} and {backends.Count - 4} more backends";
    }
}

/// <summary>
/// <c>moved-clients: { at: 5s, max: 0.4, settle: 1s }</c>: of the clients seen both before <c>at</c> and after
/// <c>at + settle</c>, at most this share are answered by a different backend (each client's most frequent one).
/// </summary>
public sealed record MovedClientsExpectation(Window Where, TimeSpan At, TimeSpan Settle, double Max) : Expectation(Where)
{
    protected override string Claim() => $"clients moved by what happened at {Window.Seconds(At)} ≤ {Format.Percent(Max, 1)}";

    protected override (bool, string, IEnumerable<string>) Check(IReadOnlyList<RequestRecord> window)
    {
        static Dictionary<string, string> Home(IEnumerable<RequestRecord> records) => records.Where(r => r.Backend is not null).GroupBy(r => r.Client)
            .ToDictionary(g => g.Key, g => g.GroupBy(r => r.Backend!).OrderByDescending(b => b.Count()).ThenBy(b => b.Key, StringComparer.Ordinal).First().Key);
        var before = Home(window.Where(r => r.Due < At));
        var after = Home(window.Where(r => r.Due >= At + Settle));
        var both = before.Keys.Intersect(after.Keys).ToList();
        if (both.Count == 0)
        {
            return (false, "no client was seen both before and after", []);
        }

        var moved = both.Where(c => before[c] != after[c]).ToList();
        return (moved.Count <= Max * both.Count, Of(moved.Count, both.Count), moved.Select(c => $"{c}: {before[c]} → {after[c]}"));
    }
}

/// <summary><c>requests: { min: 100, backend: b1 }</c>: how many requests there were (answered by one backend, if named).</summary>
public sealed record RequestsExpectation(Window Where, string? Backend, int? Min, int? Max) : Expectation(Where)
{
    protected override string Claim() => $"requests{(Backend is null ? "" : $" answered by {Backend}")} " + (Min, Max) switch
    {
        ({ } min, { } max) => $"in {min}–{max}",
        ({ } min, null) => $"≥ {min}",
        _ => $"≤ {Max}",
    };

    protected override (bool, string, IEnumerable<string>) Check(IReadOnlyList<RequestRecord> window)
    {
        var count = Backend is null ? window.Count : window.Count(r => r.Backend == Backend);
        return ((Min is null || count >= Min) && (Max is null || count <= Max), count.ToString(CultureInfo.InvariantCulture), []);
    }
}

/// <summary><c>retries: { max: 0 }</c> or <c>{ max-share: 0.05 }</c>: requests the balancer had to retry (from its access log).</summary>
public sealed record RetriesExpectation(Window Where, int? Max, double? MaxShare) : Expectation(Where)
{
    protected override string Claim() => "retried requests " + (Max is { } max ? $"≤ {max}" : $"≤ {Format.Percent(MaxShare!.Value)}");

    protected override (bool, string, IEnumerable<string>) Check(IReadOnlyList<RequestRecord> window)
    {
        var unknown = window.Count(r => r.Retries is null);
        if (unknown > 0)
        {
            return (false, $"{unknown} request(s) not found in the access log", window.Where(r => r.Retries is null).Select(Show));
        }

        var retried = window.Where(r => r.Retries > 0).ToList();
        return ((Max is null || retried.Count <= Max) && (MaxShare is null || retried.Count <= MaxShare * window.Count), Of(retried.Count, window.Count), retried.Select(Show));
    }
}

/// <summary>
/// Over the outages of a run (those that began in the window): what the balancer's events show of each, bounded.
/// Judged from the balancer's own events, not from requests.
/// </summary>
public abstract record OutageExpectation(Window Where, TimeSpan Max) : Expectation(Where)
{
    public override ExpectationResult Evaluate(IReadOnlyList<RequestRecord> history, IReadOnlyList<Outage> outages)
    {
        var covered = outages.Where(o => (Where.From is not { } from || o.Down >= from) && (Where.To is not { } to || o.Down < to) && Counts(o)).ToList();
        if (covered.Count == 0)
        {
            return new ExpectationResult(Describe(), false, "no outage in the window", ["an expectation over no outage proves nothing: kill, refuse or stop a backend in the timeline, or give one a flap"]);
        }

        var delays = covered.Select(o => (Outage: o, Delay: Delay(o))).ToList();
        var late = delays.Where(d => d.Delay is not { } delay || delay > Max).ToList();
        var measured = late.Count == 0
            ? $"{covered.Count} of {covered.Count}, slowest {Format.Milliseconds(delays.Max(d => d.Delay!.Value))}"
            : $"{covered.Count - late.Count} of {covered.Count} within {Format.Milliseconds(Max)}";
        return new ExpectationResult(Describe(), late.Count == 0, measured, late.Count == 0 ? [] : [.. late.Take(5).Select(d => Explain(d.Outage, d.Delay))]);
    }

    protected override (bool Passed, string Measured, IEnumerable<string> Evidence) Check(IReadOnlyList<RequestRecord> window) =>
        (false, "needs the balancer's events", ["judged over outages, not requests"]);

    /// <summary>Whether the expectation is about this outage at all.</summary>
    protected virtual bool Counts(Outage outage) => true;

    protected abstract TimeSpan? Delay(Outage outage);

    protected abstract string Explain(Outage outage, TimeSpan? delay);
}

/// <summary><c>detected-within: 2s</c>: every outage was taken out of rotation by the balancer (down or ejected) within this long.</summary>
public sealed record DetectedWithinExpectation(Window Where, TimeSpan Max) : OutageExpectation(Where, Max)
{
    protected override string Claim() => $"every outage detected within {Format.Milliseconds(Max)}";

    protected override TimeSpan? Delay(Outage outage) => outage.DetectionDelay;

    /// <summary>An outage the run watched for less than the bound, undetected so far, is not late yet: it cannot be judged.</summary>
    protected override bool Counts(Outage outage) => outage.Detected is not null || outage.Watched >= Max;

    protected override string Explain(Outage outage, TimeSpan? delay) =>
        $"{outage.Cause} at t={Window.Seconds(outage.Down)}: " + (delay is { } d ? $"detected after {Format.Milliseconds(d)} ({outage.DetectedBy})" : "never taken out of rotation while down");
}

/// <summary><c>recovered-within: 2s</c>: every outage that was detected and ended was readmitted (healthy, not ejected) within this long after it ended.</summary>
public sealed record RecoveredWithinExpectation(Window Where, TimeSpan Max) : OutageExpectation(Where, Max)
{
    protected override string Claim() => $"every detected outage readmitted within {Format.Milliseconds(Max)} of its end";

    protected override bool Counts(Outage outage) => outage is { Up: not null, Detected: not null };

    protected override TimeSpan? Delay(Outage outage) => outage.RecoveryDelay;

    protected override string Explain(Outage outage, TimeSpan? delay) =>
        $"{outage.Cause} ended at t={Window.Seconds(outage.Up!.Value)}: " + (delay is { } d ? $"readmitted after {Format.Milliseconds(d)}" : "not readmitted before it went down again or the run ended");
}

/// <summary><c>cache: { result: HIT, min: 0.9 }</c>: this share of the requests was answered with <c>X-Cache: result</c>.</summary>
public sealed record CacheExpectation(Window Where, string Result, double? Min, double? Max) : Expectation(Where)
{
    protected override string Claim() => $"share of X-Cache {Result} " + (Min, Max) switch
    {
        ({ } min, { } max) => $"in {Format.Percent(min, 1)}–{Format.Percent(max, 1)}",
        ({ } min, null) => $"≥ {Format.Percent(min, 1)}",
        _ => $"≤ {Format.Percent(Max!.Value, 1)}",
    };

    protected override (bool, string, IEnumerable<string>) Check(IReadOnlyList<RequestRecord> window)
    {
        var mine = window.Count(r => string.Equals(r.Cache, Result, StringComparison.OrdinalIgnoreCase));
        var share = mine / (double)window.Count;
        var others = window.GroupBy(r => r.Cache ?? "none").OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}: {Of(g.Count(), window.Count)}");
        return ((Min is null || share >= Min) && (Max is null || share <= Max), Of(mine, window.Count), others);
    }
}
