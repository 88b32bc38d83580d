using Balancer.Configuration;
using Yarp.ReverseProxy;

namespace Balancer.Registry;

/// <summary>
/// Removes draining backends: once a draining backend has no request in flight, or <c>drain.timeout</c> after it
/// began to drain, whichever comes first. Draining is stored with the registration, so a restart carries on.
/// </summary>
public sealed partial class DrainMonitor(BackendRegistry registry, IProxyStateLookup proxy, BalancerOptions options, TimeProvider time, ILogger<DrainMonitor> logger)
    : IAsyncDisposable
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan Retry = TimeSpan.FromSeconds(1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _sync = new();
    private readonly Dictionary<string, Task> _watching = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Called with a backend whose drain timed out, before it is removed: closes its WebSockets with a close frame.</summary>
    internal Func<string, Task>? ClosingUpgrades { get; set; }

    public void Start()
    {
        registry.Published += Follow;
        Follow(registry.Current);
    }

    private void Follow(RoutingSnapshot snapshot)
    {
        lock (_sync)
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }

            foreach (var backend in snapshot.Pools.SelectMany(p => p.Backends).Where(b => b.DrainingSince is not null))
            {
                if (!_watching.ContainsKey(backend.Address))
                {
                    _watching[backend.Address] = Task.Run(() => WatchAsync(backend));
                }
            }
        }
    }

    private async Task WatchAsync(BackendEntry backend)
    {
        var deadline = backend.DrainingSince!.Value + options.Drain.Timeout;
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                var wait = Poll;
                try
                {
                    var inFlight = proxy.TryGetCluster(backend.Pool, out var cluster) && cluster.Destinations.TryGetValue(backend.Address, out var destination)
                        ? destination.ConcurrentRequestCount
                        : 0;
                    var late = time.GetUtcNow() >= deadline;
                    if (inFlight == 0 || late)
                    {
                        if (late && inFlight > 0 && ClosingUpgrades is { } close)
                        {
                            await close(backend.Address).ConfigureAwait(false);
                        }

                        var result = await registry.ApplyAsync(new RegistryChange.Deregister(backend.Address, [], []), "drain", _stopping.Token).ConfigureAwait(false);
                        LogDrained(logger, backend.Address, late ? $"drain timeout, {inFlight} request(s) still in flight" : "idle", result.Message);
                        if (result.Outcome is not ChangeOutcome.Failed)
                        {
                            return;
                        }

                        wait = Retry; // the registry could not store it (a full disk, say): try again, less often
                    }
                }
                catch (Exception e) when (e is not OutOfMemoryException && !_stopping.IsCancellationRequested)
                {
                    LogWatchFailed(logger, backend.Address, e); // and watch on: the backend still has to go
                    wait = Retry;
                }

                await Task.Delay(wait, time, _stopping.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        finally
        {
            lock (_sync)
            {
                _watching.Remove(backend.Address);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        registry.Published -= Follow;
        Task[] watching;
        lock (_sync)
        {
            _stopping.Cancel();
            watching = [.. _watching.Values];
        }

        await Task.WhenAll(watching).ConfigureAwait(false);
        _stopping.Dispose();
    }

    [LoggerMessage(EventId = 3004, Level = LogLevel.Information, Message = "Drained {Address} ({Why}): {Result}")]
    private static partial void LogDrained(ILogger logger, string address, string why, string result);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Error, Message = "Watching the drain of {Address} failed unexpectedly; watching on")]
    private static partial void LogWatchFailed(ILogger logger, string address, Exception exception);
}
