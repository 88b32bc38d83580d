using System.Collections.Concurrent;
using Balancer.Configuration;
using Balancer.Observability;
using Balancer.Registry;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Active health checks: one loop per backend of every pool that has them on. A backend's first probe is sent the
/// moment it appears, and the next only after the previous answered or timed out (probes never overlap), then every
/// <c>interval</c>. State changes (see <see cref="HealthState"/>) are handed to YARP, which then stops or resumes
/// sending the backend traffic, and logged with their reason. A backend that comes back up is also released from
/// any outlier ejection its outage earned it.
/// </summary>
public sealed partial class ActiveHealthChecker : IAsyncDisposable
{
    private readonly BackendRegistry _registry;
    private readonly IProxyStateLookup _proxy;
    private readonly IDestinationsRefresh _destinations;
    private readonly OutlierDetector _outliers;
    private readonly TimeProvider _time;
    private readonly ILogger<ActiveHealthChecker> _logger;
    private readonly EventFeed? _events;
    private readonly Prober _prober;
    private readonly ConcurrentDictionary<(string Pool, string Address), Loop> _loops = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _sync = new();

    internal ActiveHealthChecker(BackendRegistry registry, IProxyStateLookup proxy, IDestinationsRefresh destinations, OutlierDetector outliers, TimeProvider time, ILogger<ActiveHealthChecker> logger, EventFeed? events = null)
    {
        _registry = registry;
        _proxy = proxy;
        _destinations = destinations;
        _outliers = outliers;
        _time = time;
        _logger = logger;
        _events = events;
        _prober = new Prober(time);
    }

    /// <summary>The active health of a backend, if its pool checks it.</summary>
    public HealthState? StateOf(string pool, string address) => _loops.TryGetValue((pool, address), out var loop) ? loop.State : null;

    /// <summary>
    /// The answer to a change, once a backend it added has had its first probe: a success answer always means stored
    /// and live; for a new backend in a pool with checks it also says whether the backend takes traffic yet.
    /// </summary>
    public async Task<string> AnswerAsync(ChangeResult result, CancellationToken cancellationToken)
    {
        if (!result.Created || result.Backend is not { } backend || await FirstProbeAsync(backend.Pool, backend.Address, cancellationToken).ConfigureAwait(false) is not { } state)
        {
            return result.Message;
        }

        return state.Health == BackendHealth.Healthy
            ? $"{result.Message}; healthy ({state.LastProbe})"
            : $"{result.Message}; no traffic until a probe passes ({state.LastProbe ?? "no answer yet"})";
    }

