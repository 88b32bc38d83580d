using System.Net;
using Balancer.Tests.Kit;
using FakeBackends.Behaviors;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Proxy;

/// <summary>Retries and timeouts per pool, over the top-level ones.</summary>
public sealed class PoolTryTests(ITestOutputHelper output)
{
    [Fact]
    public async Task APoolsRetries_ReplaceTheTopLevelOnes_ForItsRequestsOnly()
    {
        // b1 fails every request with 503, b2 answers: a retry of a 503 on b1 lands on b2.
        await using var backends = await Backends.StartAsync(4, (i, o) => i % 2 == 0 ? o with { Behaviors = BehaviorCatalog.From("fail: 503") } : o);
        await using var lb = await TestBalancer.StartAsync($$"""
            health-checks: { enabled: false }
            outlier-detection: { enabled: false }
            retries: { attempts: 2, budget-percent: 100 }
            backends: [ { address: "{{backends[0].Address}}" }, { address: "{{backends[1].Address}}" } ]
            pools:
              - name: strict
                paths: [/strict]
                retries: { attempts: 1 }
                backends: [ { address: "{{backends[2].Address}}" }, { address: "{{backends[3].Address}}" } ]
            """, output);

        var retried = new List<HttpStatusCode>();
        var strict = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            using var a = await lb.Client.GetAsync("/x");
            retried.Add(a.StatusCode);
            using var b = await lb.Client.GetAsync("/strict/x");
            strict.Add(b.StatusCode);
        }

        Assert.All(retried, s => Assert.Equal(HttpStatusCode.OK, s)); // the 503s were retried on the other backend
        Assert.Equal(3, strict.Count(s => s == HttpStatusCode.ServiceUnavailable)); // one try each: half reach the failing one
    }

    [Fact]
    public async Task APoolsResponseHeadersTimeout_ReplacesTheProxysOne()
    {
        await using var backends = await Backends.StartAsync(1, (_, o) => o with { Behaviors = BehaviorCatalog.From("latency: 3s") });
        await using var lb = await TestBalancer.StartAsync($$"""
            health-checks: { enabled: false }
            proxy: { response-headers-timeout: 30s }
            pools:
              - name: impatient
                paths: [/]
                response-headers-timeout: 300ms
                retries: { attempts: 1 }
                backends: [ { address: "{{backends[0].Address}}" } ]
            """, output);

        using var response = await lb.Client.GetAsync("/slow");
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal(TimeSpan.FromMilliseconds(300), lb.Options.Pools[1].ResponseHeadersTimeout);
    }
}
