using Balancer.Redis;
using StackExchange.Redis;

namespace Balancer.RateLimiting;

/// <summary>
/// Token buckets in Redis, shared by every balancer that uses the same server and key prefix: one key per pool and
/// client holding its <see cref="Gcra"/> TAT in microseconds of the Redis server's clock (so the balancers' clocks
/// need not agree), read and moved by one script (atomic: two balancers cannot both take the last token), expiring
/// when the bucket would be full again. A call that fails or outlasts <c>redis-server.timeout</c> returns null and the
/// step uses the pool's local buckets instead.
/// </summary>
internal sealed class SharedBuckets(RedisConnection redis, string pool, TimeSpan interval, int burst)
{
    // KEYS[1] the bucket; ARGV[1] the interval and ARGV[2] the burst. Returns {allowed, remaining, retry after in µs}.
    private static readonly LuaScript Script = LuaScript.Prepare("""
        local now_parts = redis.call('TIME')
        local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
        local interval = tonumber(@interval)
        local burst = tonumber(@burst)
        local tat = tonumber(redis.call('GET', @key) or '0')
        if tat < now then tat = now end
        local allow_at = tat - (burst - 1) * interval
        if now < allow_at then
          return {0, 0, allow_at - now}
        end
        local next_tat = tat + interval
        redis.call('SET', @key, next_tat, 'PX', math.ceil((next_tat - now) / 1000))
        return {1, math.floor((burst * interval - (next_tat - now)) / interval), 0}
        """);

    private readonly long _intervalMicroseconds = Math.Max(1, interval.Ticks / 10);
    private readonly string _prefix = $"ratelimit:{pool}:";

    /// <summary>The decision Redis made, or null when Redis is down, slow or failing.</summary>
    public async ValueTask<Gcra.Decision?> TakeAsync(BucketKey key, CancellationToken cancellation)
    {
        var parameters = new { key = (RedisKey)(_prefix + key), interval = _intervalMicroseconds, burst };
        var (ok, result) = await redis.CallAsync("rate-limit", db => db.ScriptEvaluateAsync(Script, parameters), cancellation).ConfigureAwait(false);
        if (!ok || result.Resp2Type != ResultType.Array || (RedisResult[]?)result is not [var allowed, var remaining, var retryAfter])
        {
            return null;
        }

        return new Gcra.Decision((long)allowed == 1, 0, (long)retryAfter * 10, (int)(long)remaining);
    }
}
