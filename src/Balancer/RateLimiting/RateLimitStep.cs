using System.Collections.Frozen;
using System.Globalization;
using Balancer.Configuration;
using Balancer.Observability;
using Balancer.Proxy;
using Balancer.Redis;

namespace Balancer.RateLimiting;

/// <summary>
/// Proxy pipeline step, before any that pick a backend: in a pool with a <c>rate-limit</c>, a token bucket per client
/// (<see cref="BucketKey"/>: the resolved client address, so a trusted proxy's clients each have their own, or the
/// pool's key header). A request that finds its bucket empty is answered <c>429 Too Many Requests</c> with
/// <c>Retry-After</c> (the time until its next token) and the IETF <c>RateLimit-Policy</c>/<c>RateLimit</c> fields, and
/// goes no further. Shared limits take from Redis (<see cref="SharedBuckets"/>) and, while Redis is down or slower
/// than <c>redis-server.timeout</c>, from this process's buckets (<see cref="LocalBuckets"/>); back to Redis as soon as
/// it answers. In the pipeline only when some pool has a limit.
/// </summary>
internal sealed class RateLimitStep : IDisposable
{
    private readonly FrozenDictionary<string, PoolLimit> _pools;
    private readonly BalancerOptions _options;
    private readonly BalancerMetrics _metrics;

    public RateLimitStep(BalancerOptions options, BalancerMetrics metrics, RedisConnection redis, TimeProvider time)
    {
        _options = options;
        _metrics = metrics;
        _pools = options.Pools.Where(p => p.RateLimit is not null).ToFrozenDictionary(
            p => p.Name,
            p => new PoolLimit(p.Name, p.RateLimit!, new LocalBuckets(p.RateLimit!.Rate.Interval, p.RateLimit.Burst, p.RateLimit.MaxClients, time),
                p.RateLimit.Shared ? new SharedBuckets(redis, p.Name, p.RateLimit.Rate.Interval, p.RateLimit.Burst) : null),
            StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Some pool limits its clients: the step belongs in the pipeline.</summary>
    public bool Any => _pools.Count > 0;

    /// <summary>A pool's local buckets (for tests of their bound).</summary>
    internal LocalBuckets Local(string pool) => _pools[pool].Local;

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var cluster = context.GetReverseProxyFeature().Route.Cluster;
        if (cluster is null || !_pools.TryGetValue(cluster.ClusterId, out var pool))
        {
            return next(context);
        }

        var client = ClientAddress.Resolve(context, _options.Proxy.TrustedProxies);
        if (client is null || pool.Options.Exempt.Contains(client))
        {
            return next(context);
        }

        var key = pool.Options.Header is { } header && context.Request.Headers[header] is { Count: > 0 } value && value[0] is { Length: > 0 } text
            ? BucketKey.ForValue(text)
            : BucketKey.ForAddress(client);
        if (pool.Shared is { } shared)
        {
            return SharedAsync(context, next, pool, shared, key);
        }

        return Decide(context, next, pool, pool.Local.Take(key), shared: false);
    }

    private async Task SharedAsync(HttpContext context, RequestDelegate next, PoolLimit pool, SharedBuckets shared, BucketKey key)
    {
        var decision = await shared.TakeAsync(key, context.RequestAborted).ConfigureAwait(false);
        await (decision is { } fromRedis ? Decide(context, next, pool, fromRedis, shared: true) : Decide(context, next, pool, pool.Local.Take(key), shared: false))
            .ConfigureAwait(false);
    }

    private Task Decide(HttpContext context, RequestDelegate next, PoolLimit pool, Gcra.Decision decision, bool shared)
    {
        _metrics.RateLimit(pool.Name, limited: !decision.Allowed, shared);
        return decision.Allowed ? next(context) : RefuseAsync(context, pool, decision);
    }

    private static Task RefuseAsync(HttpContext context, PoolLimit pool, Gcra.Decision decision)
    {
        var rate = pool.Options.Rate;
        var retryAfter = (long)Math.Max(1, Math.Ceiling(TimeSpan.FromTicks(decision.RetryAfter).TotalSeconds));
        var response = context.Response;
        response.StatusCode = StatusCodes.Status429TooManyRequests;
        response.ContentType = "text/plain; charset=utf-8";
        response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
        // draft-ietf-httpapi-ratelimit-headers: the policy (q requests per w seconds) and where this client stands in it.
        response.Headers["RateLimit-Policy"] = pool.Policy;
        response.Headers["RateLimit"] = string.Create(CultureInfo.InvariantCulture, $"\"{pool.Name}\";r={decision.Remaining};t={retryAfter}");
        return response.WriteAsync(
            string.Create(CultureInfo.InvariantCulture, $"429 too many requests: pool {pool.Name} allows {rate} per client (burst {pool.Options.Burst}); retry in {retryAfter}s\n"),
            context.RequestAborted);
    }

    public void Dispose()
    {
        foreach (var pool in _pools.Values)
        {
            pool.Local.Dispose();
        }
    }

    private sealed record PoolLimit(string Name, RateLimitOptions Options, LocalBuckets Local, SharedBuckets? Shared)
    {
        public string Policy { get; } = string.Create(CultureInfo.InvariantCulture, $"\"{Name}\";q={Options.Rate.Count};w={(long)Math.Ceiling(Options.Rate.Per.TotalSeconds)}");
    }
}
