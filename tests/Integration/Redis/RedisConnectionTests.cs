using System.Net;
using System.Text.Json;
using Balancer.Tests.Kit;
using Testbed.Scenarios;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Redis;

/// <summary>The balancer's connection to a real redis-server: never in the way of start-up, reported, and restored by itself.</summary>
public sealed class RedisConnectionTests(ITestOutputHelper output)
{
    private static string CachingOn(RedisServer redis, string rest) =>
        $"BalanceHub: {{ redis-server: {{ ip: 127.0.0.1, port: {redis.Port}, caching: true, cache-duration: 60 }} }}\n" + rest;

    private static async Task<JsonElement> HealthAsync(TestBalancer lb)
    {
        using var response = await lb.Admin.GetAsync("/api/health");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // Redis is optional: it never fails readiness
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("redis");
    }

    private static Task<double> ConnectedGaugeAsync(TestBalancer lb, RedisServer redis) =>
        MetricsText.SumAsync(lb.Admin, "balancer_redis_connected", $"endpoint=\"127.0.0.1:{redis.Port}\"");

    [Fact]
    public async Task WithRedisDown_TheBalancerStartsAndServes_ReportsItDown_ThenConnectsWhenItComes()
    {
        await using var redis = await RedisServer.StartAsync();
        await redis.StopAsync();
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(CachingOn(redis, TestBalancer.BackendsYaml(backends.All)), output);

        Assert.Equal(HttpStatusCode.OK, (await lb.Client.GetAsync("/page")).StatusCode);
        var health = await HealthAsync(lb);
        Assert.Equal("down", health.GetProperty("state").GetString());
        Assert.Equal($"127.0.0.1:{redis.Port}", health.GetProperty("endpoint").GetString());
        Assert.Equal(0, await ConnectedGaugeAsync(lb, redis));
        Assert.True(await MetricsText.HasAsync(lb.Admin, "balancer_redis_connected", $"endpoint=\"127.0.0.1:{redis.Port}\""));

        await redis.StartAgainAsync();

        await Eventually.TrueAsync(async () => (await HealthAsync(lb)).GetProperty("state").GetString() == "up", "the balancer to connect to Redis once it is up");
        Assert.Equal(1, await ConnectedGaugeAsync(lb, redis));
        Assert.Contains(lb.Log.Lines, l => l.Contains($"Redis at 127.0.0.1:{redis.Port} is up", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ALostConnection_IsAnEvent_AndComesBackByItself()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(CachingOn(redis, TestBalancer.BackendsYaml(backends.All)), output);
        await Eventually.TrueAsync(async () => (await HealthAsync(lb)).GetProperty("state").GetString() == "up", "the first connection");
        await using var events = await EventSubscription.OpenAsync(lb.Admin);

        await redis.StopAsync();
        var down = await events.NextAsync(e => e.Event == "redis-down");
        Assert.Equal($"127.0.0.1:{redis.Port}", down.Backend);
        Assert.Equal("down", (await HealthAsync(lb)).GetProperty("state").GetString());
        Assert.Equal(HttpStatusCode.OK, (await lb.Client.GetAsync("/while-down")).StatusCode);

        await redis.StartAgainAsync();
        await events.NextAsync(e => e.Event == "redis-up");
        Assert.Equal("up", (await HealthAsync(lb)).GetProperty("state").GetString());
    }

    [Fact]
    public async Task NothingUsesRedis_NoConnection_AndHealthSaysOff()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { redis-server: { port: 1, password: hunter2 } }\n" + TestBalancer.BackendsYaml(backends.All), output);

        Assert.Equal("off", (await HealthAsync(lb)).GetProperty("state").GetString());
        Assert.False(await MetricsText.HasAsync(lb.Admin, "balancer_redis_connected", "endpoint=\"127.0.0.1:1\""));
        Assert.DoesNotContain(lb.Log.Lines, l => l.Contains("Redis", StringComparison.Ordinal) || l.Contains("hunter2", StringComparison.Ordinal));
    }
}
