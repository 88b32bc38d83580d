using System.Globalization;
using System.Net;
using System.Text;
using Testbed.Scenarios;

namespace Testbed.Reports;

/// <summary>A series for a chart: a value per timeline slice (NaN for none).</summary>
public sealed record Series(string Name, string Color, IReadOnlyList<double> Values);

/// <summary>Charts as inline SVG: no script, no external file, so a report is one self-contained page.</summary>
public static class Svg
{
    private const int Width = 960;
    private const int Height = 280;
    private const int Left = 64;
    private const int Right = 16;
    private const int Top = 36;
    private const int Bottom = 40;
    private const int LegendLimit = 12;

    public static readonly string[] Palette = ["#4e79a7", "#f28e2b", "#59a14f", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#86bcb6"];

    public const string FailureColor = "#d62728";

    private static readonly double[] NiceSteps = [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10];

    /// <summary>
    /// A chart over the run's time: series stacked as areas (<paramref name="stacked"/>) or drawn as lines, the
    /// timeline's events as labelled vertical markers.
    /// </summary>
    /// <param name="balancerEvents">The balancer's own events, drawn as marks along the time axis: red when it took a backend out, green when it let one back.</param>
    public static string Chart(string title, string unit, Timeline timeline, IReadOnlyList<Series> series, bool stacked, IReadOnlyList<EventOutcome> events, IReadOnlyList<BalancerSideEvent>? balancerEvents = null)
    {
        var slices = timeline.Slices.Count;
        var duration = timeline.SliceLength * slices;
        var tops = new double[series.Count][];
        var running = new double[slices];
        for (var s = 0; s < series.Count; s++)
        {
            tops[s] = new double[slices];
            for (var i = 0; i < slices; i++)
            {
                var value = series[s].Values[i];
                tops[s][i] = stacked ? running[i] += double.IsNaN(value) ? 0 : value : value;
            }
        }

        var highest = tops.SelectMany(t => t).Where(v => !double.IsNaN(v)).DefaultIfEmpty(0).Max();
        var yMax = NiceCeiling(highest);
        double X(TimeSpan t) => Left + ((Width - Left - Right) * (t / duration));
        double Y(double v) => Height - Bottom - ((Height - Top - Bottom) * (v / yMax));

        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {Width} {Height}\" width=\"{Width}\" height=\"{Height}\" role=\"img\" aria-label=\"{Encode(title)}\">");
        svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"0\" y=\"0\" width=\"{Width}\" height=\"{Height}\" fill=\"#ffffff\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left}\" y=\"20\" class=\"title\">{Encode(title)}</text>");

        // Horizontal grid with value labels.
        for (var tick = 0; tick <= 4; tick++)
        {
            var value = yMax * tick / 4;
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{Y(value):0.#}\" y2=\"{Y(value):0.#}\" class=\"grid\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{Y(value) + 4:0.#}\" class=\"axis\" text-anchor=\"end\">{Number(value)}</text>");
        }

        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"14\" y=\"{(Top + Height - Bottom) / 2}\" class=\"axis\" transform=\"rotate(-90 14 {(Top + Height - Bottom) / 2})\" text-anchor=\"middle\">{Encode(unit)}</text>");

