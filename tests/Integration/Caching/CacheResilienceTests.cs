using System.Net;
using System.Text.Json;
using Balancer.Caching;
using Balancer.Tests.Kit;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Testbed.Scenarios;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Caching;

/// <summary>
/// The cache under concurrency and failure, against a real redis-server: concurrent misses fetch once, and with Redis
/// down or slow every request is still answered (from the backend), caching again once Redis is back.
/// </summary>
public sealed class CacheResilienceTests(ITestOutputHelper output)
{
    private static string Config(RedisServer redis, ScriptedBackend backend, string timeout) => $$"""
        BalanceHub: { redis-server: { port: {{redis.Port}}, caching: true, cache-duration: 60, key-prefix: "resilience:", timeout: {{timeout}} } }
        retries: { attempts: 1 }
        pools: [ { name: cached, paths: [/r], backends: [ { address: "{{backend.Address}}" } ] } ]
        """;

    private static Task<ScriptedBackend> BackendAsync(TaskCompletionSource? gate = null) => ScriptedBackend.StartAsync(async (context, count) =>
    {
        if (gate is not null)
        {
            await gate.Task;
        }

        context.Response.Headers.CacheControl = "max-age=60";
        await context.Response.WriteAsync($"answer #{count}");
    });

    private static async Task UpAsync(TestBalancer lb, string state = "up") => await Eventually.TrueAsync(async () =>
    {
        using var response = await lb.Admin.GetAsync("/api/health");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("redis").GetProperty("state").GetString() == state;
    }, $"Redis to be {state}");

    private static Task StoredAsync(TestBalancer lb) =>
        Eventually.TrueAsync(() => lb.Running.App.Services.GetRequiredService<ResponseCache>().PendingStores == 0, "the cache stores to finish");

    private static async Task<(HttpStatusCode Status, string XCache, string Body)> GetAsync(TestBalancer lb, string path)
    {
        using var response = await lb.Client.GetAsync(path);
        return (response.StatusCode, response.Headers.TryGetValues("X-Cache", out var values) ? string.Join(",", values) : "", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ConcurrentMisses_FetchFromTheBackendOnce()
    {
        await using var redis = await RedisServer.StartAsync();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await BackendAsync(gate);
        await using var lb = await TestBalancer.StartAsync(Config(redis, backend, "10s"), output);
        await UpAsync(lb);

        var requests = Enumerable.Range(0, 20).Select(_ => GetAsync(lb, "/r/popular")).ToList();
        await Eventually.TrueAsync(() => backend.Seen("/r/popular") == 1, "the first miss to reach the backend");
        // The other nineteen wait for the first rather than reach the backend.
        var step = lb.Running.App.Services.GetRequiredService<CacheStep>();
        await Eventually.TrueAsync(() => step.Waiting == 19, "nineteen misses to wait for the first");
        gate.SetResult();
        var answers = await Task.WhenAll(requests);

        Assert.Equal(1, backend.Seen("/r/popular"));
        Assert.All(answers, a => Assert.Equal((HttpStatusCode.OK, "answer #1"), (a.Status, a.Body)));
        Assert.Equal(19, answers.Count(a => a.XCache == "HIT"));
        Assert.Equal(1, answers.Count(a => a.XCache == "MISS"));
    }

    [Fact]
    public async Task MissesForAUrlWhoseAnswersCannotBeStored_DoNotWaitForEachOther()
    {
        await using var redis = await RedisServer.StartAsync();
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await ScriptedBackend.StartAsync(async (context, count) =>
        {
            if (count > 1)
            {
                await held.Task;
            }

            context.Response.Headers.CacheControl = "private";
            await context.Response.WriteAsync($"answer #{count}");
        });
        await using var lb = await TestBalancer.StartAsync(Config(redis, backend, "10s"), output);
        await UpAsync(lb);
        Assert.Equal("MISS", (await GetAsync(lb, "/r/private")).XCache); // private: not stored, and remembered as such

        // Held at the backend, all five are there at once: none waits for another's answer it could not use.
        var answers = Enumerable.Range(0, 5).Select(_ => GetAsync(lb, "/r/private")).ToList();
        await Eventually.TrueAsync(() => backend.Seen("/r/private") == 6, "all five misses to reach the backend at once");
        Assert.Equal(0, lb.Running.App.Services.GetRequiredService<CacheStep>().Waiting);
        held.SetResult();
        Assert.All(await Task.WhenAll(answers), a => Assert.Equal((HttpStatusCode.OK, "MISS"), (a.Status, a.XCache)));
    }

    [Fact]
    public async Task WhileRedisIsDown_EveryRequestIsAnswered_AndCachingResumesWhenItReturns()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var backend = await BackendAsync();
        await using var lb = await TestBalancer.StartAsync(Config(redis, backend, "10s"), output);
        await UpAsync(lb);
        Assert.Equal("MISS", (await GetAsync(lb, "/r/page")).XCache);
        await StoredAsync(lb);
        Assert.Equal("HIT", (await GetAsync(lb, "/r/page")).XCache);

        await redis.StopAsync();
        await UpAsync(lb, "down");
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal((HttpStatusCode.OK, "BYPASS"), ((await GetAsync(lb, "/r/page")).Status, (await GetAsync(lb, "/r/page")).XCache));
        }

        Assert.Equal(11, backend.Seen("/r/page"));

        await redis.StartAgainAsync(); // empty: it kept nothing
        await UpAsync(lb);
        Assert.Equal("MISS", (await GetAsync(lb, "/r/page")).XCache);
        await StoredAsync(lb);
        Assert.Equal(("HIT", "answer #12"), ((await GetAsync(lb, "/r/page")) is var hit ? (hit.XCache, hit.Body) : default));
    }

    [Fact]
    public async Task SlowRedis_IsGivenUpAfterTheTimeout_AndTheBackendAnswers()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var backend = await BackendAsync();
        await using var lb = await TestBalancer.StartAsync(Config(redis, backend, "200ms"), output);
        await UpAsync(lb);
        // On a busy machine a lookup may itself outlast 200 ms: ask until the answer is cached, however many tries.
        await Eventually.TrueAsync(async () => (await GetAsync(lb, "/r/slow")).XCache == "HIT", "the answer to be cached");
        var seen = backend.Seen("/r/slow");

        // Redis holds every client's commands for 10 s (itself undoable only by waiting): the cached answer is there, but
        // not in time; the request is answered by the backend well before the pause ends.
        Assert.Equal("+OK", await redis.CommandAsync("CLIENT PAUSE 10000 ALL"));
        var answer = await GetAsync(lb, "/r/slow").WaitAsync(TimeSpan.FromSeconds(8));
        Assert.Equal((HttpStatusCode.OK, "BYPASS"), (answer.Status, answer.XCache));
        Assert.Equal(seen + 1, backend.Seen("/r/slow"));

        // Once the pause ends (the connection may have been declared lost meanwhile, its pipe torn down under a
        // lookup), hits again; every answer meanwhile is the backend's.
        await Eventually.TrueAsync(async () =>
        {
            var (status, xCache, _) = await GetAsync(lb, "/r/slow");
            Assert.Equal(HttpStatusCode.OK, status);
            return xCache == "HIT";
        }, "a hit after the pause");
    }
}
