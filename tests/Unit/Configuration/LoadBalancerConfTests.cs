using Balancer.Configuration;
using Balancer.LoadBalancing;
using Balancer.Persistence;
using Balancer.Routing;

namespace Balancer.Tests.Unit.Configuration;

/// <summary>go-load-balancer's loadbalancer.conf, in its README's grammar and its parser's, with line-numbered errors.</summary>
public sealed class LoadBalancerConfTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-conf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private ConfigLoadResult Load(string conf, params string[] args)
    {
        var path = Path.Combine(_dir, "loadbalancer.conf");
        File.WriteAllText(path, conf);
        return ConfigLoader.Load(path, args, new Dictionary<string, string>());
    }

    // go-load-balancer's README, "Basic Configuration" and "Path-Based Routing Configuration", as it gives them.
    public const string BasicSample = """
        method weighted_round_robin
        persistence cookie

        backend http://localhost:8001 weight=5
        backend http://localhost:8002 weight=3
        backend http://localhost:8003 weight=1
        """;

    public const string RoutingSample = """
        route /api/* backend_pool=api_servers
        route /auth/* backend_pool=auth_servers
        route /static/* backend_pool=static_servers

        pool api_servers method=least_connections
        backend http://api1:8080 pool=api_servers
        backend http://api2:8080 pool=api_servers

        pool auth_servers method=ip_hash persistence=cookie
        backend http://auth1:8080 pool=auth_servers
        backend http://auth2:8080 pool=auth_servers

        pool static_servers method=weighted_round_robin
        backend http://static1:8080 weight=3 pool=static_servers
        backend http://static2:8080 weight=1 pool=static_servers
        """;

    [Fact]
    public void TheReadmesBasicSample_Loads()
    {
        var result = Load(BasicSample);
        Assert.Empty(result.Errors);
        var pool = Assert.Single(result.Options!.Pools);
        Assert.Equal(AlgorithmNames.WeightedRoundRobin, pool.Algorithm);
        Assert.Equal(PersistenceMode.Cookie, pool.Persistence.Mode);
        Assert.Equal([("http://localhost:8001", 5), ("http://localhost:8002", 3), ("http://localhost:8003", 1)], pool.Backends.Select(b => (b.Address, b.Weight)));
    }

    [Fact]
    public void TheReadmesRoutingSample_Loads_AsItDescribes()
    {
        var result = Load(RoutingSample);
        Assert.Empty(result.Errors);
        var o = result.Options!;
        Assert.Equal(["default", "api_servers", "auth_servers", "static_servers"], o.Pools.Select(p => p.Name));
        var api = o.Pools[1];
        var auth = o.Pools[2];
        var statics = o.Pools[3];
        Assert.Equal((AlgorithmNames.LeastConnections, PersistenceMode.None), (api.Algorithm, api.Persistence.Mode));
        Assert.Equal((AlgorithmNames.IpHash, PersistenceMode.Cookie), (auth.Algorithm, auth.Persistence.Mode));
        Assert.Equal([3, 1], statics.Backends.Select(b => b.Weight));
        Assert.Equal(["http://api1:8080", "http://api2:8080"], api.Backends.Select(b => b.Address));
        Assert.Equal(
            [("route-1", "api_servers", "/api/*"), ("route-2", "auth_servers", "/auth/*"), ("route-3", "static_servers", "/static/*")],
            o.Routes.Where(r => !r.IsCatchAll).Select(r => (r.Name, r.Pool, r.Path!.ToString())).OrderBy(r => r.Name, StringComparer.Ordinal));
        Assert.All(o.Routes.Where(r => !r.IsCatchAll), r => Assert.Equal(PathMatchKind.Glob, r.Path!.Kind));
    }

    [Fact]
    public void TheParsersGrammar_Upstreams_DefaultBackend_AndTypedRoutes()
    {
        var o = Load("""
            # the grammar go-load-balancer's parser reads
            method least_conn
            persistence cookie name=GOLBSESSION ttl=3600
            upstream web {
                server http://127.0.0.1:9001 weight=2
                server http://127.0.0.1:9002
            }
            upstream api {
                server http://127.0.0.1:9101
            }
            route path /api api
            route regex ^/v[0-9]+/ api
            route header X-Api yes api
            default_backend web
            """).Options!;

        Assert.Equal(["default", "api"], o.Pools.Select(p => p.Name));
        Assert.Equal([("http://127.0.0.1:9001", 2), ("http://127.0.0.1:9002", 1)], o.Pools[0].Backends.Select(b => (b.Address, b.Weight)));
        Assert.Equal((AlgorithmNames.LeastConnections, "GOLBSESSION", TimeSpan.FromHours(1)), (o.Algorithm, o.Pools[0].Persistence.Name, o.Pools[0].Persistence.MaxAge));
        var routes = o.Routes.Where(r => !r.IsCatchAll).ToDictionary(r => r.Name);
        Assert.Equal(PathMatchKind.Prefix, routes["route-1"].Path!.Kind);
        Assert.Equal((PathMatchKind.Regex, "^/v[0-9]+/"), (routes["route-2"].Path!.Kind, routes["route-2"].Path!.Pattern));
        Assert.Equal(("X-Api", "yes"), (routes["route-3"].Headers[0].Name, routes["route-3"].Headers[0].Values[0]));
    }

    [Fact]
    public void Mistakes_AreNamed_WithTheirLine()
    {
        Assert.Equal(
            [
                "loadbalancer.conf (line 2): unknown directive balance (known: method, persistence, backend, pool, route, upstream, server, default_backend)",
                "loadbalancer.conf (line 3): backend: unknown option wieght= (allowed: weight=, pool=)",
                "loadbalancer.conf (line 4): route: expected route PATTERN backend_pool=NAME, route path PREFIX NAME, route regex RE NAME or route header NAME VALUE POOL",
                "loadbalancer.conf (line 5): server outside an upstream { ... } block",
            ],
            Load("""
                method round_robin
                balance everything
                backend http://127.0.0.1:9001 wieght=2
                route /api
                server http://127.0.0.1:9002
                """).Errors);

        // Values are checked as config.yaml's are, at their line.
        Assert.Equal(
            [
                "BalanceHub.algorithm (line 1): fastest is not a known algorithm; use one of round-robin, weighted-round-robin, least-connections, weighted-least-connections, power-of-two, random, ip-hash, consistent-hash",
                "backends[0].weight (line 2): -1 is not a weight (0-1000000)",
                "routes[0].pool (line 3): nowhere is not a pool (pools: default)",
            ],
            Load("""
                method fastest
                backend http://127.0.0.1:9001 weight=-1
                route /x/* backend_pool=nowhere
                """).Errors);
    }

    [Fact]
    public void TheFlags_PersistenceAndPathRouting_AreAccepted()
    {
        var o = Load(BasicSample, "--persistence", "ip_hash", "--path-routing").Options!;
        Assert.Equal((PersistenceMode.IpHash, AlgorithmNames.IpHash), (o.Pools[0].Persistence.Mode, o.Pools[0].Algorithm));
        Assert.Equal(["--persistence: sticky is not a persistence mode; use none, cookie, header:NAME, ip-hash or consistent-hash"], Load(BasicSample, "--persistence", "sticky").Errors);
    }
}
