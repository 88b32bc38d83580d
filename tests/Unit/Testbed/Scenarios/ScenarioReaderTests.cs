using Testbed.Scenarios;

namespace Balancer.Tests.Unit.Testbed.Scenarios;

/// <summary>Scenario files: a good one read whole; bad ones answered with every problem, each naming its line.</summary>
public sealed class ScenarioReaderTests
{
    private const string Good = """
        # Teaches something.
        balancer:
          config: |
            backends:
              - address: ${a}
        backends:
          - name: a
          - name: s
            count: 3
            register: control-plane
            paths: [/api]
            behaviors:
              - latency: 20ms
        load:
          rate: 50
          duration: 5s
          clients: [127.0.0.2-127.0.0.4]
          paths: [/, { path: /api, weight: 3 }]
        timeline:
          - at: 2s
            kill: a
          - at: 1s
            set-behavior: { backend: s*, behaviors: [ { fail: 503 } ] }
          - at: 3s
            set-weight: { backend: [s1, s2], weight: 5 }
        expect:
          - error-rate: 0.01
            from: 1s
            to: 4s
          - share: { backend: a, min: 0.1 }
            client: 127.0.0.2
          - latency: { p99: 200ms, max: 1s }
            path: /api
        """;

    [Fact]
    public void AGoodFile_IsReadWhole()
    {
        var (scenario, errors) = ScenarioReader.Read(Good, "/tmp/good.yaml");

        Assert.Empty(errors);
        Assert.NotNull(scenario);
        Assert.Equal("good", scenario.Name);
        Assert.Equal("Teaches something.", scenario.Teaches);
        Assert.Equal(["a", "s1", "s2", "s3"], scenario.Backends.Select(b => b.Name));
        Assert.All(scenario.Backends.Skip(1), b => Assert.Equal(Registration.ControlPlane, b.Register));
        Assert.Equal(["/api"], scenario.Backends[1].Paths);
        Assert.Equal(3, scenario.Load.Clients.Count);
        Assert.Equal("127.0.0.4", scenario.Load.Clients[2].ToString());
        Assert.Equal(3, scenario.Load.Paths[1].Weight);
        Assert.Equal([TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(3)], scenario.Timeline.Select(e => e.At)); // in time order
        Assert.Equal(["s1", "s2", "s3"], Assert.IsType<SetBehaviorEvent>(scenario.Timeline[0]).Backends);
        Assert.Equal(5, Assert.IsType<SetWeightEvent>(scenario.Timeline[2]).Weight);
        Assert.Equal(3, scenario.Expectations.Count);
        Assert.Equal("error rate ≤ 1.00% (1s–4s)", scenario.Expectations[0].Describe());
    }