    /// <summary>
    /// Waits for the first probe of a backend that has just joined (a registration), so that its answer can say whether
    /// it takes traffic: at most the probe timeout and a little. Null when its pool does not check it.
    /// </summary>
    public async Task<HealthState?> FirstProbeAsync(string pool, string address, CancellationToken cancellationToken)
    {
        if (!_loops.TryGetValue((pool, address), out var loop))
        {
            return null;
        }

        try
        {
            return await loop.FirstProbe.Task.WaitAsync(loop.Check.Timeout + TimeSpan.FromSeconds(1), _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return loop.State;
        }
    }

    /// <summary>
    /// Starts probing every backend and waits until each is settled: up, or refused or answered wrongly, or timed
    /// out <c>fall</c> times (a single timeout may be a cold start). So the balancer neither opens its doors before
    /// it knows which backends are up nor waits long for dead ones: at most <c>fall</c> probe timeouts, the intervals
    /// between them, and a second.
    /// </summary>
    public async Task StartAsync()
    {
        _registry.Published += Follow;
        Follow(_registry.Current);
        var settled = _loops.Values.Select(l => l.Settled.Task).ToList();
        // Long enough for `fall` probes that time out, each after the interval (and its jitter) that follows the last:
        // on a busy machine a first probe may time out where the second passes.
        var longest = _registry.Current.Pools.Where(p => p.Settings.HealthChecks.Enabled).Select(p => p.Settings.HealthChecks)
            .Select(c => (c.Fall * c.Timeout) + (Math.Max(0, c.Fall - 1) * c.Interval * 1.1)).DefaultIfEmpty(TimeSpan.Zero).Max();
        await Task.WhenAny(Task.WhenAll(settled), Task.Delay(longest + TimeSpan.FromSeconds(1), _time)).ConfigureAwait(false);
    }

    /// <summary>Starts loops for backends that appeared and stops those of backends that left.</summary>
    private void Follow(RoutingSnapshot snapshot)
    {
        lock (_sync)
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }

            var wanted = snapshot.Pools
                .Where(p => p.Settings.HealthChecks.Enabled)
                .SelectMany(p => p.Backends.Select(b => (Key: (p.Name, b.Address), Check: p.Settings.HealthChecks)))
                .ToDictionary(x => x.Key, x => x.Check);
            foreach (var (key, loop) in _loops)
            {
                if (!wanted.TryGetValue(key, out var check) || check.Rise != loop.Check.Rise || check.Fall != loop.Check.Fall)
                {
                    // Gone, or (after a reload) counting to other thresholds: a new loop, from a new state.
                    loop.Stop();
                    _loops.TryRemove(key, out _);
                }
                else
                {
                    loop.Check = check; // a reload's probe, interval or timeout, from the next probe on
                }
            }

            foreach (var (key, check) in wanted)
            {
                if (!_loops.ContainsKey(key))
                {
                    var loop = new Loop(check, CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token));
                    _loops[key] = loop;
                    loop.Run = Task.Run(() => RunAsync(key.Item1, key.Item2, loop));
                }
            }
        }
    }

    private async Task RunAsync(string pool, string address, Loop loop)
    {
        var backend = new Uri(address);
        var token = loop.Cancellation.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                try
                {
                    var result = await _prober.ProbeAsync(backend, loop.Check, token).ConfigureAwait(false);
                    if (token.IsCancellationRequested)
                    {
                        break;
                    }

                    var changed = loop.State.Record(result.Success, result.Outcome, _time.GetUtcNow());
                    if (changed)
                    {
                        await ApplyAsync(pool, address, loop.State).ConfigureAwait(false);
                    }

                    if (result.Success && _proxy.TryGetCluster(pool, out var cluster) && cluster.Destinations.TryGetValue(address, out var destination))
                    {
                        _outliers.Pardon(cluster, destination, recovered: changed && loop.State.Health == BackendHealth.Healthy);
                    }

                    loop.FirstProbe.TrySetResult(loop.State);

                    if (loop.State.Settled || !(result.Success || result.TimedOut))
                    {
                        loop.Settled.TrySetResult();
                    }
                }
                catch (Exception e) when (e is not OutOfMemoryException && !token.IsCancellationRequested)
                {
                    // One bad round must not end the checks of this backend: say why, and probe again next interval.
                    LogProbeLoopFailed(_logger, address, pool, e);
                }

                // ±10%, so that backends that appeared together (all of them, at start-up) are not probed in step forever.
                await Task.Delay(loop.Check.Interval * (0.9 + (0.2 * Random.Shared.NextDouble())), _time, token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        finally
        {
            loop.Settled.TrySetResult();
            loop.FirstProbe.TrySetResult(loop.State);
        }
    }

    private async Task ApplyAsync(string pool, string address, HealthState state)
    {
        var health = state.Health == BackendHealth.Healthy ? DestinationHealth.Healthy : DestinationHealth.Unhealthy;
        if (state.Health == BackendHealth.Healthy)
        {
            LogUp(_logger, address, pool, state.Reason ?? "");
        }
        else
        {
            LogDown(_logger, address, pool, state.Reason ?? "");
        }

        if (_proxy.TryGetCluster(pool, out var cluster) && cluster.Destinations.TryGetValue(address, out var destination))
        {
            var before = destination.Health.Active;
            destination.Health.Active = health;
            if (AvailableDestinationsPolicy.ActiveChangeMatters(before, health)) // a storm of dead registrations rebuilds nothing
            {
                await _destinations.RefreshAsync(cluster).ConfigureAwait(false); // visible to routing before anyone is told
            }
        }

        _events?.Publish(state.Health == BackendHealth.Healthy ? EventKinds.Up : EventKinds.Down, pool, address, state.Reason ?? "");
    }

    public async ValueTask DisposeAsync()
    {
        _registry.Published -= Follow;
        List<Task> runs;
        lock (_sync)
        {
            _stopping.Cancel();
            runs = [.. _loops.Values.Select(l => l.Run)];
        }

        await Task.WhenAll(runs).ConfigureAwait(false);
        foreach (var loop in _loops.Values)
        {
            loop.Cancellation.Dispose();
        }

        _prober.Dispose();
        _stopping.Dispose();
    }

    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "Backend {Address} in pool {Pool} is down: {Reason}")]
    private static partial void LogDown(ILogger logger, string address, string pool, string reason);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "Backend {Address} in pool {Pool} is up: {Reason}")]
    private static partial void LogUp(ILogger logger, string address, string pool, string reason);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Error, Message = "Health check of {Address} in pool {Pool} failed unexpectedly; it goes on at the next interval")]
    private static partial void LogProbeLoopFailed(ILogger logger, string address, string pool, Exception exception);

    private sealed class Loop(HealthCheckOptions check, CancellationTokenSource cancellation)
    {
        public HealthCheckOptions Check { get => Volatile.Read(ref _check); set => Volatile.Write(ref _check, value); }
        private HealthCheckOptions _check = check;
        public CancellationTokenSource Cancellation { get; } = cancellation;
        public HealthState State { get; } = new(check.Rise, check.Fall);
        public TaskCompletionSource Settled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The first probe's outcome, whatever it was.</summary>
        public TaskCompletionSource<HealthState> FirstProbe { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task Run { get; set; } = Task.CompletedTask;

        public void Stop() => Cancellation.Cancel();
    }
}
