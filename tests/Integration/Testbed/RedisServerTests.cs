using System.Net.Sockets;
using StackExchange.Redis;
using Testbed.Scenarios;

namespace Balancer.Tests.Integration.Testbed;

/// <summary>The testbed's real redis-server: started, stopped (a crash) and started again on its port.</summary>
public sealed class RedisServerTests
{
    [Fact]
    public async Task StartsARealServer_ThatStoresAndExpiresValues()
    {
        await using var redis = await RedisServer.StartAsync();
        using var connection = await ConnectionMultiplexer.ConnectAsync(redis.Endpoint);
        var db = connection.GetDatabase();

        await db.StringSetAsync("greeting", "hello", TimeSpan.FromMinutes(1));

        Assert.Equal("hello", (string?)await db.StringGetAsync("greeting"));
        var ttl = await db.KeyTimeToLiveAsync("greeting");
        Assert.InRange(ttl!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1));
        Assert.Equal("+PONG", await redis.CommandAsync("PING"));
    }

    [Fact]
    public async Task Stop_ClosesThePort_Start_ComesBackOnIt_Empty()
    {
        await using var redis = await RedisServer.StartAsync();
        var port = redis.Port;
        await redis.CommandAsync("SET k v");

        await redis.StopAsync();

        Assert.False(redis.Running);
        await Assert.ThrowsAnyAsync<SocketException>(() => redis.CommandAsync("PING"));
        await Assert.ThrowsAsync<InvalidOperationException>(redis.StopAsync);

        await redis.StartAgainAsync();

        Assert.True(redis.Running);
        Assert.Equal(port, redis.Port);
        Assert.Equal("$-1", await redis.CommandAsync("GET k")); // no persistence: a crash loses the data
        await Assert.ThrowsAsync<InvalidOperationException>(redis.StartAgainAsync);
    }

    [Fact]
    public async Task Dispose_StopsTheProcess()
    {
        var redis = await RedisServer.StartAsync();
        var port = redis.Port;

        await redis.DisposeAsync();

        using var client = new TcpClient();
        await Assert.ThrowsAnyAsync<SocketException>(() => client.ConnectAsync("127.0.0.1", port));
    }
}