    [Fact]
    public void AFileWithoutItsOpeningComment_IsRefused()
    {
        var (scenario, errors) = ScenarioReader.Read(Good[Good.IndexOf('\n', StringComparison.Ordinal)..].TrimStart('\n'), "/tmp/x.yaml");

        Assert.Null(scenario);
        Assert.Contains(errors, e => e.Contains("line 1", StringComparison.Ordinal) && e.Contains("starts with a comment saying what it teaches", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("kill: a", "kill: nobody", "line 21", "nobody matches no backend (backends: a, s1, s2, s3)")]
    [InlineData("rate: 50", "rate: fast", "load.rate (line 15)", "fast")]
    [InlineData("at: 3s", "at: 30s", "timeline[2].at (line 24)", "30s is after the load ends (5s)")]
    [InlineData("kill: a", "explode: a", "line 21", "explode")]
    [InlineData("p99: 200ms", "p99: soon", "expect[2].latency.p99 (line 32)", "soon")]
    [InlineData("error-rate: 0.01", "error-rate: 2", "expect[0].error-rate (line 27)", "2")]
    [InlineData("to: 4s", "to: 0.5s", "expect[0].to (line 29)", "is not after from (1s)")]
    [InlineData("- name: a", "- name: 'a b'", "line 7", "a b is not a backend name")]
    [InlineData("127.0.0.2-127.0.0.4", "127.0.0.9-127.0.0.4", "clients", "a range runs upwards")]
    public void ABadValue_IsNamedWithItsLine(string good, string bad, string where, string message)
    {
        var (scenario, errors) = ScenarioReader.Read(Good.Replace(good, bad, StringComparison.Ordinal), "/tmp/bad.yaml");

        Assert.Null(scenario);
        Assert.Contains(errors, e => e.StartsWith("bad.yaml: ", StringComparison.Ordinal) && e.Contains(where, StringComparison.Ordinal) && e.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void EveryProblemIsReportedAtOnce()
    {
        var yaml = Good.Replace("kill: a", "kill: nobody", StringComparison.Ordinal).Replace("rate: 50", "rate: fast", StringComparison.Ordinal);

        var (_, errors) = ScenarioReader.Read(yaml, "/tmp/bad.yaml");

        Assert.Contains(errors, e => e.Contains("nobody", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("fast", StringComparison.Ordinal));
    }

    [Fact]
    public void APlaceholderNamingNoBackend_IsAnError()
    {
        var (_, errors) = ScenarioReader.Read(Good.Replace("${a}", "${b}", StringComparison.Ordinal), "/tmp/bad.yaml");

        Assert.Contains(errors, e => e.Contains("${b} names no backend", StringComparison.Ordinal));
    }

    [Fact]
    public void TheBalancersOwnConfigErrors_AreReportedAtTheScenarioLine()
    {
        var (_, errors) = ScenarioReader.Read(Good.Replace("backends:\n      - address", "BalanceHub: { algorithm: fastest }\n    backends:\n      - address", StringComparison.Ordinal), "/tmp/bad.yaml");

        var error = Assert.Single(errors);
        Assert.Contains("fastest", error, StringComparison.Ordinal);
        Assert.Contains("line 4", error, StringComparison.Ordinal);
    }

    [Fact]
    public void RedisEvents_NeedTheScenariosRedis()
    {
        var (_, errors) = ScenarioReader.Read(Good.Replace("kill: a", "stop-redis: {}", StringComparison.Ordinal), "/tmp/bad.yaml");

        Assert.Contains(errors, e => e.Contains("timeline[0].stop-redis (line 21): this scenario has no redis-server: add redis: true", StringComparison.Ordinal));
    }

    [Fact]
    public void WithRedis_ItsEventsAndPortAreRead()
    {
        var yaml = Good.Replace("kill: a", "stop-redis: {}", StringComparison.Ordinal).Replace("set-weight: { backend: [s1, s2], weight: 5 }", "start-redis: {}", StringComparison.Ordinal)
            .Replace("    backends:\n", "    BalanceHub: { redis-server: { port: ${redis.port} } }\n    backends:\n", StringComparison.Ordinal) + "\nredis: true\n";

        var (scenario, errors) = ScenarioReader.Read(yaml, "/tmp/redis.yaml");

        Assert.Empty(errors);
        Assert.True(scenario!.Redis);
        Assert.Equal(["stop redis", "start redis"], scenario.Timeline.OfType<RedisEvent>().Select(e => e.Describe()));
    }

    [Fact]
    public void TheRedisPortPlaceholder_NeedsTheScenariosRedis()
    {
        var (_, errors) = ScenarioReader.Read(Good.Replace("    backends:\n", "    BalanceHub: { redis-server: { port: ${redis.port} } }\n    backends:\n", StringComparison.Ordinal), "/tmp/bad.yaml");

        Assert.Contains(errors, e => e.Contains("${redis.port}: this scenario has no redis-server", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("expect:", "expectz:", "expectz")]
    [InlineData("- error-rate: 0.01", "- eror-rate: 0.01", "eror-rate")]
    public void AnUnknownKey_IsNamed(string good, string bad, string key)
    {
        var (_, errors) = ScenarioReader.Read(Good.Replace(good, bad, StringComparison.Ordinal), "/tmp/bad.yaml");

        Assert.Contains(errors, e => e.Contains(key, StringComparison.Ordinal));
    }

    [Fact]
    public void NotYamlAtAll_IsAnErrorNotACrash()
    {
        var (scenario, errors) = ScenarioReader.Read("# teaches\nbackends: [\n  - name: a", "/tmp/broken.yaml");

        Assert.Null(scenario);
        Assert.NotEmpty(errors);
        Assert.All(errors, e => Assert.StartsWith("broken.yaml: ", e, StringComparison.Ordinal));
    }

    [Fact]
    public void AMissingFile_IsNamed()
    {
        var (_, errors) = ScenarioReader.ReadFile("/nonexistent/scenario.yaml");

        Assert.Equal("/nonexistent/scenario.yaml: file not found", Assert.Single(errors));
    }
}
