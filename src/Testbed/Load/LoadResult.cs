using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Testbed.Load;

/// <summary>A finished load run: every measured request, and what they add up to.</summary>
public sealed class LoadResult
{
    public LoadResult(LoadOptions options, IReadOnlyList<RequestRecord> records, IReadOnlyList<Stall>? stalls = null)
    {
        Options = options;
        Records = records;
        Stalls = stalls ?? [];
        Summary = LoadSummary.Of(records, options.Duration);
    }

    /// <summary>Moments the load generator's own process or machine paused (see <see cref="StallWatch"/>).</summary>
    public IReadOnlyList<Stall> Stalls { get; }

    public LoadOptions Options { get; }

    /// <summary>Every measured request, by when it was due.</summary>
    public IReadOnlyList<RequestRecord> Records { get; }

    public LoadSummary Summary { get; }
}

/// <summary>Counts and latency percentiles over a set of requests.</summary>
/// <param name="Latency">Over the requests that got an HTTP answer, from when each was due.</param>
public sealed record LoadSummary(
    int Requests, int Answered, int Failed, double Throughput, LatencyHistogram Latency,
    IReadOnlyDictionary<int, int> Statuses, IReadOnlyDictionary<string, int> Backends)
{
    /// <summary>Failed (no answer, or 5xx) over all requests; 0 when there were none.</summary>
    public double ErrorRate => Requests == 0 ? 0 : Failed / (double)Requests;

    /// <summary>The share of all requests that <paramref name="count"/> of them make; 0 when there were none.</summary>
    public double ShareOf(int count) => Requests == 0 ? 0 : count / (double)Requests;

    public static LoadSummary Of(IReadOnlyCollection<RequestRecord> records, TimeSpan over)
    {
        var latency = new LatencyHistogram();
        foreach (var record in records.Where(r => r.Status != 0))
        {
            latency.Record(record.Latency);
        }

        return new LoadSummary(
            records.Count,
            records.Count(r => r.Status != 0),
            records.Count(r => r.Failed),
            over > TimeSpan.Zero ? records.Count / over.TotalSeconds : 0,
            latency,
            records.GroupBy(r => r.Status).OrderBy(g => g.Key).ToDictionary(g => g.Key, g => g.Count()),
            records.Where(r => r.Backend is not null).GroupBy(r => r.Backend!).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count()));
    }
}

/// <summary>Limits a load run must stay within; a run that breaks one fails.</summary>
public sealed record LoadThresholds(double? MaxErrorRate = null, TimeSpan? MaxP50 = null, TimeSpan? MaxP99 = null, double? MinThroughput = null)
{
    /// <summary>Each limit broken, with the measured value.</summary>
    public IReadOnlyList<string> Check(LoadSummary summary)
    {
        var broken = new List<string>();
        if (MaxErrorRate is { } rate && summary.ErrorRate > rate)
        {
            broken.Add(string.Create(CultureInfo.InvariantCulture, $"error rate {Format.Percent(summary.ErrorRate)} is above {Format.Percent(rate)} ({summary.Failed} of {summary.Requests})"));
        }

        if (MaxP50 is { } p50 && summary.Latency.Percentile(50) > p50)
        {
            broken.Add($"p50 {Format.Milliseconds(summary.Latency.Percentile(50))} is above {Format.Milliseconds(p50)}");
        }

        if (MaxP99 is { } p99 && summary.Latency.Percentile(99) > p99)
        {
            broken.Add($"p99 {Format.Milliseconds(summary.Latency.Percentile(99))} is above {Format.Milliseconds(p99)}");
        }

        if (MinThroughput is { } throughput && summary.Throughput < throughput)
        {
            broken.Add(string.Create(CultureInfo.InvariantCulture, $"throughput {summary.Throughput:F1} requests/s is below {throughput:F1}"));
        }

        return broken;
    }
}

/// <summary>Numbers as the reports print them.</summary>
public static class Format
{
    public static string Milliseconds(TimeSpan value) => value.TotalMilliseconds.ToString(value.TotalMilliseconds < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture) + " ms";

    public static string Number(double value, string format = "0.##") => value.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>A share as a percentage: <c>2.00%</c>.</summary>
    public static string Percent(double share, int decimals = 2) => (share * 100).ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) + "%";

    /// <summary>A sentence on the testbed's own pauses, or null when it kept time throughout.</summary>
    public static string? Stalls(IReadOnlyList<Stall> stalls, TimeSpan? collecting = null)
    {
        if (stalls.Count == 0)
        {
            return null;
        }

        var longest = stalls.MaxBy(s => s.Length)!;
        var total = TimeSpan.FromTicks(stalls.Sum(s => s.Length.Ticks));
        return $"The testbed itself paused {stalls.Count} time{(stalls.Count == 1 ? "" : "s")}, {Milliseconds(total)} in all (longest {Milliseconds(longest.Length)} "
            + $"at t={Number(longest.At.TotalSeconds, "0.###")}s){(collecting is { } gc ? $"; garbage collection paused it {Milliseconds(gc)} in all" : "")}. "
            + "Requests across a pause wait it out whoever caused it (this process, or the machine), so results then say as much about the machine as about the balancer.";
    }
}

