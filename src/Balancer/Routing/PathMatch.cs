using System.Text;
using System.Text.RegularExpressions;

namespace Balancer.Routing;

/// <summary>A route's path condition. Prefix, exact and glob paths ignore case, as routing does; a regex is as written.</summary>
public sealed record PathMatch(PathMatchKind Kind, string Pattern)
{
    /// <summary>The matcher for glob and regex paths (linear-time: RegexOptions.NonBacktracking); null for the others.</summary>
    public Regex? Matcher { get; } = Kind switch
    {
        PathMatchKind.Glob => GlobRegex(Pattern),
        PathMatchKind.Regex => new Regex(Pattern, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant),
        _ => null,
    };

    /// <summary>The characters a matching path starts with, whatever follows: what ranks it among other paths.</summary>
    public int LiteralLength => Kind switch
    {
        PathMatchKind.Glob => Pattern.IndexOf('*', StringComparison.Ordinal),
        PathMatchKind.Regex => 0,
        _ => Pattern.Length,
    };

    internal string Signature => $"{Kind}:{(Kind == PathMatchKind.Regex ? Pattern : Pattern.ToLowerInvariant())}";

    public override string ToString() => Kind switch
    {
        PathMatchKind.Prefix => Pattern,
        PathMatchKind.Glob => Pattern,
        PathMatchKind.Exact => $"= {Pattern}",
        _ => $"~ {Pattern}",
    };

    private static Regex GlobRegex(string pattern)
    {
        var regex = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            if (pattern[i] != '*')
            {
                regex.Append(System.Text.RegularExpressions.Regex.Escape(pattern[i].ToString()));
            }
            else
            {
                regex.Append(i == pattern.Length - 1 ? ".*" : "[^/]*");
            }
        }

        return new Regex(regex.Append('$').ToString(), RegexOptions.NonBacktracking | RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);
    }
}
