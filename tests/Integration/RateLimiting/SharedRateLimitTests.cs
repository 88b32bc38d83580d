using System.Net;
using System.Text.Json;
using Balancer.Tests.Kit;
using Testbed.Scenarios;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.RateLimiting;

/// <summary>Rate limits shared by two balancers through a real redis-server, local while it is down.</summary>
public sealed class SharedRateLimitTests(ITestOutputHelper output)
{
    /// <summary>
    /// A generous timeout: while Redis is up it decides every request, however busy the machine. (Metrics are not read:
    /// with several balancers in one process, their meters share one name and the exporter merges them.)
    /// </summary>
    private static string Config(RedisServer redis, Backends backends, string pool) => $$"""
        BalanceHub: { redis-server: { port: {{redis.Port}}, key-prefix: "lbtest:", timeout: 10s } }
        pools: [ { name: {{pool}}, paths: [/s], rate-limit: { rate: 1/minute, burst: 4, shared: true }, backends: [ { address: "{{backends[0].Address}}" } ] } ]
        """;

    /// <summary>The health endpoint's Redis state (its status is 503: these balancers' default pools have no backends).</summary>
    private static async Task<string?> RedisStateAsync(TestBalancer lb)
    {
        using var response = await lb.Admin.GetAsync("/api/health");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("redis").GetProperty("state").GetString();
    }

    private static Task UpAsync(TestBalancer lb) => Eventually.TrueAsync(async () => await RedisStateAsync(lb) == "up", "the balancer to connect to Redis");

    [Fact]
    public async Task TwoBalancers_ShareOneBucketPerClient_InRedis()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var backends = await Backends.StartAsync(1);
        await using var a = await TestBalancer.StartAsync(Config(redis, backends, "shared"), output);
        await using var b = await TestBalancer.StartAsync(Config(redis, backends, "shared"), output);
        await UpAsync(a);
        await UpAsync(b);

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            using var response = await (i % 2 == 0 ? a : b).Client.GetAsync($"/s/{i}");
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 4), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 4)], statuses);
        Assert.Equal(4, backends[0].RequestCount);
        var ttl = await redis.CommandAsync("PTTL lbtest:ratelimit:shared:a:127.0.0.1");
        Assert.InRange(long.Parse(ttl.TrimStart(':'), System.Globalization.CultureInfo.InvariantCulture), 1, 240_000); // the time until the bucket is full again
    }

    [Fact]
    public async Task WhileRedisIsDown_LimitsAreLocal_AndSharedAgainWhenItReturns()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(Config(redis, backends, "outage"), output);
        await UpAsync(lb);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await lb.Client.GetAsync("/s/before")).StatusCode);
        }

        Assert.Equal(HttpStatusCode.TooManyRequests, (await lb.Client.GetAsync("/s/before")).StatusCode);

        await redis.StopAsync();
        await Eventually.TrueAsync(async () => await RedisStateAsync(lb) == "down", "the balancer to see Redis down");

        // Still limited, by this balancer's own bucket: a fresh one, since it never counted while Redis did.
        var local = new List<HttpStatusCode>();
        for (var i = 0; i < 5; i++)
        {
            local.Add((await lb.Client.GetAsync("/s/during")).StatusCode);
        }

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 4), HttpStatusCode.TooManyRequests], local);

        await redis.StartAgainAsync();
        await UpAsync(lb);
        Assert.Equal(HttpStatusCode.OK, (await lb.Client.GetAsync("/s/after")).StatusCode); // the local bucket is empty: Redis, which lost its buckets, decided
        Assert.Equal(":1", await redis.CommandAsync("EXISTS lbtest:ratelimit:outage:a:127.0.0.1"));
    }
}
