using System.Text.Json;
using System.Text.RegularExpressions;
using Balancer.Tests.Kit;
using Testbed.Reports;

namespace Balancer.Tests.Unit.Testbed.Reports;

/// <summary>What a run's report files say: the verdict, the measurements, the evidence, the charts, every request.</summary>
public sealed partial class ScenarioReportTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("report-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Markdown_GivesTheVerdict_EachExpectationWithItsMeasurement_AndTheEvidence()
    {
        var markdown = ScenarioReport.ToMarkdown(SampleRun.Create(_directory));

        Assert.StartsWith("# sample: FAILED", markdown, StringComparison.Ordinal);
        Assert.Contains("> b2 <dies> & comes back.", markdown, StringComparison.Ordinal);
        Assert.Contains("| **FAIL** | error rate ≤ 0.00% | 0.50% (5 of 1000) |", markdown, StringComparison.Ordinal);
        Assert.Contains("| pass | no requests answered by b2 (3.5s–7s) |", markdown, StringComparison.Ordinal);
        Assert.Contains("- t=3.01s 127.0.0.1 GET / → 502 (connection refused)", markdown, StringComparison.Ordinal);
        Assert.Contains("| 3s | 3.01s | kill b2 | done |", markdown, StringComparison.Ordinal);
    }

    [Fact]
    public void Html_HasThreeCharts_StackedAreasPerBackend_LinesForLatency_AndTheEventsAsMarkers()
    {
        var html = ScenarioReport.ToHtml(SampleRun.Create(_directory));

        Assert.Equal(3, SvgTag().Count(html));
        Assert.Equal(["failed", "b3", "b2", "b1"], SeriesOf("polygon", html)); // drawn top of the stack first
        Assert.Equal(["retried", "failed", "p99", "p50"], SeriesOf("polyline", html));
        Assert.Equal(3 * 2, Regex.Count(html, "class=\"event\""));
        Assert.Contains("&lt;dies&gt; &amp; comes back", html, StringComparison.Ordinal); // the scenario's words are text, never markup
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase); // self-contained and static
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void WhenTheTestbedStalled_BothReportsSaySo()
    {
        var run = SampleRun.Create(_directory) with { Stalls = [new(TimeSpan.FromSeconds(7.41), TimeSpan.FromMilliseconds(680))], Collecting = TimeSpan.FromMilliseconds(12) };

        const string Note = "The testbed itself paused 1 time, 680.0 ms in all (longest 680.0 ms at t=7.41s); garbage collection paused it 12.0 ms in all.";
        Assert.Contains("**Note:** " + Note, ScenarioReport.ToMarkdown(run), StringComparison.Ordinal);
        Assert.Contains("<p class=\"note\">" + Note, ScenarioReport.ToHtml(run), StringComparison.Ordinal);
        Assert.DoesNotContain("Note", ScenarioReport.ToMarkdown(SampleRun.Create(_directory)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WriteAsync_WritesEveryRequest_AsCsvAndJson()
    {
        var run = SampleRun.Create(_directory);

        await ScenarioReport.WriteAsync(run);

        var csv = await File.ReadAllLinesAsync(Path.Combine(_directory, ScenarioReport.Csv));
        Assert.Equal(1 + 1000, csv.Length);
        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_directory, ScenarioReport.Json)));
        Assert.False(json.RootElement.GetProperty("passed").GetBoolean());
        Assert.Equal(1000, json.RootElement.GetProperty("requests").GetArrayLength());
        Assert.Equal("kill b2", json.RootElement.GetProperty("events")[0].GetProperty("event").GetString());
        Assert.True(File.Exists(Path.Combine(_directory, ScenarioReport.Html)));
        Assert.True(File.Exists(Path.Combine(_directory, ScenarioReport.Markdown)));
    }

    private static List<string> SeriesOf(string element, string html) =>
        [.. Regex.Matches(html, $"<{element} class=\"series\" data-series=\"([^\"]+)\"").Select(m => m.Groups[1].Value)];

    [GeneratedRegex("<svg ")]
    private static partial Regex SvgTag();
}
