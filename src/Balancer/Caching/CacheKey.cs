using System.Text;

namespace Balancer.Caching;

/// <summary>
/// Cache keys (under <c>redis-server.key-prefix</c>): <c>cache:{path?query} {METHOD} {scheme}://{host}</c>. The path
/// comes first so that a purge by path prefix is one key pattern; the path is in its escaped form (no spaces) and the
/// query is kept as sent (BalanceHub's cache ignored it and mixed up answers). Variants of a URL whose responses vary
/// add <c>#{hash}</c> (<see cref="VaryMarker"/>).
/// </summary>
internal static class CacheKey
{
    public const string Namespace = "cache:";

    public static string Of(HttpRequest request) => For(request.Method, request.Scheme, request.Host.Value ?? "", request.Path.ToUriComponent() + request.QueryString.Value);

    public static string For(string method, string scheme, string host, string pathAndQuery) =>
        $"{Namespace}{pathAndQuery} {method.ToUpperInvariant()} {scheme.ToLowerInvariant()}://{host.ToLowerInvariant()}";

    /// <summary>The keys a URL's answers live under: GET and HEAD (their variants hang off these).</summary>
    public static string[] OfUrl(string scheme, string host, string pathAndQuery) =>
        [For("GET", scheme, host, pathAndQuery), For("HEAD", scheme, host, pathAndQuery)];

    /// <summary>
    /// Globs (Redis <c>SCAN MATCH</c>) for every key of one URL, all methods and variants; any host when
    /// <paramref name="host"/> is null, either scheme when <paramref name="scheme"/> is.
    /// </summary>
    public static string[] UrlPatterns(string? scheme, string? host, string pathAndQuery)
    {
        var url = Namespace + Escape(pathAndQuery) + " *";
        if (host is null)
        {
            return [url];
        }

        var exact = url + " " + (scheme is null ? "*" : Escape(scheme.ToLowerInvariant())) + "://" + Escape(host.ToLowerInvariant());
        return [exact, exact + "#*"];
    }

    /// <summary>A glob for every key whose path starts with <paramref name="pathPrefix"/>.</summary>
    public static string PrefixPattern(string pathPrefix) => Namespace + Escape(pathPrefix) + "*";

    public static string AllPattern => Namespace + "*";

    /// <summary>Escapes the glob's special characters so that they match only themselves.</summary>
    private static string Escape(string text)
    {
        var escaped = new StringBuilder(text.Length);
        foreach (var ch in text)
        {
            if (ch is '*' or '?' or '[' or ']' or '\\')
            {
                escaped.Append('\\');
            }

            escaped.Append(ch);
        }

        return escaped.ToString();
    }
}