/// <summary>A load run written out: Markdown for people, CSV and JSON for tools.</summary>
public static class LoadReport
{
    public static string Markdown(LoadResult result, IReadOnlyList<string>? broken = null)
    {
        var s = result.Summary;
        var o = result.Options;
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"# Load run: {o.Target}");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"{(o.Model == LoadModel.Open ? $"Open model, {Format.Number(o.Rate)} requests/s" : $"Closed model, {o.Concurrency} clients")}, "
            + $"{Format.Number(o.Duration.TotalSeconds)} s measured after {Format.Number(o.Warmup.TotalSeconds)} s of warm-up, from {o.Clients.Count} client address(es).");
        text.AppendLine();
        text.AppendLine("| requests | answered | failed | error rate | requests/s | p50 | p90 | p99 | p99.9 | max |");
        text.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        text.AppendLine(CultureInfo.InvariantCulture, $"| {s.Requests} | {s.Answered} | {s.Failed} | {Format.Percent(s.ErrorRate)} | {Format.Number(s.Throughput, "0.0")} | "
            + $"{Format.Milliseconds(s.Latency.Percentile(50))} | {Format.Milliseconds(s.Latency.Percentile(90))} | {Format.Milliseconds(s.Latency.Percentile(99))} | "
            + $"{Format.Milliseconds(s.Latency.Percentile(99.9))} | {Format.Milliseconds(s.Latency.Max)} |");
        if (Format.Stalls(result.Stalls) is { } stalls)
        {
            text.AppendLine();
            text.AppendLine(stalls);
        }

        text.AppendLine();
        text.AppendLine("| status | requests |");
        text.AppendLine("|---|---:|");
        foreach (var (status, count) in s.Statuses)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {(status == 0 ? "no answer" : status.ToString(CultureInfo.InvariantCulture))} | {count} |");
        }

        if (s.Backends.Count > 0)
        {
            text.AppendLine();
            BackendTable(text, s);
        }

        text.AppendLine();
        text.AppendLine("| latency up to | requests | |");
        text.AppendLine("|---:|---:|---|");
        var most = Math.Max(1, s.Latency.Ranges().Select(r => r.Count).DefaultIfEmpty(1).Max());
        foreach (var (upTo, count) in s.Latency.Ranges())
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {Format.Milliseconds(upTo)} | {count} | {new string('#', (int)Math.Ceiling(40.0 * count / most))} |");
        }

        if (broken is not null)
        {
            text.AppendLine();
            text.AppendLine(broken.Count == 0 ? "Every threshold held." : "Thresholds broken:");
            foreach (var line in broken)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"- {line}");
            }
        }

        return text.ToString();
    }

    /// <summary>Requests answered by each backend, and their share of all requests, as a Markdown table.</summary>
    internal static void BackendTable(StringBuilder text, LoadSummary summary)
    {
        text.AppendLine("| backend | requests answered | share |");
        text.AppendLine("|---|---:|---:|");
        foreach (var (backend, count) in summary.Backends)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {backend} | {count} | {Format.Percent(summary.ShareOf(count), 1)} |");
        }
    }

    public static string Csv(IEnumerable<RequestRecord> records)
    {
        var text = new StringBuilder("id,due_ms,latency_ms,client,method,path,status,backend,retries,error\n");
        foreach (var r in records)
        {
            text.Append(CultureInfo.InvariantCulture, $"{r.Id},{r.Due.TotalMilliseconds:0.###},{r.Latency.TotalMilliseconds:0.###},{r.Client},{r.Method},{Quote(r.Path)},{r.Status},{Quote(r.Backend)},{r.Retries},{Quote(r.Error)}\n");
        }

        return text.ToString();
    }

    public static string Json(LoadResult result) => JsonSerializer.Serialize(ToJson(result), LoadJson.Default.LoadJsonDocument);

    internal static LoadJsonDocument ToJson(LoadResult result)
    {
        var s = result.Summary;
        return new LoadJsonDocument(
            result.Options.Target.ToString(), result.Options.Model.ToString().ToLowerInvariant(), s.Requests, s.Answered, s.Failed, s.ErrorRate, s.Throughput,
            new Dictionary<string, double>
            {
                ["p50"] = s.Latency.Percentile(50).TotalMilliseconds,
                ["p90"] = s.Latency.Percentile(90).TotalMilliseconds,
                ["p99"] = s.Latency.Percentile(99).TotalMilliseconds,
                ["p99.9"] = s.Latency.Percentile(99.9).TotalMilliseconds,
                ["max"] = s.Latency.Max.TotalMilliseconds,
            },
            s.Statuses.ToDictionary(p => p.Key.ToString(CultureInfo.InvariantCulture), p => p.Value),
            s.Backends,
            [.. result.Records.Select(r => new LoadJsonRecord(r.Id, r.Due.TotalMilliseconds, r.Latency.TotalMilliseconds, r.Client, r.Method, r.Path, r.Status, r.Backend, r.Retries, r.Error))]);
    }

    private static string Quote(string? value) =>
        value is null ? "" : value.IndexOfAny([',', '"', '\n']) < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}

internal sealed record LoadJsonDocument(
    string Target, string Model, int Requests, int Answered, int Failed, double ErrorRate, double Throughput,
    Dictionary<string, double> LatencyMs, Dictionary<string, int> Statuses, IReadOnlyDictionary<string, int> Backends, List<LoadJsonRecord> Records);

internal sealed record LoadJsonRecord(long Id, double DueMs, double LatencyMs, string Client, string Method, string Path, int Status, string? Backend, int? Retries, string? Error);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LoadJsonDocument))]
internal sealed partial class LoadJson : JsonSerializerContext;
