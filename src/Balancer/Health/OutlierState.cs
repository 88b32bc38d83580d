using Balancer.Configuration;

namespace Balancer.Health;

/// <summary>
/// Passive health of one backend, from the outcomes of real requests. <c>consecutive-failures</c> failures in a row
/// eject it for <c>base-ejection-time</c> × the number of times it has been ejected (at most <c>max-ejection-time</c>).
/// It comes back on probation: one failure ejects it again at once, until it has answered as many requests in a row
/// as a streak of failures would need. A spell as long as <c>max-ejection-time</c> without trouble forgets past
/// ejections. Pure: times are passed in.
/// </summary>
public sealed class OutlierState
{
    private int _streak;
    private bool _probation;
    private int _probationSuccesses;
    private DateTimeOffset? _returnedAt;

    public int Ejections { get; private set; }

    public bool Ejected { get; private set; }

    public DateTimeOffset? EjectedUntil { get; private set; }

    /// <summary>
    /// The failure that ejected the backend was a connection that could not be made or was lost: something a passing
    /// probe (a connect, or a request on a fresh connection) shows to be over.
    /// </summary>
    public bool EjectedForConnection { get; private set; }

    /// <summary>
    /// Records a failed request; when that ejects the backend, returns for how long. With <paramref name="mayEject"/>
    /// false (the pool has already lost its allowed share), the streak is kept but nothing happens.
    /// </summary>
    public TimeSpan? RecordFailure(OutlierDetectionOptions options, DateTimeOffset now, bool mayEject = true, bool connection = false)
    {
        if (Ejected)
        {
            return null; // requests that were in flight when it was ejected
        }

        _streak++;
        if (_streak < (_probation ? 1 : options.ConsecutiveFailures) || !mayEject)
        {
            return null;
        }

        Ejections++;
        _streak = 0;
        _probation = false;
        Ejected = true;
        EjectedForConnection = connection;
        var duration = TimeSpan.FromTicks(Math.Min(options.BaseEjectionTime.Ticks * Ejections, options.MaxEjectionTime.Ticks));
        EjectedUntil = now + duration;
        return duration;
    }

    /// <summary>
    /// A success would change nothing (no failures in a row, no probation, no past ejections to forget): the request path
    /// checks this without a lock, and takes one only when there is something to record.
    /// </summary>
    public bool Quiet => Volatile.Read(ref _streak) == 0 && !Volatile.Read(ref _probation) && Ejections == 0 && !Ejected; // the first read orders the rest

    public void RecordSuccess(OutlierDetectionOptions options, DateTimeOffset now)
    {
        if (Ejected)
        {
            return;
        }

        _streak = 0;
        if (_probation && ++_probationSuccesses >= options.ConsecutiveFailures)
        {
            _probation = false;
        }

        if (!_probation && Ejections > 0 && _returnedAt is { } returned && now - returned >= options.MaxEjectionTime)
        {
            Ejections = 0;
        }
    }

    /// <summary>The ejection is over: back in the pool, on probation.</summary>
    public void Return(DateTimeOffset now)
    {
        Ejected = false;
        EjectedUntil = null;
        _probation = true;
        _probationSuccesses = 0;
        _streak = 0;
        _returnedAt = now;
    }
}
