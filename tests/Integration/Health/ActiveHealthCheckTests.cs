using System.Net;
using System.Text.Json;
using Balancer.Tests.Kit;
using FakeBackends.Behaviors;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Health;

public sealed class ActiveHealthCheckTests(ITestOutputHelper output)
{
    [Fact]
    public async Task UnhealthyBackend_IsMarkedDownAndSkipped()
    {
        await using var backends = await Backends.StartAsync(3, (i, o) => i == 1 ? o with { Behaviors = BehaviorCatalog.From("unhealthy") } : o);
        await using var lb = await TestBalancer.StartAsync(
            "health-checks: { enabled: true, path: /health, interval: 200ms, timeout: 2s }\n" + TestBalancer.BackendsYaml(backends.All), output);

        await Eventually.TrueAsync(async () => await HealthOf(lb, backends[1].Address) == "unhealthy", "b2 to be marked unhealthy");
        var before = backends[1].RequestCount;
        var servers = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            servers.Add((await lb.GetEchoAsync()).Server);
        }

        Assert.DoesNotContain("b2", servers);
        Assert.Equal(before, backends[1].RequestCount);
        Assert.Equal("healthy", await HealthOf(lb, backends[0].Address));
    }

    [Fact]
    public async Task AllBackendsUnhealthy_Answers503WithRetryAfter()
    {
        await using var backends = await Backends.StartAsync(2, (_, o) => o with { Behaviors = BehaviorCatalog.From("unhealthy") });
        await using var lb = await TestBalancer.StartAsync(
            "health-checks: { enabled: true, path: /health, interval: 200ms }\n" + TestBalancer.BackendsYaml(backends.All), output);

        await Eventually.TrueAsync(async () => await HealthOf(lb, backends[0].Address) == "unhealthy" && await HealthOf(lb, backends[1].Address) == "unhealthy", "both backends to be marked unhealthy");
        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal(0, backends[0].RequestCount + backends[1].RequestCount);
    }

    private static async Task<string?> HealthOf(TestBalancer lb, Uri backend)
    {
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        return json.RootElement.EnumerateArray()
            .Single(b => b.GetProperty("address").GetString() == backend.ToString().TrimEnd('/'))
            .GetProperty("health").GetString();
    }
}