        // Time axis.
        var step = NiceCeiling(duration.TotalSeconds / 10);
        for (var t = 0.0; t <= duration.TotalSeconds + 1e-9; t += step)
        {
            var x = X(TimeSpan.FromSeconds(t));
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{x:0.#}\" x2=\"{x:0.#}\" y1=\"{Height - Bottom}\" y2=\"{Height - Bottom + 4}\" class=\"tick\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x:0.#}\" y=\"{Height - Bottom + 18}\" class=\"axis\" text-anchor=\"middle\">{Number(t)}s</text>");
        }

        // Series: stacked areas drawn as steps (each slice is a constant rate), or lines through slice middles.
        for (var s = series.Count - 1; s >= 0; s--)
        {
            if (stacked)
            {
                var points = new StringBuilder();
                for (var i = 0; i < slices; i++)
                {
                    points.Append(CultureInfo.InvariantCulture, $"{X(timeline.SliceLength * i):0.#},{Y(tops[s][i]):0.#} {X(timeline.SliceLength * (i + 1)):0.#},{Y(tops[s][i]):0.#} ");
                }

                for (var i = slices - 1; i >= 0; i--)
                {
                    var below = s == 0 ? 0 : tops[s - 1][i];
                    points.Append(CultureInfo.InvariantCulture, $"{X(timeline.SliceLength * (i + 1)):0.#},{Y(below):0.#} {X(timeline.SliceLength * i):0.#},{Y(below):0.#} ");
                }

                svg.Append(CultureInfo.InvariantCulture, $"<polygon class=\"series\" data-series=\"{Encode(series[s].Name)}\" points=\"{points.ToString().TrimEnd()}\" fill=\"{series[s].Color}\" fill-opacity=\"0.85\" stroke=\"{series[s].Color}\" stroke-width=\"0.5\"/>");
            }
            else
            {
                var points = string.Join(' ', Enumerable.Range(0, slices).Where(i => !double.IsNaN(tops[s][i]))
                    .Select(i => string.Create(CultureInfo.InvariantCulture, $"{X(timeline.SliceLength * (i + 0.5)):0.#},{Y(tops[s][i]):0.#}")));
                svg.Append(CultureInfo.InvariantCulture, $"<polyline class=\"series\" data-series=\"{Encode(series[s].Name)}\" points=\"{points}\" fill=\"none\" stroke=\"{series[s].Color}\" stroke-width=\"2\"/>");
            }
        }

        // Timeline events.
        foreach (var (e, i) in events.Select((e, i) => (e, i)))
        {
            var x = X(e.HappenedAt);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{x:0.#}\" x2=\"{x:0.#}\" y1=\"{Top}\" y2=\"{Height - Bottom}\" class=\"event\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x + 3:0.#}\" y=\"{Top + 10 + (12 * (i % 4))}\" class=\"event-label\">{Encode(e.Description)}</text>");
        }

        // The balancer's events: a mark each on the time axis, labelled while there are few enough to read.
        var marks = (balancerEvents ?? []).Where(e => e.At >= TimeSpan.Zero && e.At <= duration && MarkColor(e.Kind) is not null).ToList();
        foreach (var (e, i) in marks.Select((e, i) => (e, i)))
        {
            var x = X(e.At);
            svg.Append(CultureInfo.InvariantCulture, $"<g class=\"balancer-event\" data-kind=\"{Encode(e.Kind)}\"><title>t={Window.Seconds(e.At)} {Encode(e.Describe())}</title>");
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{x:0.#}\" x2=\"{x:0.#}\" y1=\"{Height - Bottom - 14}\" y2=\"{Height - Bottom}\" stroke=\"{MarkColor(e.Kind)}\" stroke-width=\"2\"/>");
            if (marks.Count <= 12)
            {
                svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x + 3:0.#}\" y=\"{Height - Bottom - 4 - (10 * (i % 3))}\" class=\"event-label\" fill=\"{MarkColor(e.Kind)}\">{Encode($"{e.Backend} {e.Kind}")}</text>");
            }

            svg.Append("</g>");
        }

        // Legend.
        var shown = series.Take(LegendLimit).ToList();
        var legendX = Width - Right - (shown.Count * 96) - (series.Count > LegendLimit ? 80 : 0);
        foreach (var (entry, i) in shown.Select((entry, i) => (entry, i)))
        {
            var x = legendX + (i * 96);
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x}\" y=\"10\" width=\"10\" height=\"10\" fill=\"{entry.Color}\"/><text x=\"{x + 14}\" y=\"19\" class=\"legend\">{Encode(Shorten(entry.Name))}</text>");
        }

        if (series.Count > LegendLimit)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{legendX + (shown.Count * 96)}\" y=\"19\" class=\"legend\">+{series.Count - LegendLimit} more</text>");
        }

        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{Height - Bottom}\" y2=\"{Height - Bottom}\" class=\"tick\"/>");
        svg.Append("</svg>");
        return svg.ToString();
    }

    private static string? MarkColor(string kind) => kind switch
    {
        "down" or "ejected" => FailureColor,
        "up" or "returned" => "#2e7d32",
        "drain-start" or "drain-end" or "slow-start-end" => "#6a51a3",
        _ => null,
    };

    /// <summary>A round number (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6 or 8 times a power of ten) at least <paramref name="value"/>; 1 for nothing.</summary>
    public static double NiceCeiling(double value)
    {
        if (value <= 0 || double.IsNaN(value))
        {
            return 1;
        }

        var power = Math.Pow(10, Math.Floor(Math.Log10(value)));
        return NiceSteps.Select(m => m * power).First(c => c >= value - 1e-12);
    }

    private static string Number(double value) => value.ToString(value >= 100 ? "0" : "0.##", CultureInfo.InvariantCulture);

    private static string Shorten(string name) => name.Length <= 12 ? name : name[..11] + "…";

    private static string Encode(string text) => WebUtility.HtmlEncode(text);
}
