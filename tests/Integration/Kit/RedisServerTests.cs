using Balancer.Tests.Kit;
using StackExchange.Redis;

namespace Balancer.Tests.Integration.Kit;

public sealed class RedisServerTests
{
    [Fact]
    public async Task RedisServer_StartsARealServer_ThatStoresAndExpiresValues()
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
    public async Task RedisServer_Dispose_StopsTheProcess()
    {
        var redis = await RedisServer.StartAsync();
        var port = redis.Port;

        await redis.DisposeAsync();

        using var client = new System.Net.Sockets.TcpClient();
        await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(() => client.ConnectAsync("127.0.0.1", port));
    }
}
