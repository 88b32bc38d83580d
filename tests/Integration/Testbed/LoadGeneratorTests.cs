using System.Net;
using Balancer.Observability;
using Balancer.Tests.Kit;
using FakeBackends.Behaviors;
using Testbed.Load;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Testbed;

/// <summary>The load generator against real servers: rates kept, stalls seen, bounds held.</summary>
public sealed class LoadGeneratorTests(ITestOutputHelper output)
{
    [Fact]
    public async Task OpenModel_KeepsItsRateWhileTheServerIsSlow_AndCountsLatencyFromWhenEachWasDue()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("latency: 300ms") });
        await using var load = new LoadGenerator(new LoadOptions { Target = backends[0].Address, Rate = 100, Duration = TimeSpan.FromSeconds(2) });

        var result = await load.RunAsync();

        Assert.InRange(result.Records.Count, 199, 200);
        Assert.All(result.Records, r => Assert.Equal(200, r.Status));
        Assert.All(result.Records, r => Assert.True(r.Latency >= TimeSpan.FromMilliseconds(290), $"request {r.Id} took {r.Latency}")); // timers may fire a hair early
        var gaps = result.Records.Zip(result.Records.Skip(1), (a, b) => b.Due - a.Due).ToList();
        Assert.All(gaps, g => Assert.InRange(g.TotalMilliseconds, 9.9, 10.1)); // due every 10 ms, slow answers or not
        Assert.Equal("b1", Assert.Single(result.Summary.Backends).Key);
    }

    [Fact]
    public async Task ClosedModel_SendsOnlyAsFastAsAnswersCome()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("latency: 300ms") });
        await using var load = new LoadGenerator(new LoadOptions { Target = backends[0].Address, Model = LoadModel.Closed, Concurrency = 2, Duration = TimeSpan.FromSeconds(2) });

        var result = await load.RunAsync();

        Assert.InRange(result.Records.Count, 2, 2 * ((2000 / 300) + 1));
    }

    [Fact]
    public async Task AStall_ShowsAsLatency_NotAsMissingRequests()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("hang") });
        await using var load = new LoadGenerator(new LoadOptions { Target = backends[0].Address, Rate = 50, Duration = TimeSpan.FromSeconds(2), Timeout = TimeSpan.FromMilliseconds(500) });

        var result = await load.RunAsync();

        Assert.InRange(result.Records.Count, 99, 100);
        Assert.All(result.Records, r => Assert.Equal((0, "no answer within 0.5s"), (r.Status, r.Error)));
        Assert.Equal(1.0, result.Summary.ErrorRate);
    }

    [Fact]
    public async Task MaxRequests_EndsTheRunEarly()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var load = new LoadGenerator(new LoadOptions { Target = backends[0].Address, Rate = 1000, Duration = TimeSpan.FromMinutes(10), MaxRequests = 50 });

        var result = await load.RunAsync();

        Assert.Equal(50, result.Records.Count);
    }

    [Fact]
    public async Task Warmup_IsSentButNotCounted()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var load = new LoadGenerator(new LoadOptions { Target = backends[0].Address, Rate = 100, Warmup = TimeSpan.FromSeconds(1), Duration = TimeSpan.FromSeconds(1) });

        var result = await load.RunAsync();

        Assert.InRange(result.Records.Count, 99, 100);
        Assert.All(result.Records, r => Assert.True(r.Due >= TimeSpan.Zero));
        Assert.InRange(backends[0].RequestCount, 199, 200);
    }

    [Fact]
    public async Task SeveralClientAddresses_AreSeenAsSeveralClients_AndTagsReachTheAccessLog()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { access-logs-path: ./logs }\n" + TestBalancer.BackendsYaml(backends.All), output);
        await using var load = new LoadGenerator(new LoadOptions
        {
            Target = lb.Running.ProxyUri,
            Rate = 100,
            Duration = TimeSpan.FromSeconds(1),
            Clients = [IPAddress.Parse("127.0.0.2"), IPAddress.Parse("127.0.0.3")],
            TagRequests = true,
        });

        var result = await load.RunAsync();
        await lb.Running.StopAsync();
        var log = await File.ReadAllLinesAsync(Path.Combine(lb.Directory, "logs", AccessLog.FileName));

        Assert.Equal(["127.0.0.2", "127.0.0.3"], result.Records.Select(r => r.Client).Distinct().Order());
        Assert.Equal(result.Records.Count, log.Length);
        Assert.Equal(result.Records.Count(r => r.Client == "127.0.0.3"), log.Count(l => l.Split(' ')[1] == "127.0.0.3"));
        Assert.All(result.Records, r => Assert.Contains(log, l => l.Contains($"?{LoadGenerator.TagParameter}={r.Id} ", StringComparison.Ordinal)));
    }
}
