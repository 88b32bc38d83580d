using System.Globalization;
using System.Runtime.CompilerServices;
using Balancer.Configuration;
using Yarp.ReverseProxy.Model;

namespace Balancer.Proxy;

/// <summary>
/// Proxy pipeline step after load balancing: no backend has more than <c>proxy.limits.max-requests-per-backend</c>
/// requests in flight. A request whose pick is full goes to the least busy backend that has room; when every one
/// is full it waits up to <c>proxy.limits.queue-timeout</c> for a slot, then gets 503 with Retry-After.
/// </summary>
internal sealed class ConcurrencyLimitStep(BalancerOptions options, TimeProvider time)
{
    private static readonly ConditionalWeakTable<DestinationState, StrongBox<int>> InFlight = [];
    private static readonly ConditionalWeakTable<ClusterState, Signal> Freed = [];

    private readonly int _limit = options.Proxy.Limits.MaxRequestsPerBackend;
    private readonly string _retryAfter = Math.Max(1, (int)Math.Ceiling(options.Proxy.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    public Task InvokeAsync(HttpContext context, Func<Task> next)
    {
        var proxy = context.GetReverseProxyFeature();
        if (_limit == 0 || proxy.AvailableDestinations.Count != 1)
        {
            return next();
        }

        return LimitAsync(context, proxy, next);
    }

    private async Task LimitAsync(HttpContext context, Yarp.ReverseProxy.Model.IReverseProxyFeature proxy, Func<Task> next)
    {
        var cluster = proxy.Route.Cluster!;
        var signal = Freed.GetValue(cluster, static _ => new Signal());
        var chosen = proxy.AvailableDestinations[0];
        var deadline = time.GetTimestamp() + (long)(options.Proxy.Limits.QueueTimeout.TotalSeconds * time.TimestampFrequency);
        while (!TryAcquire(chosen))
        {
            var candidates = context.Features.Get<AttemptFeature>()?.Candidates ?? [];
            var roomy = candidates.Where(d => Count(d) < _limit).OrderBy(Count).FirstOrDefault();
            if (roomy is not null)
            {
                chosen = roomy;
                continue;
            }

            var left = TimeSpan.FromSeconds((deadline - time.GetTimestamp()) / (double)time.TimestampFrequency);
            if (left <= TimeSpan.Zero)
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                context.Response.Headers.RetryAfter = _retryAfter;
                context.Response.ContentType = "text/plain; charset=utf-8";
                await context.Response.WriteAsync($"503 every backend is at its limit of {_limit} requests\n", context.RequestAborted).ConfigureAwait(false);
                return;
            }

            await signal.WaitAsync(left, time, context.RequestAborted).ConfigureAwait(false);
        }

        proxy.AvailableDestinations = chosen;
        try
        {
            await next().ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref InFlight.GetValue(chosen, static _ => new StrongBox<int>()).Value);
            signal.Pulse();
        }
    }

    private static int Count(DestinationState destination) => InFlight.TryGetValue(destination, out var box) ? Volatile.Read(ref box.Value) : 0;

    private bool TryAcquire(DestinationState destination)
    {
        var box = InFlight.GetValue(destination, static _ => new StrongBox<int>());
        int current;
        do
        {
            current = Volatile.Read(ref box.Value);
            if (current >= _limit)
            {
                return false;
            }
        }
        while (Interlocked.CompareExchange(ref box.Value, current + 1, current) != current);

        return true;
    }

    /// <summary>Wakes every waiter when a slot frees up.</summary>
    private sealed class Signal
    {
        private TaskCompletionSource _freed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task WaitAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
        {
            try
            {
                await Volatile.Read(ref _freed).Task.WaitAsync(timeout, time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
        }

        public void Pulse() => Interlocked.Exchange(ref _freed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
}
