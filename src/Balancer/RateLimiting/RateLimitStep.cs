using System.Collections.Frozen;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Balancer.Configuration;
using Balancer.Networking;
using Balancer.Observability;
using Balancer.Proxy;

namespace Balancer.RateLimiting;

/// <summary>
/// Proxy pipeline step, first of those that decide where a request goes: per pool with a <c>rate-limit</c>, a token
/// bucket per client address (the resolved one, so a trusted proxy's clients each have their own; IPv6 clients by
/// their /64, which one host can fill at will). A request that finds its bucket empty is answered
/// <c>429 Too Many Requests</c> with <c>Retry-After</c> and the IETF <c>RateLimit-Policy</c>/<c>RateLimit</c> fields,
/// and goes no further. Buckets are System.Threading.RateLimiting's; a bucket that has stayed full a while is dropped,
/// so memory follows the clients active now. In the pipeline only when some pool has a limit.
/// </summary>
internal sealed class RateLimitStep : IDisposable
{
    private readonly FrozenDictionary<string, PoolLimiter> _pools;
    private readonly NetworkList _trustedProxies;
    private readonly BalancerMetrics _metrics;

    public RateLimitStep(BalancerOptions options, BalancerMetrics metrics)
    {
        _trustedProxies = options.Proxy.TrustedProxies;
        _metrics = metrics;
        _pools = options.Pools.Where(p => p.RateLimit is not null)
            .ToFrozenDictionary(p => p.Name, p => new PoolLimiter(p.Name, p.RateLimit!), StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Some pool limits its clients: the step belongs in the pipeline.</summary>
    public bool Any => _pools.Count > 0;

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var cluster = context.GetReverseProxyFeature().Route.Cluster;
        if (cluster is null || !_pools.TryGetValue(cluster.ClusterId, out var pool))
        {
            return next(context);
        }

        var client = ClientAddress.Resolve(context, _trustedProxies);
        if (client is null || pool.Options.Exempt.Contains(client))
        {
            return next(context);
        }

        using var lease = pool.Limiter.AttemptAcquire(Key(client));
        if (lease.IsAcquired)
        {
            _metrics.RateLimit(pool.Name, limited: false);
            return next(context);
        }

        _metrics.RateLimit(pool.Name, limited: true);
        return RefuseAsync(context, pool, client);
    }

    private static Task RefuseAsync(HttpContext context, PoolLimiter pool, IPAddress client)
    {
        var rate = pool.Options.Rate;
        var retryAfter = (int)Math.Max(1, Math.Ceiling(rate.RefillPeriod.TotalSeconds));
        var window = (int)Math.Max(1, Math.Ceiling((rate.Interval * pool.Options.Burst).TotalSeconds));
        var remaining = pool.Limiter.GetStatistics(Key(client))?.CurrentAvailablePermits ?? 0;
        var response = context.Response;
        response.StatusCode = StatusCodes.Status429TooManyRequests;
        response.ContentType = "text/plain; charset=utf-8";
        response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
        // draft-ietf-httpapi-ratelimit-headers: the policy (quota q per window w seconds) and where this client stands.
        response.Headers["RateLimit-Policy"] = string.Create(CultureInfo.InvariantCulture, $"\"{pool.Name}\";q={pool.Options.Burst};w={window}");
        response.Headers["RateLimit"] = string.Create(CultureInfo.InvariantCulture, $"\"{pool.Name}\";r={Math.Max(0, remaining)};t={retryAfter}");
        return response.WriteAsync(
            string.Create(CultureInfo.InvariantCulture, $"429 too many requests: pool {pool.Name} allows {rate} per client (burst {pool.Options.Burst}); retry in {retryAfter}s\n"),
            context.RequestAborted);
    }

    /// <summary>A client's bucket: its IPv4 address, or its IPv6 /64.</summary>
    private static IPAddress Key(IPAddress client)
    {
        if (client.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return client;
        }

        Span<byte> bytes = stackalloc byte[16];
        client.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes);
    }

    public void Dispose()
    {
        foreach (var pool in _pools.Values)
        {
            pool.Limiter.Dispose();
        }
    }

    private sealed class PoolLimiter
    {
        public PoolLimiter(string name, RateLimitOptions options)
        {
            Name = name;
            Options = options;
            var bucket = new TokenBucketRateLimiterOptions
            {
                TokenLimit = options.Burst,
                TokensPerPeriod = options.Rate.TokensPerRefill,
                ReplenishmentPeriod = options.Rate.RefillPeriod,
                QueueLimit = 0,
                AutoReplenishment = false, // the partitioned limiter's own timer refills every bucket: no timer per client
            };
            Func<IPAddress, RateLimiter> create = _ => new TokenBucketRateLimiter(bucket);
            Limiter = PartitionedRateLimiter.Create<IPAddress, IPAddress>(client => new RateLimitPartition<IPAddress>(client, create));
        }

        public string Name { get; }

        public RateLimitOptions Options { get; }

        public PartitionedRateLimiter<IPAddress> Limiter { get; }
    }
}
