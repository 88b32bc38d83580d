using System.Net;
using Balancer.Observability;
using Balancer.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.RateLimiting;

public sealed class RateLimitTests(ITestOutputHelper output)
{
    private static readonly IPAddress Second = IPAddress.Parse("127.0.0.2");

    [Fact]
    public async Task AClientPastItsBurst_Gets429WithRetryAfterAndRateLimitFields_AnotherClientDoesNot()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync($$"""
            rate-limit: { rate: 1/minute, burst: 3 }
            pools: [ { name: burst, paths: [/r], backends: [ { address: "{{backends[0].Address}}" } ] } ]
            """, output);
        // This balancer's own instrument: balancers in one test process share the meter's name, and so its exported series.
        using var weighed = new MetricCollector<long>(lb.Running.App.Services.GetRequiredService<BalancerMetrics>().Meter, "balancer.rate_limit.requests");

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await lb.GetFromAsync(IPAddress.Loopback, $"/r/{i}")).Status);
        }

        using var refused = await lb.Client.GetAsync("/r/3");
        var body = await refused.Content.ReadAsStringAsync();
        output.WriteLine(body);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(60), refused.Headers.RetryAfter?.Delta);
        Assert.Equal("\"burst\";q=1;w=60", Assert.Single(refused.Headers.GetValues("RateLimit-Policy")));
        Assert.Equal("\"burst\";r=0;t=60", Assert.Single(refused.Headers.GetValues("RateLimit")));
        Assert.Equal("429 too many requests: pool burst allows 1/1m per client (burst 3); retry in 60s\n", body);

        Assert.Equal(HttpStatusCode.OK, (await lb.GetFromAsync(Second, "/r/other")).Status);
        Assert.Equal(4, backends[0].RequestCount); // the refused request never reached it

        long Count(string result) => weighed.GetMeasurementSnapshot()
            .Where(m => (string?)m.Tags["pool"] == "burst" && (string?)m.Tags["result"] == result && (string?)m.Tags["store"] == "local").Sum(m => m.Value);
        Assert.Equal((1, 4), (Count("limited"), Count("allowed")));
    }

    [Fact]
    public async Task PoolsHaveTheirOwnLimitsAndBuckets_OrNone_AndExemptClientsAreNeverLimited()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync($$"""
            rate-limit: { rate: 1/minute, burst: 1, exempt: [127.0.0.3/32] }
            backends: [ { address: "{{backends[0].Address}}" } ]
            pools:
              - { name: open, paths: [/open], rate-limit: { enabled: false }, backends: [ { address: "{{backends[1].Address}}" } ] }
              - { name: api, paths: [/api], rate-limit: { rate: 1/minute, burst: 2 }, backends: [ { address: "{{backends[2].Address}}" } ] }
            """, output);
        var me = IPAddress.Loopback;
        var exempt = IPAddress.Parse("127.0.0.3");

        Assert.Equal(HttpStatusCode.OK, (await lb.GetFromAsync(me, "/x")).Status);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await lb.GetFromAsync(me, "/x")).Status);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await lb.GetFromAsync(me, "/open/page")).Status);
            Assert.Equal(HttpStatusCode.OK, (await lb.GetFromAsync(exempt, "/x")).Status);
        }

        Assert.Equal(HttpStatusCode.OK, (await lb.GetFromAsync(me, "/api/a")).Status);
        Assert.Equal(HttpStatusCode.OK, (await lb.GetFromAsync(me, "/api/b")).Status);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await lb.GetFromAsync(me, "/api/c")).Status);
    }

    [Fact]
    public async Task BehindATrustedProxy_EachForwardedClientHasItsOwnBucket()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(
            "proxy: { trusted-proxies: [127.0.0.1] }\nrate-limit: { rate: 1/minute, burst: 1 }\n" + TestBalancer.BackendsYaml(backends.All), output);

        async Task<HttpStatusCode> AsAsync(string client)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/p");
            request.Headers.Add("X-Forwarded-For", client);
            using var response = await lb.Client.SendAsync(request);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await AsAsync("10.0.0.1"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await AsAsync("10.0.0.1"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await AsAsync("::ffff:10.0.0.1")); // the same client, written IPv4-mapped
        Assert.Equal(HttpStatusCode.OK, await AsAsync("10.0.0.2"));
        Assert.Equal(HttpStatusCode.OK, await AsAsync("2001:db8::1"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await AsAsync("2001:db8::2")); // one /64, one bucket
    }

    [Fact]
    public async Task KeyedByHeader_EachValueHasItsOwnBucket_AndRequestsWithoutItCountByAddress()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("rate-limit: { rate: 1/minute, burst: 1, key: header:X-Api-Key }\n" + TestBalancer.BackendsYaml(backends.All), output);

        async Task<HttpStatusCode> WithKeyAsync(string? key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/k");
            if (key is not null)
            {
                request.Headers.Add("X-Api-Key", key);
            }

            using var response = await lb.Client.SendAsync(request);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await WithKeyAsync("alpha"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await WithKeyAsync("alpha"));
        Assert.Equal(HttpStatusCode.OK, await WithKeyAsync("beta"));
        Assert.Equal(HttpStatusCode.OK, await WithKeyAsync(null));
        Assert.Equal(HttpStatusCode.TooManyRequests, await WithKeyAsync(null));
    }

    [Fact]
    public async Task AnEmptyBucket_RefillsAtTheRate()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("rate-limit: { rate: 2/s, burst: 1 }\n" + TestBalancer.BackendsYaml(backends.All), output);

        // Back-to-back requests empty the one-token bucket before its half second refill: a 429 comes within a few.
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 20 && !statuses.Contains(HttpStatusCode.TooManyRequests); i++)
        {
            statuses.Add((await lb.Client.GetAsync("/r")).StatusCode);
        }

        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        await Eventually.TrueAsync(async () => (await lb.Client.GetAsync("/r")).StatusCode == HttpStatusCode.OK, "the bucket to refill");
    }
}
