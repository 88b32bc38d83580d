using System.Text.RegularExpressions;

namespace Balancer.Routing;

/// <summary>A condition on a request header or query parameter.</summary>
public sealed record ValueMatch(string Name, ValueMatchKind Kind, IReadOnlyList<string> Values)
{
    /// <summary>The matcher of a regex condition (linear-time); null for the others.</summary>
    public Regex? Matcher { get; } = Kind == ValueMatchKind.Regex
        ? new Regex(Values[0], RegexOptions.NonBacktracking | RegexOptions.CultureInvariant)
        : null;

    internal string Signature =>
        $"{Name.ToLowerInvariant()}={Kind}:{string.Join('|', (Kind == ValueMatchKind.Regex ? Values : Values.Select(v => v.ToLowerInvariant())).Order(StringComparer.Ordinal))}";
}
