using System.Globalization;

namespace Balancer.Tests.Kit;

/// <summary>
/// Reads a balancer's <c>/metrics</c>. The balancer's meter is named the same in every balancer a test process hosts,
/// and the exporter listens by name, so a test picks its own series by a label only it uses (a pool name, a port).
/// </summary>
public static class MetricsText
{
    /// <summary>The sum of the samples of <paramref name="family"/> whose labels include every one of <paramref name="labels"/> (<c>name="value"</c>).</summary>
    public static async Task<double> SumAsync(HttpClient admin, string family, params string[] labels) =>
        Samples(await admin.GetStringAsync("/metrics"), family, labels).Sum();

    /// <summary>Whether any sample of <paramref name="family"/> has every one of <paramref name="labels"/>.</summary>
    public static async Task<bool> HasAsync(HttpClient admin, string family, params string[] labels) =>
        Samples(await admin.GetStringAsync("/metrics"), family, labels).Any();

    private static IEnumerable<double> Samples(string text, string family, string[] labels) =>
        text.Split('\n')
            .Where(l => (l.StartsWith(family + "{", StringComparison.Ordinal) || l.StartsWith(family + " ", StringComparison.Ordinal))
                && labels.All(label => l.Contains(label, StringComparison.Ordinal)))
            .Select(l => double.Parse(l.Split(' ')[^1], CultureInfo.InvariantCulture));
}
