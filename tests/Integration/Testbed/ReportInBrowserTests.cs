using System.Text.RegularExpressions;
using Balancer.Tests.Kit;
using Testbed.Reports;

namespace Balancer.Tests.Integration.Testbed;

/// <summary>The HTML report as a real browser (headless Debian chromium) shows it: charts drawn, in the backends' colors.</summary>
public sealed class ReportInBrowserTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("report-browser-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task TheChartsRender_EachBackendsAreaIsPaintedInItsColor()
    {
        var run = SampleRun.Create(_directory);
        await ScenarioReport.WriteAsync(run);

        var shot = await Chromium.ScreenshotAsync(Path.Combine(_directory, ScenarioReport.Html), 1100, 1700);

        Assert.Equal((1100, 1700), (shot.Width, shot.Height));
        var counts = shot.Pixels().GroupBy(p => p).ToDictionary(g => g.Key, g => g.Count());
        Assert.True(counts.Count > 50, $"a near-blank page: {counts.Count} distinct colors");
        Assert.True(counts.GetValueOrDefault(0xFFFFFF) < shot.Width * shot.Height * 0.95, "the page is nearly all white");
        foreach (var (series, color) in new[] { ("b1", Svg.Palette[0]), ("b2", Svg.Palette[1]), ("b3", Svg.Palette[2]) })
        {
            // Areas are painted at 85% opacity over white.
            var painted = counts.Where(c => Near(c.Key, OverWhite(color, 0.85))).Sum(c => c.Value);
            Assert.True(painted > 5_000, $"{series}'s area covers only {painted} pixels of its color {color}");
        }
    }

    [Fact]
    public async Task TheLoadedPage_HoldsThreeChartsWithTheirSeries()
    {
        var run = SampleRun.Create(_directory);
        await ScenarioReport.WriteAsync(run);

        var dom = await Chromium.DumpDomAsync(Path.Combine(_directory, ScenarioReport.Html));

        Assert.Equal(3, Regex.Count(dom, "<svg "));
        Assert.Equal(4, Regex.Count(dom, "<polygon "));
        Assert.Equal(4, Regex.Count(dom, "<polyline "));
        Assert.Contains("sample <span class=\"badge fail\">failed</span>", dom, StringComparison.Ordinal);
    }

    private static int OverWhite(string hex, double opacity)
    {
        var rgb = Convert.ToInt32(hex[1..], 16);
        int Channel(int shift) => (int)Math.Round((((rgb >> shift) & 0xFF) * opacity) + (255 * (1 - opacity)));
        return (Channel(16) << 16) | (Channel(8) << 8) | Channel(0);
    }

    private static bool Near(int a, int b) =>
        Math.Abs(((a >> 16) & 0xFF) - ((b >> 16) & 0xFF)) <= 3 && Math.Abs(((a >> 8) & 0xFF) - ((b >> 8) & 0xFF)) <= 3 && Math.Abs((a & 0xFF) - (b & 0xFF)) <= 3;
}
