using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Testbed.Load;
using Testbed.Scenarios;

namespace Testbed.Reports;

/// <summary>
/// A run written out in its directory: <c>summary.md</c> (expectations with what was measured), <c>report.html</c>
/// (one self-contained page with SVG charts over time), and the whole history as <c>history.csv</c> and <c>history.json</c>.
/// </summary>
public static class ScenarioReport
{
    public const string Markdown = "summary.md";
    public const string Html = "report.html";
    public const string Csv = "history.csv";
    public const string Json = "history.json";

    public static async Task WriteAsync(ScenarioResult result, CancellationToken cancellationToken = default)
    {
        await File.WriteAllTextAsync(Path.Combine(result.Directory, Markdown), ToMarkdown(result), cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(result.Directory, Html), ToHtml(result), cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(result.Directory, Csv), LoadReport.Csv(result.History), cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(result.Directory, Json), JsonSerializer.Serialize(ToJson(result), ReportJson.Default.RunDocument), cancellationToken).ConfigureAwait(false);
    }

    public static string ToMarkdown(ScenarioResult result)
    {
        var scenario = result.Scenario;
        var summary = LoadSummary.Of(result.History, scenario.Load.Duration);
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"# {scenario.Name}: {(result.Passed ? "PASSED" : "FAILED")}");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"> {scenario.Teaches}");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Run {result.StartedAt:yyyy-MM-dd HH:mm} UTC: {summary.Requests} requests over {Window.Seconds(scenario.Load.Duration)}, {scenario.Backends.Count} backend(s).");
        text.AppendLine();
        text.AppendLine("## Expectations");
        text.AppendLine();
        text.AppendLine("| | expectation | measured |");
        text.AppendLine("|---|---|---|");
        foreach (var e in result.Expectations)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {(e.Passed ? "pass" : "**FAIL**")} | {Cell(e.Expectation)} | {Cell(e.Measured)} |");
        }

        foreach (var e in result.Expectations.Where(e => !e.Passed && e.Evidence.Count > 0))
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"Evidence against \"{e.Expectation}\":");
            foreach (var line in e.Evidence)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"- {line}");
            }
        }

        foreach (var problem in result.Problems)
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"**Problem:** {problem}");
        }

        if (result.StallNote is { } stalls)
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"**Note:** {stalls}");
        }

        if (result.Events.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("## Timeline");
            text.AppendLine();
            text.AppendLine("| at | carried out at | event | |");
            text.AppendLine("|---:|---:|---|---|");
            foreach (var e in result.Events)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"| {Window.Seconds(e.At)} | {Window.Seconds(e.HappenedAt)} | {Cell(e.Description)} | {(e.Error is null ? "done" : Cell("FAILED: " + e.Error))} |");
            }
        }

        AppendBalancerSide(text, result);

        text.AppendLine();
        text.AppendLine("## What clients saw");
        text.AppendLine();
        text.AppendLine("| requests | failed | error rate | retried | p50 | p99 | max |");
        text.AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
        text.AppendLine(CultureInfo.InvariantCulture, $"| {summary.Requests} | {summary.Failed} | {Format.Percent(summary.ErrorRate)} | {result.History.Count(r => r.Retries > 0)} | "
            + $"{Format.Milliseconds(summary.Latency.Percentile(50))} | {Format.Milliseconds(summary.Latency.Percentile(99))} | {Format.Milliseconds(summary.Latency.Max)} |");
        text.AppendLine();
        LoadReport.BackendTable(text, summary);

        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Charts: [{Html}]({Html}). Every request: [{Csv}]({Csv}), [{Json}]({Json}). The balancer's log: balancer.log.");
        return text.ToString();
    }

    /// <summary>How many of the balancer's events the report lists; the rest are counted.</summary>
    private const int ListedEvents = 60;

    private static void AppendBalancerSide(StringBuilder text, ScenarioResult result)
    {
        if (result.BackendOutages.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("## Detection and recovery");
            text.AppendLine();
            text.AppendLine("| backend | what | down at | detected after | by | back at | readmitted after |");
            text.AppendLine("|---|---|---:|---:|---|---:|---:|");
            foreach (var o in result.BackendOutages)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"| {o.Backend} | {Cell(o.Cause)} | {Window.Seconds(o.Down)} | {Delay(o.DetectionDelay, "not detected")} | {Cell(o.DetectedBy ?? "")} | "
                    + $"{(o.Up is { } up ? Window.Seconds(up) : "")} | {(o.Up is null ? "" : Delay(o.RecoveryDelay, "not readmitted"))} |");
            }
        }

        if (result.BalancerSide.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("## What the balancer did");
            text.AppendLine();
            text.AppendLine("| at | event | backend | pool | why |");
            text.AppendLine("|---:|---|---|---|---|");
            foreach (var e in result.BalancerSide.Take(ListedEvents))
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"| {Window.Seconds(e.At)} | {e.Kind} | {e.Backend} | {e.Pool} | {Cell(e.Reason)} |");
            }

            if (result.BalancerSide.Count > ListedEvents)
            {
                text.AppendLine();
                text.AppendLine(CultureInfo.InvariantCulture, $"…and {result.BalancerSide.Count - ListedEvents} more ({string.Join(", ", result.BalancerSide.Skip(ListedEvents).GroupBy(e => e.Kind).Select(g => $"{g.Count()} {g.Key}"))}).");
            }
        }
    }

    private static string Delay(TimeSpan? delay, string none) => delay is { } d ? Format.Milliseconds(d) : none;

    public static string ToHtml(ScenarioResult result)
    {
        var scenario = result.Scenario;
        var timeline = Timeline.Of(result.History, scenario.Load.Duration);
        var summary = LoadSummary.Of(result.History, scenario.Load.Duration);
        var perBackend = timeline.Backends.Select((b, i) => new Series(b, Svg.Palette[i % Svg.Palette.Length], [.. timeline.Slices.Select(s => s.RateOf(i))])).ToList();
        perBackend.Add(new Series("failed", Svg.FailureColor, [.. timeline.Slices.Select(s => s.FailedRate)]));
        var trouble = new List<Series>
        {
            new("failed", Svg.FailureColor, [.. timeline.Slices.Select(s => s.FailedRate)]),
            new("retried", "#f28e2b", [.. timeline.Slices.Select(s => s.RetriedRate)]),
        };
        var latency = new List<Series>
        {
            new("p50", "#4e79a7", [.. timeline.Slices.Select(s => s.Latency.Count == 0 ? double.NaN : s.Latency.Percentile(50).TotalMilliseconds)]),
            new("p99", "#e15759", [.. timeline.Slices.Select(s => s.Latency.Count == 0 ? double.NaN : s.Latency.Percentile(99).TotalMilliseconds)]),
        };

        var html = new StringBuilder();
        html.Append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">");
        html.Append(CultureInfo.InvariantCulture, $"<title>{E(scenario.Name)}: {(result.Passed ? "passed" : "FAILED")}</title><style>{Style}</style></head><body>");
        html.Append(CultureInfo.InvariantCulture, $"<h1>{E(scenario.Name)} <span class=\"badge {(result.Passed ? "pass" : "fail")}\">{(result.Passed ? "passed" : "failed")}</span></h1>");
        html.Append(CultureInfo.InvariantCulture, $"<p class=\"teaches\">{E(scenario.Teaches)}</p>");
        html.Append(CultureInfo.InvariantCulture, $"<p>Run {result.StartedAt:yyyy-MM-dd HH:mm} UTC · {summary.Requests} requests over {Window.Seconds(scenario.Load.Duration)} · "
            + $"{summary.Failed} failed ({Format.Percent(summary.ErrorRate)}) · {result.History.Count(r => r.Retries > 0)} retried · p50 {Format.Milliseconds(summary.Latency.Percentile(50))} · p99 {Format.Milliseconds(summary.Latency.Percentile(99))}</p>");

        html.Append("<h2>Expectations</h2><table><tr><th></th><th>expectation</th><th>measured</th></tr>");
        foreach (var e in result.Expectations)
        {
            html.Append(CultureInfo.InvariantCulture, $"<tr class=\"{(e.Passed ? "pass" : "fail")}\"><td>{(e.Passed ? "✔" : "✘")}</td><td>{E(e.Expectation)}</td><td>{E(e.Measured)}");
            if (!e.Passed && e.Evidence.Count > 0)
            {
                html.Append("<ul>").Append(string.Concat(e.Evidence.Select(line => $"<li>{E(line)}</li>"))).Append("</ul>");
            }

            html.Append("</td></tr>");
        }

        html.Append("</table>");
        foreach (var problem in result.Problems)
        {
            html.Append(CultureInfo.InvariantCulture, $"<p class=\"problem\">{E(problem)}</p>");
        }

        if (result.StallNote is { } stalls)
        {
            html.Append(CultureInfo.InvariantCulture, $"<p class=\"note\">{E(stalls)}</p>");
        }

        var unit = Format.Number(timeline.SliceLength.TotalMilliseconds, "0");
        html.Append("<h2>Over time</h2>");
        html.Append(Svg.Chart($"Requests per second by backend ({unit} ms slices)", "requests/s", timeline, perBackend, stacked: true, result.Events, result.BalancerSide));
        html.Append(Svg.Chart("Failed and retried requests per second", "requests/s", timeline, trouble, stacked: false, result.Events, result.BalancerSide));
        html.Append(Svg.Chart("Latency, from when each request was due", "ms", timeline, latency, stacked: false, result.Events, result.BalancerSide));
        html.Append("<p class=\"note-marks\">Dashed lines: the timeline's events. Marks on the time axis: the balancer's own (red: a backend taken out of rotation, green: let back in).</p>");

        if (result.BackendOutages.Count > 0)
        {
            html.Append("<h2>Detection and recovery</h2><table id=\"outages\"><tr><th>backend</th><th>what</th><th>down at</th><th>detected after</th><th>by</th><th>back at</th><th>readmitted after</th></tr>");
            foreach (var o in result.BackendOutages)
            {
                html.Append(CultureInfo.InvariantCulture, $"<tr class=\"{(o.Detected is null ? "fail" : "")}\"><td>{E(o.Backend)}</td><td>{E(o.Cause)}</td><td>{Window.Seconds(o.Down)}</td><td>{Delay(o.DetectionDelay, "not detected")}</td>"
                    + $"<td>{E(o.DetectedBy ?? "")}</td><td>{(o.Up is { } up ? Window.Seconds(up) : "")}</td><td>{(o.Up is null ? "" : Delay(o.RecoveryDelay, "not readmitted"))}</td></tr>");
            }

            html.Append("</table>");
        }

        if (result.BalancerSide.Count > 0)
        {
            html.Append("<h2>What the balancer did</h2><table id=\"balancer-events\"><tr><th>at</th><th>event</th><th>backend</th><th>pool</th><th>why</th></tr>");
            foreach (var e in result.BalancerSide.Take(ListedEvents))
            {
                html.Append(CultureInfo.InvariantCulture, $"<tr><td>{Window.Seconds(e.At)}</td><td>{E(e.Kind)}</td><td>{E(e.Backend)}</td><td>{E(e.Pool)}</td><td>{E(e.Reason)}</td></tr>");
            }

            html.Append("</table>");
            if (result.BalancerSide.Count > ListedEvents)
            {
                html.Append(CultureInfo.InvariantCulture, $"<p>…and {result.BalancerSide.Count - ListedEvents} more in {Json}.</p>");
            }
        }

        if (result.Events.Count > 0)
        {
            html.Append("<h2>Timeline</h2><table><tr><th>at</th><th>carried out at</th><th>event</th><th></th></tr>");
            foreach (var e in result.Events)
            {
                html.Append(CultureInfo.InvariantCulture, $"<tr class=\"{(e.Error is null ? "" : "fail")}\"><td>{Window.Seconds(e.At)}</td><td>{Window.Seconds(e.HappenedAt)}</td><td>{E(e.Description)}</td><td>{E(e.Error ?? "done")}</td></tr>");
            }

            html.Append("</table>");
        }

        html.Append("<h2>Backends</h2><table><tr><th>backend</th><th>requests answered</th><th>share</th></tr>");
        foreach (var (backend, count) in summary.Backends)
        {
            html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(backend)}</td><td>{count}</td><td>{Format.Percent(summary.ShareOf(count), 1)}</td></tr>");
        }

        html.Append(CultureInfo.InvariantCulture, $"</table><p>Every request: <a href=\"{Csv}\">{Csv}</a>, <a href=\"{Json}\">{Json}</a>. Scenario: {E(Path.GetFileName(scenario.Path))}.</p></body></html>");
        return html.ToString();
    }

    private const string Style =
        "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1000px;color:#222}"
        + "h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}.teaches{color:#555;font-style:italic}"
        + ".badge{font-size:.6em;padding:2px 10px;border-radius:10px;color:#fff;vertical-align:middle}.badge.pass{background:#2e7d32}.badge.fail{background:#c62828}"
        + "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top;font-size:.9em}"
        + "tr.fail td{background:#fdecea}tr.pass td:first-child{color:#2e7d32}tr.fail td:first-child{color:#c62828}.problem{color:#c62828}.note{color:#8a6d00}"
        + "svg.chart{display:block;margin:12px 0;border:1px solid #eee}svg .title{font-size:14px;font-weight:600;fill:#222}"
        + "svg .axis{font-size:11px;fill:#555}svg .legend{font-size:11px;fill:#333}svg .grid{stroke:#eee}svg .tick{stroke:#999}"
        + "svg .event{stroke:#333;stroke-dasharray:4 3}svg .event-label{font-size:10px;fill:#333}";

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);

    private static RunDocument ToJson(ScenarioResult result) => new(
        result.Scenario.Name, result.Scenario.Teaches, result.Passed, result.StartedAt,
        [.. result.Expectations.Select(e => new ExpectationDocument(e.Expectation, e.Passed, e.Measured, e.Evidence))],
        [.. result.Events.Select(e => new EventDocument(e.At.TotalMilliseconds, e.HappenedAt.TotalMilliseconds, e.Description, e.Error))],
        result.Problems,
        result.StallNote,
        [.. result.BalancerSide.Select(e => new BalancerEventDocument(e.At.TotalMilliseconds, e.Kind, e.Backend, e.Pool, e.Reason))],
        [.. result.BackendOutages.Select(o => new OutageDocument(o.Backend, o.Cause, o.Down.TotalMilliseconds, o.Up?.TotalMilliseconds, o.DetectionDelay?.TotalMilliseconds, o.DetectedBy, o.RecoveryDelay?.TotalMilliseconds))],
        [.. result.History.Select(r => new LoadJsonRecord(r.Id, r.Due.TotalMilliseconds, r.Latency.TotalMilliseconds, r.Client, r.Method, r.Path, r.Status, r.Backend, r.Retries, r.Error))]);
}

internal sealed record RunDocument(
    string Scenario, string Teaches, bool Passed, DateTimeOffset StartedAt, List<ExpectationDocument> Expectations, List<EventDocument> Events,
    IReadOnlyList<string> Problems, string? Stalls, List<BalancerEventDocument> BalancerEvents, List<OutageDocument> Outages, List<LoadJsonRecord> Requests);

internal sealed record BalancerEventDocument(double AtMs, string Kind, string Backend, string Pool, string Reason);

internal sealed record OutageDocument(string Backend, string Cause, double DownAtMs, double? UpAtMs, double? DetectedAfterMs, string? DetectedBy, double? ReadmittedAfterMs);

internal sealed record ExpectationDocument(string Expectation, bool Passed, string Measured, IReadOnlyList<string> Evidence);

internal sealed record EventDocument(double AtMs, double HappenedAtMs, string Event, string? Error);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RunDocument))]
internal sealed partial class ReportJson : JsonSerializerContext;
