using System.Runtime.CompilerServices;
using Balancer.Configuration;
using Balancer.Observability;
using Balancer.Proxy;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Passive health (outlier detection), as YARP's passive health-check policy: every proxied try counts for or
/// against its backend (<see cref="OutlierState"/>). Failures are transport errors and timeouts (not the client's
/// own aborts) and 5xx answers. An ejection takes the backend out of the pool until a timer on the injected clock
/// brings it back, and never takes out more than <c>max-ejection-percent</c> of a pool. Disposed with the balancer,
/// it cancels the timers of ejections still running, so none fires into a stopped balancer.
/// </summary>
internal sealed partial class OutlierDetector(BalancerOptions options, IClusterDestinationsUpdater updater, TimeProvider time, ILogger<OutlierDetector> logger, EventFeed? events = null)
    : IPassiveHealthCheckPolicy, IDisposable
{
    public const string PolicyName = "lb-outliers";

    private static readonly ConditionalWeakTable<DestinationState, Tracked> States = [];
    private static readonly ConditionalWeakTable<ClusterState, object> PoolLocks = [];

    /// <summary>The ejections this detector has running, to cancel when it is disposed.</summary>
    private readonly HashSet<Tracked> _ejected = [];
    private bool _disposed;

    public string Name => PolicyName;

    /// <summary>The passive state of a backend, if any request has reached it.</summary>
    public static OutlierState? StateOf(DestinationState destination) => States.TryGetValue(destination, out var tracked) ? tracked.State : null;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        var settings = options.OutlierDetection;
        if (!settings.Enabled)
        {
            return;
        }

        var (failure, connection) = Failure(context);
        var tracked = States.GetValue(destination, static _ => new Tracked());
        if (failure is null)
        {
            if (tracked.State.Quiet)
            {
                return; // the common case: a healthy backend answered; nothing to reset
            }

            lock (tracked)
            {
                tracked.State.RecordSuccess(settings, time.GetUtcNow());
            }

            return;
        }

        // Whether this failure may eject, and the ejection itself, are one step for the whole pool: two backends failing
        // at once must not both see room under max-ejection-percent. Every change of a backend's passive health in the
        // pool is made under this lock.
        TimeSpan? ejection;
        lock (PoolLock(cluster))
        {
            lock (tracked)
            {
                ejection = tracked.State.RecordFailure(settings, time.GetUtcNow(), MayEject(cluster, settings), connection);
            }

            if (ejection is not null)
            {
                destination.Health.Passive = DestinationHealth.Unhealthy;
            }
        }

        if (ejection is { } duration)
        {
            Eject(cluster, destination, tracked, duration, failure);
        }
    }

    private static object PoolLock(ClusterState cluster) => PoolLocks.GetValue(cluster, static _ => new object());

    /// <summary>What went wrong with this try, or null if it went well; and whether it was the connection that failed.</summary>
    private static (string? Reason, bool Connection) Failure(HttpContext context)
    {
        if (context.Features.Get<AttemptFeature>()?.TimedOut == true)
        {
            return ("no response headers in time", false);
        }

        var feature = context.Features.Get<IForwarderErrorFeature>();
        var error = feature?.Error ?? ForwarderError.None;
        return error switch
        {
            ForwarderError.None when context.Response.StatusCode >= 500 => ($"answered {context.Response.StatusCode}", false),
            ForwarderError.None => (null, false),
            ForwarderError.RequestTimedOut => ("timed out", false),
            ForwarderError.Request when ForwarderFailures.IsConnectFailure(feature) => ("could not connect", true),
            ForwarderError.Request or ForwarderError.ResponseHeaders or ForwarderError.ResponseBodyDestination
                or ForwarderError.RequestBodyDestination or ForwarderError.UpgradeResponseDestination => ($"transport error ({error})", false),
            _ => (null, false), // the client's doing (aborted, bad body), not the backend's
        };
    }

    private static bool MayEject(ClusterState cluster, OutlierDetectionOptions settings)
    {
        var all = cluster.Destinations.Values;
        var ejected = all.Count(d => d.Health.Passive == DestinationHealth.Unhealthy);
        return (ejected + 1) * 100 <= settings.MaxEjectionPercent * all.Count;
    }

    private void Eject(ClusterState cluster, DestinationState destination, Tracked tracked, TimeSpan duration, string reason)
    {
        LogEjected(logger, destination.Model.Config.Address, cluster.ClusterId, duration.TotalSeconds, reason);
        events?.Publish(EventKinds.Ejected, cluster.ClusterId, destination.Model.Config.Address, $"{reason}; ejected for {ValueParsers.FormatDuration(duration)}");
        updater.UpdateAvailableDestinations(cluster);
        lock (_ejected)
        {
            if (_disposed)
            {
                return;
            }

            _ejected.Add(tracked);
            lock (tracked)
            {
                tracked.Timer?.Dispose();
                tracked.Timer = time.CreateTimer(_ => ReturnFromTimer(cluster, destination, tracked), null, duration, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>
    /// An active probe passed. It ends an ejection now rather than when its timer runs out (as Envoy's
    /// <c>successful_active_health_check_uneject_host</c>) when it vouches for what caused it: always after
    /// <paramref name="recovered"/> (the probes saw the backend go down and come back), otherwise only for an ejection that
    /// connection failures caused, since the probe has just connected. An ejection for 5xx answers or timeouts runs its
    /// course: a backend that answers its probes can still hang or fail real requests. It comes back on probation.
    /// </summary>
    public void Pardon(ClusterState cluster, DestinationState destination, bool recovered)
    {
        if (States.TryGetValue(destination, out var tracked) && tracked.State.Ejected && (recovered || tracked.State.EjectedForConnection))
        {
            Return(cluster, destination, tracked);
        }
    }

    /// <summary>A timer callback: an exception here would end the process, so it is logged instead.</summary>
    private void ReturnFromTimer(ClusterState cluster, DestinationState destination, Tracked tracked)
    {
        try
        {
            Return(cluster, destination, tracked);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogReturnFailed(logger, destination.Model.Config.Address, cluster.ClusterId, e);
        }
    }

    private void Return(ClusterState cluster, DestinationState destination, Tracked tracked)
    {
        lock (_ejected)
        {
            if (_disposed)
            {
                return;
            }

            _ejected.Remove(tracked);
        }

        lock (PoolLock(cluster))
        {
            lock (tracked)
            {
                tracked.State.Return(time.GetUtcNow());
                tracked.Timer?.Dispose();
                tracked.Timer = null;
            }

            destination.Health.Passive = DestinationHealth.Unknown;
        }

        LogReturned(logger, destination.Model.Config.Address, cluster.ClusterId);
        events?.Publish(EventKinds.Returned, cluster.ClusterId, destination.Model.Config.Address, "back from ejection, on probation");
        updater.UpdateAvailableDestinations(cluster);
    }

    public void Dispose()
    {
        lock (_ejected)
        {
            _disposed = true;
            foreach (var tracked in _ejected)
            {
                lock (tracked)
                {
                    tracked.Timer?.Dispose();
                    tracked.Timer = null;
                }
            }

            _ejected.Clear();
        }
    }

    [LoggerMessage(EventId = 5101, Level = LogLevel.Warning, Message = "Backend {Address} in pool {Pool} ejected for {Seconds}s: {Reason}")]
    private static partial void LogEjected(ILogger logger, string address, string pool, double seconds, string reason);

    [LoggerMessage(EventId = 5102, Level = LogLevel.Information, Message = "Backend {Address} in pool {Pool} is back from ejection, on probation")]
    private static partial void LogReturned(ILogger logger, string address, string pool);

    [LoggerMessage(EventId = 5103, Level = LogLevel.Error, Message = "Ending the ejection of {Address} in pool {Pool} failed unexpectedly")]
    private static partial void LogReturnFailed(ILogger logger, string address, string pool, Exception exception);

    private sealed class Tracked
    {
        public OutlierState State { get; } = new();
        public ITimer? Timer { get; set; }
    }
}
