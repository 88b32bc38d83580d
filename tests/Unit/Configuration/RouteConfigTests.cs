using Balancer.Configuration;
using Balancer.Routing;

namespace Balancer.Tests.Unit.Configuration;

/// <summary>config.yaml's <c>routes:</c>: what is read, the order routes are tried in, and every mistake named with key and line.</summary>
public sealed class RouteConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-routes-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private ConfigLoadResult Load(string yaml)
    {
        var path = Path.Combine(_dir, "config.yaml");
        File.WriteAllText(path, yaml);
        return ConfigLoader.Load(path, [], new Dictionary<string, string>());
    }

    private const string Pools = """
        pools:
          - { name: api, paths: [/api, /api/v2] }
          - { name: web, paths: [/web] }
        """;

    private IReadOnlyList<string> Errors(string routes) => Load(Pools + "\n" + routes).Errors;

    [Fact]
    public void Routes_AreRead_WithEveryKindOfCondition()
    {
        var o = Load(Pools + """

            routes:
              - name: shop
                pool: web
                priority: 5
                hosts: [Shop.Example.com, "*.shop.example.com:8443"]
                path: { regex: "^/p/[0-9]+$" }
                methods: [get, head]
                headers: { X-Beta: "1", X-Env: { prefix: stag }, X-Debug: { present: true }, Cookie: { absent: true }, X-Id: { regex: "^[a-f0-9]+$" }, X-Tier: [gold, silver] }
                query: { lang: en }
            """).Options!;

        var shop = o.Routes.Single(r => r.Name == "shop");
        Assert.Equal(("web", 5), (shop.Pool, shop.Priority));
        Assert.Equal(["shop.example.com", "*.shop.example.com:8443"], shop.Hosts);
        Assert.Equal(new PathMatch(PathMatchKind.Regex, "^/p/[0-9]+$").Signature, shop.Path!.Signature);
        Assert.Equal(["GET", "HEAD"], shop.Methods);
        Assert.Equal(
            ["Cookie=Absent:", "X-Beta=Exact:1", "X-Debug=Present:", "X-Env=Prefix:stag", "X-Id=Regex:^[a-f0-9]+$", "X-Tier=Exact:gold|silver"],
            shop.Headers.Select(h => $"{h.Name}={h.Kind}:{string.Join('|', h.Values)}").Order(StringComparer.Ordinal));
        Assert.Equal("lang=Exact:en", Assert.Single(shop.Query) is var q ? $"{q.Name}={q.Kind}:{q.Values[0]}" : "");
    }

    [Fact]
    public void PathShorthand_IsAPrefix_OrAGlobWithAStar()
    {
        var o = Load(Pools + """

            routes:
              - { name: a, pool: web, path: /shop/ }
              - { name: b, pool: web, path: "/img/*.png" }
              - { name: c, pool: web, path: { exact: /login } }
              - { name: d, pool: web, path: { glob: "/x/*" } }
            """).Options!;

        string Of(string name) => o.Routes.Single(r => r.Name == name).Path!.ToString();
        Assert.Equal(["/shop", "/img/*.png", "= /login", "/x/*"], new[] { Of("a"), Of("b"), Of("c"), Of("d") });
    }

    [Fact]
    public void TheTable_IsOrdered_ByPriority_Host_Path_Conditions_Methods_ThenFile()
    {
        var o = Load(Pools + """

            routes:
              - { name: no-path, pool: web, headers: { X-A: "1" } }
              - { name: glob-short, pool: web, path: "/a/*" }
              - { name: prefix-long, pool: web, path: /a/b/c }
              - { name: regex-2, pool: web, path: { regex: "^/r2" } }
              - { name: regex-1, pool: web, path: { regex: "^/r1" } }
              - { name: exact, pool: web, path: { exact: /a } }
              - { name: wildcard-host, pool: web, hosts: ["*.example.com"] }
              - { name: longer-wildcard, pool: web, hosts: ["*.eu.example.com"] }
              - { name: exact-host, pool: web, hosts: [example.com] }
              - { name: urgent, pool: web, priority: 1 }
              - { name: late, pool: web, priority: -1, path: /zzz/long/path }
              - { name: with-method, pool: web, path: /m, methods: [POST] }
              - { name: with-header, pool: web, path: /m, headers: { X-M: "1" } }
              - { name: prefix-same-length, pool: web, path: /a/b }
              - { name: glob-same-length, pool: web, path: "/a/b*" }
            """).Options!;

        Assert.Equal(
            [
                "urgent", "exact-host", "longer-wildcard", "wildcard-host", "exact", "regex-2", "regex-1", "api#1",
                "prefix-long", "prefix-same-length", "api#0", "web#0", "glob-same-length", "glob-short", "with-header", "with-method",
                "no-path", "late", "default",
            ],
            o.Routes.Select(r => r.Name));
        Assert.True(o.Routes[^1].IsCatchAll);
    }

    [Fact]
    public void APoolOnlyRoutesLeadTo_NeedsNoPaths_ButOneNothingLeadsTo_IsAnError()
    {
        const string pools = "pools: [ { name: web } ]\n";
        Assert.Empty(Load(pools + "routes: [ { pool: web, hosts: [web.example.com] } ]").Errors);
        Assert.Equal(["pools[0].paths (line 1): is required unless routes send to this pool: the path prefixes it serves"], Load(pools).Errors);
    }

    [Theory]
    [InlineData("routes: [ { pool: nope, path: /x } ]", "routes[0].pool (line 4): nope is not a pool (pools: api, default, web)")]
    [InlineData("routes: [ { path: /x } ]", "routes[0].pool (line 4): is required: the pool this route sends to")]
    [InlineData("routes: [ { pool: web, name: 'a b' } ]", "routes[0].name (line 4): a b is not a route name (letters, digits, - and _)")]
    [InlineData("routes: [ { pool: web, name: web } ]", "routes[0].name (line 4): web is the name of a pool or of another route; route names are their own")]
    [InlineData("routes: [ { pool: web, path: x } ]", "routes[0].path (line 4): x must start with /")]
    [InlineData("routes: [ { pool: web, path: { exact: /a*b } } ]", "routes[0].path.exact (line 4): /a*b is not a plain path prefix (no ?, #, spaces, wildcards or braces)")]
    [InlineData("routes: [ { pool: web, path: { exact: /a, prefix: /b } } ]", "routes[0].path (line 4): give one of prefix, exact, glob or regex, e.g. path: { exact: /login }")]
    [InlineData("routes: [ { pool: web, hosts: [\"ex ample.com\"] } ]", "routes[0].hosts[0] (line 4): ex ample.com is not a host (api.example.com, *.example.com, optionally with :port)")]
    [InlineData("routes: [ { pool: web, methods: [G3T] } ]", "routes[0].methods[0] (line 4): G3T is not an HTTP method")]
    [InlineData("routes: [ { pool: web, headers: { X-A: { present: false } } } ]", "routes[0].headers.X-A.present (line 4): can only be true (leave the condition out otherwise)")]
    [InlineData("routes: [ { pool: web, headers: { X-A: { equals: b } } } ]", "routes[0].headers.X-A (line 4): give one of present, absent, exact, prefix or regex, e.g. { prefix: beta }")]
    [InlineData("routes: [ { pool: web, headers: { X-A: \"\" } } ]", "routes[0].headers.X-A (line 4): give a value to compare with (or { present: true })")]
    [InlineData("routes: [ { pool: web, paht: /x } ]", "routes[0].paht (line 4): unknown key; did you mean path?")]
    public void BadRoutes_AreNamed_WithKeyAndLine(string routes, string error) =>
        Assert.Equal([error], Errors(routes));

    [Theory]
    [InlineData("([")]
    [InlineData("(a)\\\\1")]
    [InlineData("(?=a)b")]
    public void ARegexThatIsInvalidOrCannotBeMatchedInLinearTime_IsAnError(string regex)
    {
        var error = Assert.Single(Errors($"routes: [ {{ pool: web, path: {{ regex: \"{regex}\" }} }} ]"));
        Assert.StartsWith("routes[0].path.regex (line 4): ", error, StringComparison.Ordinal);
        Assert.Contains(regex.Replace("\\\\", "\\", StringComparison.Ordinal), error, StringComparison.Ordinal);
    }

    [Fact]
    public void RoutesMatchingExactlyTheSame_AreAnError_WhateverTheirPriorities()
    {
        Assert.Equal(
            ["routes[1] (line 6): matches exactly what route a (routes[0]) matches: one of them would never be used"],
            Errors("""
                routes:
                  - { name: a, pool: web, hosts: [x.com, y.com], headers: { X-A: "1" } }
                  - { name: b, pool: api, priority: 3, hosts: [Y.com, x.com], headers: { x-a: "1" } }
                """));
        Assert.Equal(
            ["pools[0].paths[0] (line 2): matches exactly what route a (routes[0]) matches: one of them would never be used"],
            Errors("routes: [ { name: a, pool: web, path: /api } ]"));
    }
}
