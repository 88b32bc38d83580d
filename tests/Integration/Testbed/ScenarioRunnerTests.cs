using Balancer.Tests.Integration.Scenarios;
using Testbed.Scenarios;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Testbed;

/// <summary>What the runner does beyond the catalogue: its redis-server, and events that cannot be carried out.</summary>
[Collection(RunsAlone.Name)]
public sealed class ScenarioRunnerTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("runner-").FullName;

    private const string WithRedis = """
        # The balancer is given the scenario's redis-server; Redis goes down and comes back under load.
        redis: true
        balancer:
          config: |
            BalanceHub: { redis-server: { ip: 127.0.0.1, port: ${redis.port} } }
            backends:
              - address: ${b1}
        backends:
          - name: b1
        load:
          rate: 50
          duration: 3s
        timeline:
          - at: 1s
            stop-redis: {}
          - at: 2s
            start-redis: {}
        expect:
          - error-rate: 0
        """;

    [Fact]
    public async Task RedisIsStartedForTheBalancer_StoppedAndStartedByTheTimeline()
    {
        var result = await RunAsync(WithRedis);

        Assert.Empty(result.Problems);
        Assert.Equal(["stop redis", "start redis"], result.Events.Select(e => e.Description));
        Assert.All(result.Events, e => Assert.Null(e.Error));
        Assert.Contains("port: ", await File.ReadAllTextAsync(Path.Combine(result.Directory, "balancer", "config.yaml")), StringComparison.Ordinal);
        Assert.DoesNotContain("${redis.port}", await File.ReadAllTextAsync(Path.Combine(result.Directory, "balancer", "config.yaml")), StringComparison.Ordinal);
        Assert.True(result.Passed);
    }

    [Fact]
    public async Task AnEventThatCannotBeCarriedOut_FailsTheRun_SayingWhy()
    {
        var yaml = WithRedis.Replace("start-redis", "stop-redis", StringComparison.Ordinal); // stopping what is already stopped

        var result = await RunAsync(yaml);

        Assert.False(result.Passed);
        var problem = Assert.Single(result.Problems);
        Assert.Contains("event at 2s (stop redis) failed: redis-server on port", problem, StringComparison.Ordinal);
        Assert.Contains("is not running", problem, StringComparison.Ordinal);
    }

    private async Task<ScenarioResult> RunAsync(string yaml)
    {
        var (scenario, errors) = ScenarioReader.Read(yaml, Path.Combine(_directory, "redis.yaml"));
        Assert.True(scenario is not null, string.Join("\n", errors));
        using var progress = new StringWriter();
        var result = await new ScenarioRunner(progress).RunAsync(scenario, _directory);
        output.WriteLine(progress.ToString());
        return result;
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
