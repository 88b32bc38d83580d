using Microsoft.Extensions.ObjectPool;

namespace Balancer.Proxy;

/// <summary>Makes the tries' timeout sources (on the balancer's clock, unarmed) and takes back those that can be reused.</summary>
internal sealed class TimeoutPolicy(TimeProvider time) : PooledObjectPolicy<CancellationTokenSource>
{
    public override CancellationTokenSource Create() => new(Timeout.InfiniteTimeSpan, time);

    /// <summary>The caller reset it (<see cref="CancellationTokenSource.TryReset"/>): only sources that never fired come back.</summary>
    public override bool Return(CancellationTokenSource obj) => !obj.IsCancellationRequested;
}
