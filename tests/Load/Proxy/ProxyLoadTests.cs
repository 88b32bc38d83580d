using System.Net;
using Balancer.Tests.Kit;
using FakeBackends.Behaviors;
using Testbed.Load;
using Xunit.Abstractions;

namespace Balancer.Tests.Load.Proxy;

/// <summary>
/// The testbed's load generator against a real balancer over real fake backends: bounded runs, loopback only,
/// judged by what clients saw (errors, shares, stickiness) with thresholds generous enough for a shared CI machine.
/// Speed itself is the business of bench/, measured side by side with a baseline.
/// </summary>
public sealed class ProxyLoadTests(ITestOutputHelper output)
{
    private static readonly IPAddress[] Clients = [.. Enumerable.Range(2, 8).Select(i => IPAddress.Parse($"127.0.0.{i}"))];

    [Fact]
    public async Task OpenModel_FourBackendsWithJitter_NoErrors_EvenShares()
    {
        await using var backends = await Backends.StartAsync(4, (_, o) => o with { Behaviors = BehaviorCatalog.From("latency: { min: 1ms, max: 20ms }") });
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { algorithm: round-robin }\n" + TestBalancer.BackendsYaml(backends.All), output);
        await using var load = new LoadGenerator(new LoadOptions
        {
            Target = lb.Running.ProxyUri, Rate = 400, Warmup = TimeSpan.FromSeconds(1), Duration = TimeSpan.FromSeconds(5), Clients = Clients,
            Paths = [new("/"), new("/api/users", 3)], Methods = ["GET", "POST"],
        });

        var result = await load.RunAsync();

        output.WriteLine(LoadReport.Markdown(result));
        Assert.InRange(result.Records.Count, 1990, 2000); // the open model kept its rate
        Assert.Empty(new LoadThresholds(MaxErrorRate: 0, MaxP99: TimeSpan.FromSeconds(2)).Check(result.Summary));
        Assert.Equal(4, result.Summary.Backends.Count);
        Assert.All(result.Summary.Backends, b => Assert.InRange(b.Value / (double)result.Records.Count, 0.22, 0.28));
    }

    [Fact]
    public async Task ClosedModel_IpHash_EveryClientSticksToOneBackend_UnderConcurrency()
    {
        await using var backends = await Backends.StartAsync(4);
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { algorithm: ip-hash }\n" + TestBalancer.BackendsYaml(backends.All), output);
        await using var load = new LoadGenerator(new LoadOptions
        {
            Target = lb.Running.ProxyUri, Model = LoadModel.Closed, Concurrency = 32, Duration = TimeSpan.FromSeconds(4), Clients = Clients, MaxRequests = 40_000,
        });

        var result = await load.RunAsync();

        output.WriteLine(LoadReport.Markdown(result));
        Assert.Empty(new LoadThresholds(MaxErrorRate: 0, MinThroughput: 100).Check(result.Summary));
        Assert.All(result.Records.GroupBy(r => r.Client), client => Assert.Single(client.Select(r => r.Backend).Distinct()));
        Assert.True(result.Records.Select(r => r.Backend).Distinct().Count() >= 2, "eight clients all hashed to one backend");
    }
}
