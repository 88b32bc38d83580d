namespace Balancer.Health;

/// <summary>What the active health checks know of a backend.</summary>
public enum BackendHealth
{
    /// <summary>Not probed yet. With active checks on, such a backend takes no traffic: its first probe is sent at once.</summary>
    Unknown,

    Healthy,

    Unhealthy,
}

/// <summary>
/// Hysteresis for active probes. A backend's first probe decides its state; after that, <c>fall</c> failures in a
/// row take a healthy backend down and <c>rise</c> successes in a row bring an unhealthy one back. A backend that has
/// never been healthy (cold, still booting) needs only one success: <c>rise</c> guards against readmitting a backend
/// that went down, and a new one has no such history. Pure: no I/O, no clock.
/// </summary>
public sealed class HealthState(int rise, int fall)
{
    private int _successes;
    private int _failures;
    private bool _everHealthy;

    public BackendHealth Health { get; private set; } = BackendHealth.Unknown;

    /// <summary>Why the state is what it is: the last probe that changed it.</summary>
    public string? Reason { get; private set; }

    /// <summary>When the state last changed.</summary>
    public DateTimeOffset? Since { get; private set; }

    /// <summary>
    /// Whether the probes have had their say: the backend is healthy, or has failed <c>fall</c> probes in a row. One
    /// failed first probe is not enough, as it may only have met a cold start.
    /// </summary>
    public bool Settled => Health == BackendHealth.Healthy || _failures >= fall;

    /// <summary>The outcome of the latest probe, whatever the state.</summary>
    public string? LastProbe { get; private set; }

    /// <summary>When the latest probe was answered (or gave up).</summary>
    public DateTimeOffset? LastProbeAt { get; private set; }

    /// <summary>Records one probe; true when the state changed.</summary>
    public bool Record(bool success, string outcome, DateTimeOffset now)
    {
        LastProbe = outcome;
        LastProbeAt = now;
        _successes = success ? _successes + 1 : 0;
        _failures = success ? 0 : _failures + 1;
        var next = Health switch
        {
            BackendHealth.Unknown => success ? BackendHealth.Healthy : BackendHealth.Unhealthy,
            BackendHealth.Healthy when _failures >= fall => BackendHealth.Unhealthy,
            BackendHealth.Unhealthy when _successes >= (_everHealthy ? rise : 1) => BackendHealth.Healthy,
            _ => Health,
        };
        if (next == Health)
        {
            return false;
        }

        Reason = Health == BackendHealth.Unknown || (success && !_everHealthy) ? outcome
            : success ? $"{outcome} ({Count(_successes, "success", "successes")} in a row)"
            : $"{outcome} ({Count(_failures, "failure", "failures")} in a row)";
        Health = next;
        Since = now;
        _everHealthy |= next == BackendHealth.Healthy;
        return true;
    }

    private static string Count(int n, string one, string many) => $"{n} {(n == 1 ? one : many)}";
}
