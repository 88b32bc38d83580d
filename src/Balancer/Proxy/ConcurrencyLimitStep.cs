using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading.RateLimiting;
using Balancer.Configuration;
using Yarp.ReverseProxy.Model;

namespace Balancer.Proxy;

/// <summary>
/// Proxy pipeline step after load balancing: no backend has more than <c>proxy.limits.max-requests-per-backend</c>
/// requests in flight, each backend's slots being a <see cref="ConcurrencyLimiter"/>. A request whose pick is full goes
/// to the least busy backend that has room; when every one is full it queues, oldest first, at the backend with the
/// shortest queue, for up to <c>proxy.limits.queue-timeout</c>, then gets 503 with Retry-After. A freed slot wakes the
/// one request at the head of its queue, never a herd, and no wake-up is lost between a failed try and the wait.
/// </summary>
internal sealed class ConcurrencyLimitStep(BalancerOptions options, TimeProvider time)
{
    /// <summary>Requests one backend's queue holds at most; more are refused at once.</summary>
    private const int QueueLimit = 10_000;

    private readonly ConditionalWeakTable<DestinationState, ConcurrencyLimiter> _limiters = [];
    private readonly int _limit = options.Proxy.Limits.MaxRequestsPerBackend;
    private readonly string _retryAfter = Math.Max(1, (int)Math.Ceiling(options.Proxy.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var proxy = context.GetReverseProxyFeature();
        if (_limit == 0 || proxy.AvailableDestinations.Count != 1)
        {
            return next(context);
        }

        return LimitAsync(context, proxy, next);
    }

    private async Task LimitAsync(HttpContext context, IReverseProxyFeature proxy, RequestDelegate next)
    {
        var chosen = proxy.AvailableDestinations[0];
        var lease = LimiterOf(chosen).AttemptAcquire();
        if (!lease.IsAcquired)
        {
            lease.Dispose();
            (chosen, lease) = await ElsewhereOrQueuedAsync(context, chosen).ConfigureAwait(false);
            if (lease is null)
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                context.Response.Headers.RetryAfter = _retryAfter;
                context.Response.ContentType = "text/plain; charset=utf-8";
                await context.Response.WriteAsync($"503 every backend is at its limit of {_limit} requests\n", context.RequestAborted).ConfigureAwait(false);
                return;
            }
        }

        proxy.AvailableDestinations = chosen;
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            lease.Dispose();
        }
    }

    /// <summary>A slot at the least busy other candidate with room, or a place in the shortest queue; null when none came in time.</summary>
    private async Task<(DestinationState Chosen, RateLimitLease? Lease)> ElsewhereOrQueuedAsync(HttpContext context, DestinationState picked)
    {
        var candidates = context.Features.Get<AttemptFeature>()?.Candidates ?? [];
        var ranked = candidates.Where(d => d != picked)
            .Select(d => (Destination: d, Statistics: LimiterOf(d).GetStatistics()))
            .OrderByDescending(c => c.Statistics?.CurrentAvailablePermits ?? 0)
            .ToList();
        foreach (var (destination, _) in ranked)
        {
            var lease = LimiterOf(destination).AttemptAcquire();
            if (lease.IsAcquired)
            {
                return (destination, lease);
            }

            lease.Dispose();
        }

        var queue = ranked.Select(c => (c.Destination, Queued: c.Statistics?.CurrentQueuedCount ?? 0))
            .Append((Destination: picked, Queued: LimiterOf(picked).GetStatistics()?.CurrentQueuedCount ?? 0))
            .MinBy(c => c.Queued).Destination;
        using var timeout = new CancellationTokenSource(options.Proxy.Limits.QueueTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, context.RequestAborted);
        try
        {
            var lease = await LimiterOf(queue).AcquireAsync(1, linked.Token).ConfigureAwait(false);
            if (lease.IsAcquired)
            {
                return (queue, lease);
            }

            lease.Dispose(); // the queue is full
            return (queue, null);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested)
        {
            return (queue, null);
        }
    }

    private ConcurrencyLimiter LimiterOf(DestinationState destination) =>
        _limiters.TryGetValue(destination, out var limiter) ? limiter : _limiters.GetValue(destination, _ => new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = _limit,
            QueueLimit = QueueLimit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        }));
}
