using System.Net;
using Balancer.Configuration;
using Balancer.LoadBalancing;
using Balancer.Tests.Kit;

namespace Balancer.Tests.Unit.Configuration;

public sealed class ConfigLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private ConfigLoadResult Load(string yaml, IReadOnlyDictionary<string, string>? env = null, params string[] args)
    {
        var path = Path.Combine(_dir, "config.yaml");
        File.WriteAllText(path, yaml);
        return ConfigLoader.Load(path, args, env ?? new Dictionary<string, string>());
    }

    private const string BalanceHubConfig = """
        Original-Server:
          allow: [192.168.1.0/24, 127.0.0.0/24]   # control-plane allow-list
        BalanceHub:
          listen: 5000
          tcpListener: 5050
          protocol: HTTP
          algorithm: Least-Connected
          access-logs-path: ./logs
          db-path: ''
          redis-server: { ip: 127.0.0.1, port: 6379, caching: false, cache-duration: 900 }
        """;

    [Fact]
    public void ShippedConfigYaml_LoadsCleanly_AndSaysWhatTheReadmeSays()
    {
        var result = ConfigLoader.Load(Repository.PathOf("config.yaml"), [], new Dictionary<string, string>());

        Assert.Empty(result.Errors);
        var o = result.Options!;
        Assert.Equal(5000, o.Proxy.Port);
        Assert.Equal(3, o.Pools.Single().Backends.Count);
        Assert.True(o.HealthChecks.Enabled);
        Assert.Equal((TimeSpan.FromSeconds(2), 2, 2), (o.HealthChecks.Interval, o.HealthChecks.Rise, o.HealthChecks.Fall));
        Assert.True(o.OutlierDetection.Enabled);
        Assert.Equal(3, o.Retries.Attempts);
    }

    [Fact]
    public void Load_BalanceHubSchemaUnchanged_MeansWhatItSays()
    {
        var result = Load(BalanceHubConfig);

        Assert.Empty(result.Errors);
        var o = result.Options!;
        Assert.Equal(5000, o.Proxy.Port);
        Assert.Equal(5050, o.ControlPlane.Port);
        Assert.Equal(ProxyProtocol.Http, o.Proxy.Protocol);
        Assert.Equal(AlgorithmNames.LeastConnections, o.Algorithm);
        Assert.Equal(Path.Combine(_dir, "logs"), o.AccessLogsPath);
        Assert.Equal(Path.Combine(_dir, "data", "balancer.db"), o.DbPath);
        Assert.Equal("127.0.0.1", o.Redis.Host);
        Assert.Equal(6379, o.Redis.Port);
        Assert.False(o.Redis.Caching);
        Assert.Equal(TimeSpan.FromSeconds(900), o.Redis.CacheDuration);
        Assert.Equal([IPNetwork.Parse("192.168.1.0/24"), IPNetwork.Parse("127.0.0.0/24")], o.ControlPlane.Allow.Networks);
    }

    [Fact]
    public void Load_EmptyFile_GivesSecureDefaults()
    {
        var o = Load("").Options!;

        Assert.Equal(5000, o.Proxy.Port);
        Assert.Equal(IPAddress.Loopback, o.Admin.Bind);
        Assert.Equal(8081, o.Admin.Port);
        Assert.Equal(IPAddress.Loopback, o.ControlPlane.Bind);
        Assert.Equal(AlgorithmNames.RoundRobin, o.Algorithm);
        Assert.Empty(o.Proxy.TrustedProxies.Networks);
        Assert.Single(o.Pools);
        Assert.Empty(o.Pools[0].Backends);
    }

    [Fact]
    public void Load_OutOfRangePort_NamesKeyPathLineAndValue()
    {
        var result = Load("""
            BalanceHub:
              listen: 70000
            """);

        Assert.Null(result.Options);
        Assert.Equal("BalanceHub.listen (line 2): 70000 is not a port (1-65535, or 0 for any free port)", Assert.Single(result.Errors));
    }

    [Fact]
    public void Load_UnknownKey_SuggestsTheClosestKnownKey()
    {
        var result = Load("""
            BalanceHub:
              lisen: 5000
            """);

        Assert.Equal("BalanceHub.lisen (line 2): unknown key; did you mean listen?", Assert.Single(result.Errors));
    }

    [Fact]
    public void Load_UnknownTopLevelSection_SuggestsSection()
    {
        var result = Load("""
            BalanceHb:
              listen: 5000
            """);

        Assert.Equal("BalanceHb (line 1): unknown key; did you mean BalanceHub?", Assert.Single(result.Errors));
    }

    [Fact]
    public void Load_UnknownKeyFarFromAnything_ListsNoSuggestion()
    {
        var result = Load("""
            zebra: 1
            """);

        Assert.StartsWith("zebra (line 1): unknown key", Assert.Single(result.Errors));
        Assert.DoesNotContain("did you mean", result.Errors[0]);
    }

    [Fact]
    public void Load_SeveralMistakes_ReportsAllAtOnceInLineOrder()
    {
        var result = Load("""
            Original-Server:
              allow: [10.0.0.0/33, not-an-ip]
            BalanceHub:
              listen: abc
              protocol: GOPHER
              algorithm: fastest
              redis-server: { ip: 127.0.0.1, port: 6379, caching: maybe }
            backends:
              - address: http://127.0.0.1:3001
                weight: -1
              - adress: http://127.0.0.1:3002
            """);

        Assert.Null(result.Options);
        Assert.Equal(
            [
                "Original-Server.allow[0] (line 2): 10.0.0.0/33 is not an IP address or CIDR",
                "Original-Server.allow[1] (line 2): not-an-ip is not an IP address or CIDR",
                "BalanceHub.listen (line 4): abc is not a port (1-65535, or 0 for any free port)",
                "BalanceHub.protocol (line 5): GOPHER is not one of HTTP, HTTPS",
                "BalanceHub.algorithm (line 6): fastest is not a known algorithm; use one of " + string.Join(", ", AlgorithmNames.All),
                "BalanceHub.redis-server.caching (line 7): maybe is not true or false",
                "backends[0].weight (line 10): -1 is not a weight (0-1000000)",
                "backends[1].address (line 11): is required",
                "backends[1].adress (line 11): unknown key; did you mean address?",
            ],
            result.Errors);
    }

    [Fact]
    public void Load_CidrWithHostBits_SaysWhichNetworkWasMeant()
    {
        var result = Load("""
            Original-Server:
              allow: [192.168.1.5/24]
            """);

        Assert.Equal("Original-Server.allow[0] (line 2): 192.168.1.5/24 has host bits set; did you mean 192.168.1.0/24?", Assert.Single(result.Errors));
    }

    [Fact]
    public void Load_IPv6AndBareAddresses_AreNetworks()
    {
        var o = Load("""
            Original-Server:
              allow: [10.1.2.3, "::1", "fd00::/8"]
            """).Options!;

        Assert.True(o.ControlPlane.Allow.Contains(IPAddress.Parse("10.1.2.3")));
        Assert.False(o.ControlPlane.Allow.Contains(IPAddress.Parse("10.1.2.4")));
        Assert.True(o.ControlPlane.Allow.Contains(IPAddress.IPv6Loopback));
        Assert.True(o.ControlPlane.Allow.Contains(IPAddress.Parse("fd12::7")));
        Assert.True(o.ControlPlane.Allow.Contains(IPAddress.Parse("::ffff:10.1.2.3")), "IPv4-mapped peers match IPv4 entries");
    }

    [Fact]
    public void Load_WrongShape_SaysWhatWasExpected()
    {
        var result = Load("""
            BalanceHub:
              listen: { port: 5000 }
            backends: http://127.0.0.1:3001
            """);

        Assert.Equal(
            [
                "BalanceHub.listen (line 2): expected a value, found a mapping",
                "backends (line 3): expected a list, found a value",
            ],
            result.Errors);
    }

    [Fact]
    public void Load_MalformedYaml_ReportsLineAndColumn()
    {
        var result = Load("""
            BalanceHub:
              listen: 5000
             tcpListener: [5050
            """);

        var error = Assert.Single(result.Errors);
        Assert.Matches(@"^config\.yaml \(line \d+, column \d+\): ", error);
    }

    [Fact]
    public void Load_DuplicateKey_IsAnError()
    {
        var result = Load("""
            BalanceHub:
              listen: 5000
              listen: 5001
            """);

        Assert.Contains(result.Errors, e => e.Contains("line 3", StringComparison.Ordinal) && e.Contains("duplicate key", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Load_MissingFile_IsAClearError()
    {
        var result = ConfigLoader.Load(Path.Combine(_dir, "nope.yaml"), [], new Dictionary<string, string>());

        Assert.Equal($"{Path.Combine(_dir, "nope.yaml")}: file not found", Assert.Single(result.Errors));
    }

    [Theory]
    [InlineData("Least-Connected", AlgorithmNames.LeastConnections)]
    [InlineData("least_conn", AlgorithmNames.LeastConnections)]
    [InlineData("LEAST-CONNECTIONS", AlgorithmNames.LeastConnections)]
    [InlineData("round_robin", AlgorithmNames.RoundRobin)]
    [InlineData("Round-Robin", AlgorithmNames.RoundRobin)]
    [InlineData("weighted", AlgorithmNames.WeightedLeastConnections)]
    [InlineData("weighted-round-robin", AlgorithmNames.WeightedRoundRobin)]
    [InlineData("ip_hash", AlgorithmNames.IpHash)]
    [InlineData("power-of-two-choices", AlgorithmNames.PowerOfTwo)]
    [InlineData("random", AlgorithmNames.Random)]
    [InlineData("consistent_hash", AlgorithmNames.ConsistentHash)]
    public void Load_AlgorithmAlias_MapsToCanonicalName(string spelling, string canonical)
    {
        var result = Load($"BalanceHub: {{ algorithm: {spelling} }}");

        Assert.Empty(result.Errors);
        Assert.Equal(canonical, result.Options!.Algorithm);
    }

    [Fact]
    public void Load_AccessLog_FormatAndRotation_WithBoundedDefaults()
    {
        Assert.Equal(new AccessLogOptions(AccessLogFormat.Balancer, new AccessLogRotation(100L * 1024 * 1024, TimeSpan.Zero, 10)), Load("").Options!.Observability.AccessLog);

        var result = Load("observability: { access-log: { format: json, max-size: 10MB, rotate-every: 1h, keep: 3 } }");

        Assert.Empty(result.Errors);
        Assert.Equal(new AccessLogOptions(AccessLogFormat.Json, new AccessLogRotation(10L * 1024 * 1024, TimeSpan.FromHours(1), 3)), result.Options!.Observability.AccessLog);
        Assert.Equal(AccessLogFormat.Combined, Load("observability: { access-log: { format: combined } }").Options!.Observability.AccessLog.Format);
        Assert.Equal(AccessLogRotation.None with { Keep = 10 }, Load("observability: { access-log: { max-size: 0 } }").Options!.Observability.AccessLog.Rotation);
    }

    [Theory]
    [InlineData("format: csv", "observability.access-log.format")]
    [InlineData("max-size: 10 parsecs", "observability.access-log.max-size")]
    [InlineData("max-size: 1000", "observability.access-log.max-size")]
    [InlineData("rotate-every: 30s", "observability.access-log.rotate-every")]
    [InlineData("rotate-every: soon", "observability.access-log.rotate-every")]
    [InlineData("keep: -1", "observability.access-log.keep")]
    [InlineData("keep: 1001", "observability.access-log.keep")]
    public void Load_AccessLog_BadValues_AreRejectedWithTheirKey(string setting, string key)
    {
        var result = Load($"observability:\n  access-log: {{ {setting} }}\n");

        Assert.Null(result.Options);
        Assert.Contains(result.Errors, e => e.StartsWith($"{key} (line 2): ", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_Explain_IsOffUnlessEnabled_AndKeepsAHundredByDefault()
    {
        Assert.Null(Load("").Options!.Observability.Explain);
        Assert.Null(Load("observability: { explain: { enabled: false, keep: 5 } }").Options!.Observability.Explain);
        Assert.Equal(new ExplainOptions(100), Load("observability: { explain: { enabled: true } }").Options!.Observability.Explain);
        Assert.Equal(new ExplainOptions(7), Load("observability: { explain: { enabled: true, keep: 7 } }").Options!.Observability.Explain);
    }

    [Theory]
    [InlineData("enabled: sometimes", "observability.explain.enabled")]
    [InlineData("keep: 0", "observability.explain.keep")]
    [InlineData("keep: 1001", "observability.explain.keep")]
    [InlineData("color: red", "observability.explain.color")]
    public void Load_Explain_BadValues_AreRejectedWithTheirKey(string setting, string key)
    {
        var result = Load($"observability:\n  explain: {{ {setting} }}\n");

        Assert.Null(result.Options);
        Assert.Contains(result.Errors, e => e.StartsWith($"{key} (line 2): ", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_ResilienceDefaults_AreSafe()
    {
        var o = Load("").Options!;

        Assert.True(o.HealthChecks.Enabled); // on, with a probe any backend answers
        Assert.Equal((ProbeKind.Tcp, 2, 2), (o.HealthChecks.Kind, o.HealthChecks.Rise, o.HealthChecks.Fall));
        Assert.Equal((TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1)), (o.HealthChecks.Interval, o.HealthChecks.Timeout));
        Assert.Equal((ProbeKind.Http, "/health"), (Load("health-checks: { path: /health }").Options!.HealthChecks.Kind, Load("health-checks: { method: HEAD }").Options!.HealthChecks.Path));
        Assert.Equal(ProbeKind.Http, Load("health-checks: { expect: 200 }").Options!.HealthChecks.Kind);
        Assert.Equal(ProbeKind.Tcp, Load("health-checks: { path: /up, type: tcp }").Options!.HealthChecks.Kind);
        Assert.True(o.HealthChecks.Expect.Contains(200) && o.HealthChecks.Expect.Contains(399) && !o.HealthChecks.Expect.Contains(404));
        Assert.True(o.OutlierDetection.Enabled);
        Assert.Equal(5, o.OutlierDetection.ConsecutiveFailures);
        Assert.Equal(3, o.Retries.Attempts);
        Assert.Equal([502, 503, 504], o.Retries.OnStatus.Order());
        Assert.Contains("GET", o.Retries.Methods);
        Assert.DoesNotContain("POST", o.Retries.Methods);
        Assert.Equal(20, o.Retries.BudgetPercent);
        Assert.Equal(TimeSpan.Zero, o.Proxy.SlowStart);
        Assert.Equal(0, o.Proxy.Limits.MaxRequestsPerBackend);
        Assert.Equal(TimeSpan.FromSeconds(60), o.Drain.Timeout);
    }

    [Fact]
    public void Load_ResilienceSections_AndPoolHealthOverrides()
    {
        var o = Load("""
            health-checks: { enabled: true, type: tcp, interval: 1s, timeout: 500ms, rise: 3, fall: 1 }
            outlier-detection: { consecutive-failures: 2, base-ejection-time: 10s, max-ejection-time: 1m, max-ejection-percent: 30 }
            retries: { attempts: 2, on-status: [503, 429], methods: [GET, post], budget-percent: 50, max-buffered-body: 1KB }
            proxy: { response-headers-timeout: 3s, slow-start: 20s, limits: { max-requests-per-backend: 8, queue-timeout: 250ms } }
            drain: { timeout: 5s }
            pools:
              - name: api
                paths: [/api]
                health-checks: { type: http, path: /ready, expect: "200,204-206" }
            """).Options!;

        Assert.Equal((true, ProbeKind.Tcp, 3, 1), (o.HealthChecks.Enabled, o.HealthChecks.Kind, o.HealthChecks.Rise, o.HealthChecks.Fall));
        Assert.Equal(o.HealthChecks, o.Pools[0].HealthChecks);
        var api = o.Pools[1].HealthChecks;
        Assert.Equal((true, ProbeKind.Http, "/ready", TimeSpan.FromSeconds(1)), (api.Enabled, api.Kind, api.Path, api.Interval));
        Assert.True(api.Expect.Contains(204) && api.Expect.Contains(200) && !api.Expect.Contains(201));
        Assert.Equal((2, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(1), 30), (o.OutlierDetection.ConsecutiveFailures, o.OutlierDetection.BaseEjectionTime, o.OutlierDetection.MaxEjectionTime, o.OutlierDetection.MaxEjectionPercent));
        Assert.Equal((2, 50, 1024L), (o.Retries.Attempts, o.Retries.BudgetPercent, o.Retries.MaxBufferedBody));
        Assert.Equal([429, 503], o.Retries.OnStatus.Order());
        Assert.Equal(["GET", "POST"], o.Retries.Methods.Order());
        Assert.Equal((TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(20)), (o.Proxy.ResponseHeadersTimeout, o.Proxy.SlowStart));
        Assert.Equal((8, TimeSpan.FromMilliseconds(250)), (o.Proxy.Limits.MaxRequestsPerBackend, o.Proxy.Limits.QueueTimeout));
        Assert.Equal(TimeSpan.FromSeconds(5), o.Drain.Timeout);
    }

    [Fact]
    public void Load_ResilienceMistakes_AreNamed()
    {
        var result = Load("""
            health-checks: { type: udp, expect: 200-99, rise: 0, method: "G T" }
            retries: { attempts: 0, on-status: [200, 600], methods: [FETCH!] }
            outlier-detection: { base-ejection-time: 2m, max-ejection-time: 1m }
            """);

        Assert.Equal(
            [
                "health-checks.type (line 1): udp is not one of http, tcp",
                "health-checks.method (line 1): G T is not an HTTP method",
                "health-checks.expect (line 1): 200-99 is not a status or range of statuses (e.g. 200-399, or 200,204)",
                "health-checks.rise (line 1): 0 is not a count (1-100)",
                "retries.attempts (line 2): 0 is not a number of tries (1-10)",
                "retries.on-status[0] (line 2): 200 is not an error status (400-599)",
                "retries.on-status[1] (line 2): 600 is not an error status (400-599)",
                "retries.methods[0] (line 2): FETCH! is not an HTTP method",
                "outlier-detection.max-ejection-time (line 3): is shorter than base-ejection-time (2m)",
            ],
            result.Errors);
    }

    [Fact]
    public void Load_LoadBalancingSection_AndPoolOverrides()
    {
        var o = Load("""
            load-balancing:
              hash-key: header:X-User
              virtual-nodes: 50
              when-all-unhealthy: panic
              panic-threshold: 30
            pools:
              - name: api
                paths: [/api]
                algorithm: consistent-hash
                hash-key: cookie:session
            """).Options!;

        Assert.Equal(new HashKey(HashKeySource.Header, "X-User"), o.LoadBalancing.HashKey);
        Assert.Equal(50, o.LoadBalancing.VirtualNodes);
        Assert.Equal(AllUnhealthyMode.Panic, o.LoadBalancing.WhenAllUnhealthy);
        Assert.Equal(30, o.LoadBalancing.PanicThreshold);
        Assert.Equal(new HashKey(HashKeySource.Header, "X-User"), o.Pools[0].HashKey);
        Assert.Equal(new HashKey(HashKeySource.Cookie, "session"), o.Pools[1].HashKey);
        Assert.Equal(50, o.Pools[1].VirtualNodes);
    }

    [Fact]
    public void Load_LoadBalancingMistakes_AreNamed()
    {
        var result = Load("""
            load-balancing:
              hash-key: header
              virtual-nodes: 0
              panic-threshold: 20
            """);

        Assert.Equal(
            [
                "load-balancing.hash-key (line 2): header is not a hash key (client-ip, header:NAME, cookie:NAME or path)",
                "load-balancing.virtual-nodes (line 3): 0 is not a number of virtual nodes (1-10000)",
                "load-balancing.panic-threshold (line 4): only applies with when-all-unhealthy: panic",
            ],
            result.Errors);
    }

    [Fact]
    public void Load_StaticBackends_FormTheDefaultPoolInOrder()
    {
        var o = Load("""
            backends:
              - address: http://127.0.0.1:3001
                weight: 5
              - address: 127.0.0.1:3002
              - { address: "http://[::1]:3003/" }
            """).Options!;

        var pool = Assert.Single(o.Pools);
        Assert.Equal("default", pool.Name);
        Assert.Equal(o.Algorithm, pool.Algorithm);
        Assert.Equal(["http://127.0.0.1:3001", "http://127.0.0.1:3002", "http://[::1]:3003"], pool.Backends.Select(b => b.Address));
        Assert.Equal([5, 1, 1], pool.Backends.Select(b => b.Weight));
    }

    [Fact]
    public void Load_BadBackendAddress_IsNamed()
    {
        var result = Load("""
            backends:
              - address: ftp://127.0.0.1:3001
              - address: http://127.0.0.1:99999
              - address: http://127.0.0.1:3001/some/path
            """);

        Assert.Equal(
            [
                "backends[0].address (line 2): ftp://127.0.0.1:3001 is not an http:// or https:// address",
                "backends[1].address (line 3): http://127.0.0.1:99999 is not an http:// or https:// address",
                "backends[2].address (line 4): http://127.0.0.1:3001/some/path has a path; give scheme, host and port only",
            ],
            result.Errors);
    }

    [Fact]
    public void Load_ABackendThatIsTheBalancersOwnListener_IsAnError()
    {
        var result = Load("""
            BalanceHub: { listen: 5000, tcpListener: 5050 }
            admin: { port: 8081 }
            backends:
              - address: http://localhost:5000
              - address: http://127.0.0.1:3001
            pools:
              - name: api
                paths: [/api]
                backends: [ { address: "127.0.0.1:8081" } ]
            """);

        Assert.Equal(
            [
                "backends[0].address (line 4): http://localhost:5000 is this balancer's own proxy listener (BalanceHub.listen) ([::]:5000): it would send every request back to the balancer",
                "pools[0].backends[0].address (line 9): http://127.0.0.1:8081 is this balancer's own admin API (admin.port) (127.0.0.1:8081): it would send every request back to the balancer",
            ],
            result.Errors);
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("\"*\"")]
    [InlineData("10.0.0.5")]
    public void Load_AdminBoundBeyondLoopback_WithoutAToken_IsAnError(string bind)
    {
        var result = Load($"admin: {{ bind: {bind} }}");

        var error = Assert.Single(result.Errors);
        Assert.StartsWith("admin.bind (line 1): ", error, StringComparison.Ordinal);
        Assert.EndsWith("is not a loopback address: set admin.token, or anyone who can reach the admin API could change the backends", error, StringComparison.Ordinal);
        Assert.Empty(Load($"admin: {{ bind: {bind}, token: t0ken }}").Errors);
        Assert.Empty(Load("admin: { bind: ::1 }").Errors);
    }

    [Fact]
    public void Load_AdminHosts_MustBeHostNames()
    {
        var result = Load("admin: { hosts: [lb.internal, 'bad host', 'x:80'] }");

        Assert.Equal(
            [
                "admin.hosts[1] (line 1): bad host is not a host name (letters, digits, '-' and '.')",
                "admin.hosts[2] (line 1): x:80 is not a host name (letters, digits, '-' and '.')",
            ],
            result.Errors);
    }

    [Fact]
    public void Load_DuplicateBackend_IsAnError()
    {
        var result = Load("""
            backends:
              - address: http://127.0.0.1:3001
              - address: http://127.0.0.1:3001/
            """);

        Assert.Equal("backends[1].address (line 3): http://127.0.0.1:3001 is listed twice", Assert.Single(result.Errors));
    }

    [Fact]
    public void Load_Pools_GetTheirOwnAlgorithmAndPaths()
    {
        var o = Load("""
            BalanceHub: { algorithm: round-robin }
            backends:
              - address: http://127.0.0.1:3001
            pools:
              - name: api
                algorithm: least_conn
                paths: [/api]
                backends:
                  - address: http://127.0.0.1:4001
            """).Options!;

        Assert.Equal(["default", "api"], o.Pools.Select(p => p.Name));
        Assert.Equal(AlgorithmNames.RoundRobin, o.Pools[0].Algorithm);
        Assert.Equal(AlgorithmNames.LeastConnections, o.Pools[1].Algorithm);
        Assert.Equal(["/api"], o.Pools[1].Paths);
    }

    [Fact]
    public void Load_PoolMistakes_AreNamed()
    {
        var result = Load("""
            pools:
              - name: default
                paths: [/a]
              - name: api
                paths: [api, /b/]
              - name: api
                paths: [/c]
              - name: empty
            """);

        Assert.Equal(
            [
                "pools[0].name (line 2): default is reserved for the top-level backends",
                "pools[1].paths[0] (line 5): api must start with /",
                "pools[2].name (line 6): api is used by another pool",
                "pools[3].paths (line 8): is required unless routes send to this pool: the path prefixes it serves",
            ],
            result.Errors);
    }

    [Fact]
    public void Load_H2cPort_IsAPlainHttpListenerOfItsOwn()
    {
        Assert.Equal(5080, Load("proxy: { h2c-port: 5080 }").Options!.Proxy.H2cPort);
        Assert.Null(Load("").Options!.Proxy.H2cPort);
        Assert.Equal(["proxy.h2c-port (line 1): 5000 is also BalanceHub.listen; each listener needs its own port"], Load("proxy: { h2c-port: 5000 }").Errors);
    }

    [Fact]
    public void Load_SamePathPrefixInTwoPools_IsAnError()
    {
        var result = Load("""
            pools:
              - name: a
                paths: [/api]
              - name: b
                paths: [/API/]
            """);

        Assert.Equal("pools[1].paths[0] (line 5): matches exactly what pool a's path /api (pools[0].paths[0]) matches: one of them would never be used", Assert.Single(result.Errors));
    }

    [Fact]
    public void Load_Durations_AcceptUnitsOrSeconds()
    {
        var o = Load("""
            proxy:
              drain-timeout: 1500ms
              connect-timeout: 2
              activity-timeout: 1m
            """).Options!;

        Assert.Equal(TimeSpan.FromMilliseconds(1500), o.Proxy.DrainTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), o.Proxy.ConnectTimeout);
        Assert.Equal(TimeSpan.FromMinutes(1), o.Proxy.ActivityTimeout);
    }

    [Fact]
    public void Load_BadDuration_IsNamed()
    {
        var result = Load("proxy: { drain-timeout: soon }");

        Assert.Equal("proxy.drain-timeout (line 1): soon is not a duration (e.g. 500ms, 30s, 5m, or a number of seconds)", Assert.Single(result.Errors));
    }

    [Fact]
    public void Load_Https_RequiresCertificateFiles()
    {
        var result = Load("""
            BalanceHub:
              protocol: HTTPS
              ssl_certificate: ./missing.pem
            """);

        Assert.Equal(
            [
                "BalanceHub.ssl_certificate_key (line 1): is required when protocol is HTTPS",
                $"BalanceHub.ssl_certificate (line 3): {Path.Combine(_dir, "missing.pem")} does not exist",
            ],
            result.Errors);
    }

    [Fact]
    public void Load_SamePortForTwoListeners_IsAnError()
    {
        var result = Load("""
            BalanceHub: { listen: 8081 }
            """);

        Assert.Equal("admin.port: 8081 is also BalanceHub.listen; each listener needs its own port", Assert.Single(result.Errors));
    }

    [Fact]
    public void Load_CommandLine_OverridesEnvironment_OverridesFile()
    {
        var env = new Dictionary<string, string> { ["LB_ALGORITHM"] = "least_conn", ["LB_BalanceHub__listen"] = "6000" };

        var fromEnv = Load(BalanceHubConfig.Replace("Least-Connected", "round-robin", StringComparison.Ordinal), env).Options!;
        Assert.Equal(AlgorithmNames.LeastConnections, fromEnv.Algorithm);
        Assert.Equal(6000, fromEnv.Proxy.Port);

        var fromArgs = Load(BalanceHubConfig, env, "--algorithm", "round_robin", "--port", "7000", "--admin-port", "7001").Options!;
        Assert.Equal(AlgorithmNames.RoundRobin, fromArgs.Algorithm);
        Assert.Equal(7000, fromArgs.Proxy.Port);
        Assert.Equal(7001, fromArgs.Admin.Port);
    }

    [Fact]
    public void Load_GenericOverrides_UseDotnetConventions()
    {
        var env = new Dictionary<string, string> { ["LB_proxy__drain-timeout"] = "3s" };

        var o = Load("", env, "--set", "admin.port=9100", "--set", "BalanceHub:listen=9000").Options!;

        Assert.Equal(TimeSpan.FromSeconds(3), o.Proxy.DrainTimeout);
        Assert.Equal(9100, o.Admin.Port);
        Assert.Equal(9000, o.Proxy.Port);
    }

    [Fact]
    public void Load_BadOverride_NamesWhereItCameFrom()
    {
        var env = new Dictionary<string, string> { ["LB_BalanceHub__lisen"] = "1", ["LB_ALGORITHM"] = "nope" };

        var result = Load("", env, "--port", "-3", "--set", "garbage");

        Assert.Equal(
            [
                "--set garbage: expected KEY=VALUE",
                "BalanceHub.listen (--port): -3 is not a port (1-65535, or 0 for any free port)",
                "BalanceHub.algorithm (environment LB_ALGORITHM): nope is not a known algorithm; use one of " + string.Join(", ", AlgorithmNames.All),
                "BalanceHub.lisen (environment LB_BalanceHub__lisen): unknown key; did you mean listen?",
            ],
            result.Errors);
    }

    [Fact]
    public void Load_ConfigPath_ComesFromArgsThenEnvironment()
    {
        File.WriteAllText(Path.Combine(_dir, "other.yaml"), "BalanceHub: { listen: 5999 }");
        var env = new Dictionary<string, string> { ["LB_CONFIG"] = Path.Combine(_dir, "other.yaml") };

        Assert.Equal("config.yaml", ConfigLoader.ConfigPath([], new Dictionary<string, string>()));
        Assert.Equal(Path.Combine(_dir, "other.yaml"), ConfigLoader.ConfigPath([], env));
        Assert.Equal("x.yaml", ConfigLoader.ConfigPath(["--config", "x.yaml"], env));
    }

    [Fact]
    public void Load_Debug_FromEnvironmentOrFlag()
    {
        Assert.False(Load("").Options!.Debug);
        Assert.True(Load("", new Dictionary<string, string> { ["LB_DEBUG"] = "1" }).Options!.Debug);
        Assert.True(Load("", null, "--debug").Options!.Debug);
    }

    [Fact]
    public void Load_UnknownCommandLineOption_IsAnError()
    {
        var result = Load("", null, "--prot", "5000");

        Assert.Contains(result.Errors, e => e.Contains("--prot", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_Redis_ItsConnectionKeys_AndNoConnectionUnlessSomethingUsesIt()
    {
        var off = Load(BalanceHubConfig).Options!;
        Assert.False(off.UsesRedis);
        Assert.All(off.Pools, p => Assert.Null(p.Cache));
        Assert.Equal((TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5), "balancer:", 0, false), (off.Redis.Timeout, off.Redis.ConnectTimeout, off.Redis.KeyPrefix, off.Redis.Database, off.Redis.Tls));

        var o = Load("""
            BalanceHub:
              redis-server: { ip: "::1", port: 6380, password: s3cret, user: lb, database: 3, tls: true, connect-timeout: 2s, timeout: 20ms, key-prefix: "edge1:", max-object-size: 64KB }
            rate-limit: { rate: 10/s, shared: true }
            """).Options!;
        Assert.True(o.UsesRedis);
        var r = o.Redis;
        Assert.Equal(("::1", 6380, "[::1]:6380", "s3cret", "lb", 3, true), (r.Host, r.Port, r.Endpoint, r.Password, r.User, r.Database, r.Tls));
        Assert.Equal((TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(20), "edge1:", 64 * 1024L), (r.ConnectTimeout, r.Timeout, r.KeyPrefix, r.MaxObjectSize));
    }

    [Fact]
    public void Load_Cache_BalanceHubsCachingIsEveryPoolsDefault_APoolTurnsItOnOrOff_WithItsOwnTtl()
    {
        var on = Load("""
            BalanceHub: { redis-server: { caching: true, cache-duration: 60 } }
            pools:
              - { name: same, paths: [/same] }
              - { name: short, paths: [/short], cache: { ttl: 5s } }
              - { name: none, paths: [/none], cache: { enabled: false } }
            """).Options!.Pools.ToDictionary(p => p.Name);
        Assert.Equal(TimeSpan.FromSeconds(60), on["default"].Cache!.Ttl);
        Assert.Equal(TimeSpan.FromSeconds(60), on["same"].Cache!.Ttl);
        Assert.Equal(TimeSpan.FromSeconds(5), on["short"].Cache!.Ttl);
        Assert.Null(on["none"].Cache);

        var off = Load("""
            pools:
              - { name: images, paths: [/img], cache: { enabled: true } }
              - { name: api, paths: [/api], cache: { ttl: 10s } }
            """).Options!;
        Assert.Null(off.Pools[0].Cache);
        Assert.Equal(TimeSpan.FromSeconds(900), off.Pools.Single(p => p.Name == "images").Cache!.Ttl);
        Assert.Equal(TimeSpan.FromSeconds(10), off.Pools.Single(p => p.Name == "api").Cache!.Ttl);
        Assert.True(off.UsesRedis);
    }

    [Theory]
    [InlineData("ip: not_a_host!", "BalanceHub.redis-server.ip")]
    [InlineData("database: -1", "BalanceHub.redis-server.database")]
    [InlineData("timeout: 0s", "BalanceHub.redis-server.timeout")]
    [InlineData("cache-duration: 0", "BalanceHub.redis-server.cache-duration")]
    [InlineData("max-object-size: 0", "BalanceHub.redis-server.max-object-size")]
    [InlineData("user: lb", "BalanceHub.redis-server.user")]
    [InlineData("tls: sometimes", "BalanceHub.redis-server.tls")]
    [InlineData("passwrd: x", "BalanceHub.redis-server.passwrd")]
    public void Load_Redis_BadValues_AreRejectedWithTheirKey(string setting, string key)
    {
        var result = Load($"BalanceHub:\n  redis-server: {{ {setting} }}\n");

        Assert.Null(result.Options);
        Assert.Contains(result.Errors, e => e.StartsWith($"{key} (line 2): ", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_RateLimit_IsOffByDefault_PoolsInheritIt_OverrideIt_OrTurnItOff()
    {
        Assert.All(Load("").Options!.Pools, p => Assert.Null(p.RateLimit));

        var pools = Load("""
            rate-limit: { rate: 100/minute, exempt: [10.0.0.0/8], key: header:X-Api-Key }
            pools:
              - { name: same, paths: [/same] }
              - { name: faster, paths: [/faster], rate-limit: { rate: 10/s, key: client, shared: true } }
              - { name: bigger, paths: [/bigger], rate-limit: { burst: 500, max-clients: 10 } }
              - { name: open, paths: [/open], rate-limit: { enabled: false } }
            """).Options!.Pools.ToDictionary(p => p.Name);

        var top = pools["default"].RateLimit!;
        Assert.Equal((new RequestRate(100, TimeSpan.FromMinutes(1)), 100, "X-Api-Key", false, 100_000), (top.Rate, top.Burst, top.Header, top.Shared, top.MaxClients));
        Assert.Equal(TimeSpan.FromMilliseconds(600), top.Rate.Interval);
        Assert.True(top.Exempt.Contains(IPAddress.Parse("10.1.2.3")));
        Assert.Equal(top, pools["same"].RateLimit);
        var faster = pools["faster"].RateLimit!;
        Assert.Equal((new RequestRate(10, TimeSpan.FromSeconds(1)), 10, null, true), (faster.Rate, faster.Burst, faster.Header, faster.Shared));
        Assert.True(faster.Exempt.Contains(IPAddress.Parse("10.1.2.3")));
        Assert.Equal((top.Rate, 500, 10), (pools["bigger"].RateLimit!.Rate, pools["bigger"].RateLimit!.Burst, pools["bigger"].RateLimit!.MaxClients));
        Assert.Null(pools["open"].RateLimit);
    }

    [Theory]
    [InlineData("rate: 100", "rate-limit.rate")]
    [InlineData("rate: 100/fortnight", "rate-limit.rate")]
    [InlineData("rate: 0/s", "rate-limit.rate")]
    [InlineData("rate: -5/s", "rate-limit.rate")]
    [InlineData("rate: 10/s, burst: 0", "rate-limit.burst")]
    [InlineData("burst: 5", "rate-limit.rate")]
    [InlineData("enabled: true", "rate-limit.rate")]
    [InlineData("rate: 10/s, exempt: [not-a-network]", "rate-limit.exempt")]
    [InlineData("rate: 10/s, key: cookie:session", "rate-limit.key")]
    [InlineData("rate: 10/s, key: \"header:X Api\"", "rate-limit.key")]
    [InlineData("rate: 10/s, shared: maybe", "rate-limit.shared")]
    [InlineData("rate: 10/s, max-clients: 0", "rate-limit.max-clients")]
    [InlineData("rate: 10/s, per: client", "rate-limit.per")]
    public void Load_RateLimit_BadValues_AreRejectedWithTheirKey(string setting, string key)
    {
        var result = Load($"\nrate-limit: {{ {setting} }}\n");

        Assert.Null(result.Options);
        Assert.Contains(result.Errors, e => e.StartsWith($"{key}", StringComparison.Ordinal) && e.Contains("(line 2)", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_TrustedProxiesAndLimits_AreRead()
    {
        var o = Load("""
            proxy:
              bind: 127.0.0.1
              trusted-proxies: [10.0.0.0/8]
              limits:
                max-request-body-size: 1MB
                max-request-headers-size: 16KB
                max-concurrent-connections: 100
            """).Options!;

        Assert.Equal(IPAddress.Loopback, o.Proxy.Bind);
        Assert.True(o.Proxy.TrustedProxies.Contains(IPAddress.Parse("10.9.8.7")));
        Assert.Equal(1024 * 1024, o.Proxy.Limits.MaxRequestBodySize);
        Assert.Equal(16 * 1024, o.Proxy.Limits.MaxRequestHeadersSize);
        Assert.Equal(100, o.Proxy.Limits.MaxConcurrentConnections);
    }
}
