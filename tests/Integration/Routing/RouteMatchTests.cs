using System.Net.Http.Json;
using Balancer.Tests.Kit;
using FakeBackends;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Routing;

/// <summary>Routes by host, path (prefix, exact, glob, regex), method, header and query, ordered by priority then specificity.</summary>
public sealed class RouteMatchTests(ITestOutputHelper output) : IAsyncLifetime
{
    private Backends _backends = null!;
    private TestBalancer _lb = null!;

    // b1 default, b2 api (paths: [/api]), b3 admin, b4 canary, b5 tenants, b6 legacy.
    public async Task InitializeAsync()
    {
        _backends = await Backends.StartAsync(6);
        string Pool(string name, int backend) => $$"""
              - name: {{name}}
                backends: [ { address: "{{_backends[backend].Address}}" } ]
            """;
        _lb = await TestBalancer.StartAsync($$"""
            backends: [ { address: "{{_backends[0].Address}}" } ]
            pools:
              - name: api
                paths: [/api]
                backends: [ { address: "{{_backends[1].Address}}" } ]
            {{Pool("admin", 2)}}
            {{Pool("canary", 3)}}
            {{Pool("tenants", 4)}}
            {{Pool("legacy", 5)}}
            routes:
              - { name: admin-host, pool: admin, hosts: [admin.example.com] }
              - { name: tenant-hosts, pool: tenants, hosts: ["*.tenants.example.com"] }
              - { name: canary-header, pool: canary, path: /api, headers: { X-Canary: "1" } }
              - { name: beta-release, pool: canary, path: /shop, headers: { X-Release: { prefix: beta } } }
              - { name: bots, pool: tenants, path: /search, headers: { User-Agent: { regex: "(?i)bot" } } }
              - { name: anonymous-feed, pool: legacy, path: /feed, headers: { Authorization: { absent: true } } }
              - { name: first-page, pool: legacy, path: /list, query: { cursor: { absent: true } } }
              - { name: numeric-users, pool: legacy, path: { regex: "^/users/[0-9]+$" } }
              - { name: images, pool: legacy, path: "/static/*/img/*" }
              - { name: login, pool: admin, path: { exact: /login } }
              - { name: writes, pool: legacy, path: /orders, methods: [POST, PUT] }
              - { name: debug, pool: canary, path: /orders, query: { debug: { present: true } } }
              - { name: v2-clients, pool: tenants, query: { v: { regex: "^2\\." } } }
              - { name: tagged, pool: canary, path: /tags, query: { tag: [red, green] } }
              - { name: maintenance, pool: legacy, priority: 10, headers: { X-Maintenance: "on" } }
              - { name: traced, pool: canary, path: /trace, headers: { X-Trace-Id: { present: true } } }
              - { name: locales, pool: tenants, path: /docs, query: { lang: { prefix: en } } }
              - { name: on-a-port, pool: admin, hosts: ["ports.example.com:8080"] }
            """, output);
    }

    public async Task DisposeAsync()
    {
        await _lb.DisposeAsync();
        await _backends.DisposeAsync();
    }

    private async Task<string> ServerAsync(string path, string method = "GET", string? host = null, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (host is not null)
        {
            request.Headers.Host = host;
        }

        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await _lb.Client.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server;
    }

    [Theory]
    [InlineData("admin.example.com", "/x", "b3")]
    [InlineData("ADMIN.example.com", "/x", "b3")]
    [InlineData("admin.example.com", "/api/x", "b3")] // a host is more specific than any path
    [InlineData("a.tenants.example.com", "/x", "b5")]
    [InlineData("a.b.tenants.example.com", "/x", "b5")]
    [InlineData("tenants.example.com", "/x", "b1")] // a wildcard needs a label before the suffix
    [InlineData("other.example.com", "/x", "b1")]
    public async Task Hosts_ExactAndWildcard(string host, string path, string server) =>
        Assert.Equal(server, await ServerAsync(path, host: host));

