using System.Text.Json;
using Balancer.Tests.Kit;
using Testbed.Reports;
using Testbed.Scenarios;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Scenarios;

/// <summary>Scenarios measure timing-sensitive behavior under load: they run one at a time, after the other tests, with the machine to themselves.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RunsAlone
{
    public const string Name = "scenarios";
}

/// <summary>Every scenario of the catalogue (scenarios/*.yaml), replayed as CI replays it: each must pass.</summary>
[Collection(RunsAlone.Name)]
public sealed class ScenarioCatalogueTests(ITestOutputHelper output)
{
    private static readonly string[] Promised =
    [
        "kill-and-recover", "flapping-backend", "slow-backend-least-connections", "weighted-canary", "sticky-sessions-survive-scale-up",
        "registration-storm", "all-backends-down-and-back", "rolling-restart-with-drain", "client-restricted-paths", "hanging-backend-timeouts",
        "cache-absorbs-load", "redis-outage-under-load", "noisy-client-rate-limited", "sticky-cookie-survives-backend-loss",
        "reload-under-load",
    ];

    public static TheoryData<string> Catalogue() => [.. Directory.GetFiles(Repository.PathOf("scenarios"), "*.yaml").Select(f => Path.GetFileNameWithoutExtension(f)!).Order(StringComparer.Ordinal)];

    [Fact]
    public void TheCatalogue_HoldsEveryPromisedScenario_EachSayingWhatItTeaches()
    {
        var files = Directory.GetFiles(Repository.PathOf("scenarios"), "*.yaml");

        Assert.Subset(files.Select(Path.GetFileNameWithoutExtension).ToHashSet()!, Promised.ToHashSet());
        foreach (var file in files)
        {
            var (scenario, errors) = ScenarioReader.ReadFile(file);
            Assert.True(scenario is not null, string.Join("\n", errors));
            Assert.True(scenario.Teaches.Length > 80, $"{file}: its opening comment is too short to teach anything");
        }
    }

    /// <summary>
    /// Each scenario is run as a user runs it, by the testbed's own executable in a process of its own: the test
    /// host keeps some thread-pool threads busy, and in the same process a burst of requests then waits up to a
    /// second for the pool to grow. A scenario that fails while the testbed itself stalled (its heartbeat late: a
    /// busy CI machine) is run once more, saying so; a failure without a stall, or a second failure, fails.
    /// </summary>
    [Theory]
    [MemberData(nameof(Catalogue))]
    public async Task Scenario_Passes(string name)
    {
        var run = await RunAsync(name);
        if (!run.Passed && run.Stalls is { } stalls)
        {
            output.WriteLine($"{name} failed while the testbed stalled ({stalls}); running it once more.");
            run = await RunAsync(name);
        }

        Assert.True(run.Passed, $"{name} failed (reports in {run.Directory}):\n{run.Summary}");
        Directory.Delete(run.Directory, recursive: true);
    }

    private async Task<(bool Passed, string? Stalls, string Summary, string Directory)> RunAsync(string name)
    {
        var directory = Directory.CreateTempSubdirectory($"scenario-{name}-").FullName;
        await using var testbed = BalancerProcess.StartTestbed(directory, "run", Repository.PathOf($"scenarios/{name}.yaml"), "--out", directory);
        var exitCode = await testbed.WaitForExitAsync(TimeSpan.FromMinutes(5));
        output.WriteLine(testbed.StandardOutput);
        Assert.True(exitCode is 0 or 1, $"the testbed exited with {exitCode}:\n{testbed.StandardError}");
        Assert.True(File.Exists(Path.Combine(directory, ScenarioReport.Json)), $"the testbed exited with {exitCode} and wrote no report:\n{testbed.StandardError}");

        using var run = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(directory, ScenarioReport.Json)));
        var passed = run.RootElement.GetProperty("passed").GetBoolean();
        Assert.Equal(passed, exitCode == 0);
        var stalls = run.RootElement.TryGetProperty("stalls", out var note) ? note.GetString() : null;
        return (passed, stalls, await File.ReadAllTextAsync(Path.Combine(directory, ScenarioReport.Markdown)), directory);
    }
}
