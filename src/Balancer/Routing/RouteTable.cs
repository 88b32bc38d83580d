namespace Balancer.Routing;

/// <summary>
/// The order routes are tried in; the first whose conditions all hold takes the request.
/// <list type="number">
/// <item>Higher <c>priority</c> first (0 unless given).</item>
/// <item>Then by host: a route naming an exact host before one naming only wildcards (a longer suffix first),
/// before one naming none (nginx's <c>server_name</c>).</item>
/// <item>Then by path, as nginx orders locations: an exact path, then regexes (in file order), then prefixes and
/// globs by the length of their literal start (<c>/api/v2</c> before <c>/api/*</c> before <c>/api</c>... at equal
/// length a prefix before a glob), then routes with no path.</item>
/// <item>Then more header and query conditions first, then a route naming methods before one that does not.</item>
/// <item>Then the order in the file (<c>routes:</c> first, then pools' <c>paths</c>).</item>
/// </list>
/// The default pool's catch-all is always last.
/// </summary>
internal static class RouteTable
{
    /// <summary><paramref name="routes"/> in the order they are tried (a stable sort: ties keep their given order).</summary>
    public static IReadOnlyList<RouteRule> Order(IEnumerable<RouteRule> routes) =>
        [.. routes
            .OrderBy(r => r.IsCatchAll)
            .ThenByDescending(r => r.Priority)
            .ThenByDescending(HostRank)
            .ThenByDescending(r => r.Hosts.Count == 0 ? 0 : r.Hosts.Max(h => h.Length))
            .ThenByDescending(PathRank)
            .ThenByDescending(r => r.Path is { Kind: PathMatchKind.Prefix or PathMatchKind.Glob } path ? path.LiteralLength : 0)
            .ThenByDescending(r => r.Path?.Kind == PathMatchKind.Prefix)
            .ThenByDescending(r => r.Headers.Count + r.Query.Count)
            .ThenByDescending(r => r.Methods.Count > 0)];

    private static int HostRank(RouteRule route) =>
        route.Hosts.Count == 0 ? 0 : route.Hosts.Any(h => !h.StartsWith("*.", StringComparison.Ordinal)) ? 2 : 1;

    private static int PathRank(RouteRule route) => route.Path?.Kind switch
    {
        PathMatchKind.Exact => 3,
        PathMatchKind.Regex => 2,
        PathMatchKind.Prefix or PathMatchKind.Glob => 1,
        _ => 0,
    };
}
