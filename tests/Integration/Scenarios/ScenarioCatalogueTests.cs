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
    /// A scenario that fails while the testbed itself stalled (its heartbeat late: a pause of this process or of a
    /// shared CI machine) is run once more, saying so; a failure without a stall, or a second failure, fails.
    /// </summary>
    [Theory]
    [MemberData(nameof(Catalogue))]
    public async Task Scenario_Passes(string name)
    {
        var (scenario, errors) = ScenarioReader.ReadFile(Repository.PathOf($"scenarios/{name}.yaml"));
        Assert.True(scenario is not null, string.Join("\n", errors));

        var (result, summary) = await RunAsync(scenario);
        if (!result.Passed && result.StallNote is { } stalls)
        {
            output.WriteLine($"{name} failed while the testbed stalled ({stalls}); running it once more.");
            (result, summary) = await RunAsync(scenario);
        }

        Assert.True(result.Passed, $"{name} failed (reports in {result.Directory}):\n{summary}");
        Directory.Delete(result.Directory, recursive: true);
    }

    private async Task<(ScenarioResult Result, string Summary)> RunAsync(Scenario scenario)
    {
        var directory = Directory.CreateTempSubdirectory($"scenario-{scenario.Name}-").FullName;
        using var progress = new StringWriter();
        var result = await new ScenarioRunner(progress).RunAsync(scenario, directory);
        await ScenarioReport.WriteAsync(result);
        var summary = await File.ReadAllTextAsync(Path.Combine(directory, ScenarioReport.Markdown));
        output.WriteLine(progress.ToString());
        output.WriteLine(summary);
        return (result, summary);
    }
}