    [Theory]
    [InlineData("/users/42", "b6")]
    [InlineData("/users/abc", "b1")]
    [InlineData("/users/42/posts", "b1")] // anchored at both ends
    [InlineData("/static/v1/img/logo.png", "b6")]
    [InlineData("/STATIC/v1/IMG/logo.png", "b6")] // globs ignore case, as prefixes do
    [InlineData("/static/v1/img/a/b.png", "b6")] // a trailing * takes the rest of the path
    [InlineData("/static/v1/x/img/logo.png", "b1")] // an inner * stays within one segment
    [InlineData("/login", "b3")]
    [InlineData("/LOGIN/", "b3")]
    [InlineData("/login/x", "b1")]
    [InlineData("/api/users", "b2")] // a pool's path prefix works as before
    [InlineData("/apix", "b1")]
    public async Task Paths_Regex_Glob_Exact_Prefix(string path, string server) =>
        Assert.Equal(server, await ServerAsync(path));

    [Theory]
    [InlineData("POST", "/orders", "b6")]
    [InlineData("put", "/orders/7", "b6")]
    [InlineData("GET", "/orders", "b1")]
    [InlineData("DELETE", "/orders", "b1")]
    public async Task Methods(string method, string path, string server) =>
        Assert.Equal(server, await ServerAsync(path, method));

    [Fact]
    public async Task Headers_Exact_Prefix_Regex_Absent()
    {
        Assert.Equal("b4", await ServerAsync("/api/users", headers: ("X-Canary", "1")));
        Assert.Equal("b2", await ServerAsync("/api/users", headers: ("X-Canary", "2")));
        Assert.Equal("b2", await ServerAsync("/api/users"));
        Assert.Equal("b4", await ServerAsync("/shop/cart", headers: ("X-Release", "Beta-7")));
        Assert.Equal("b1", await ServerAsync("/shop/cart", headers: ("X-Release", "stable")));
        Assert.Equal("b5", await ServerAsync("/search", headers: ("User-Agent", "Mozilla/5.0 (compatible; GoogleBot/2.1)")));
        Assert.Equal("b1", await ServerAsync("/search", headers: ("User-Agent", "Mozilla/5.0")));
        Assert.Equal("b6", await ServerAsync("/feed"));
        Assert.Equal("b1", await ServerAsync("/feed", headers: ("Authorization", "Bearer x")));
    }

    [Theory]
    [InlineData("/orders?debug", "b4")]
    [InlineData("/orders?debug=1&x=2", "b4")]
    [InlineData("/anything?v=2.1", "b5")]
    [InlineData("/anything?v=3.0", "b1")]
    [InlineData("/anything?v=12.0", "b1")]
    [InlineData("/tags?tag=green", "b4")]
    [InlineData("/tags?tag=blue", "b1")]
    [InlineData("/list", "b6")]
    [InlineData("/list?cursor=abc", "b1")]
    public async Task QueryParameters_Present_Regex_Exact_Absent(string pathAndQuery, string server) =>
        Assert.Equal(server, await ServerAsync(pathAndQuery));

    [Fact]
    public async Task HeaderPresent_QueryPrefix_AndAHostWithItsPort()
    {
        Assert.Equal("b4", await ServerAsync("/trace", headers: ("X-Trace-Id", "abc")));
        Assert.Equal("b1", await ServerAsync("/trace"));
        Assert.Equal("b5", await ServerAsync("/docs?lang=en-GB"));
        Assert.Equal("b1", await ServerAsync("/docs?lang=fr"));
        Assert.Equal("b3", await ServerAsync("/x", host: "ports.example.com:8080"));
        Assert.Equal("b1", await ServerAsync("/x", host: "ports.example.com:9090"));
    }

    [Fact]
    public async Task Priority_BeatsSpecificity_AndMoreConditions_BeatFewer()
    {
        // maintenance (priority 10, one header, no host or path) over canary-header and admin-host, more specific.
        Assert.Equal("b6", await ServerAsync("/api/users", headers: [("X-Canary", "1"), ("X-Maintenance", "on")]));
        Assert.Equal("b6", await ServerAsync("/x", host: "admin.example.com", headers: ("X-Maintenance", "on")));
        // writes (a method) and debug (a query condition) both match: the one with more conditions first.
        Assert.Equal("b4", await ServerAsync("/orders?debug=1", "POST"));
    }
}
