namespace Testbed.Load;

/// <summary>A moment the testbed itself could not keep time: its process or machine paused for <see cref="Length"/>.</summary>
/// <param name="At">When the pause began, from the start of the measured load (negative during warm-up).</param>
public sealed record Stall(TimeSpan At, TimeSpan Length);

/// <summary>
/// Notices when the process running the load stops keeping time (a garbage collection, a starved thread pool, a busy
/// machine): a heartbeat expected every <paramref name="beat"/> that arrives more than <paramref name="threshold"/>
/// late is a stall. Latencies measured across a stall include the pause, whoever caused it, so reports name them.
/// </summary>
public sealed class StallWatch(TimeProvider time, long origin, TimeSpan beat, TimeSpan threshold)
{
    private readonly List<Stall> _stalls = [];
    private readonly long _origin = origin;
    private long _last = origin;

    /// <summary>The stalls seen so far, in time order.</summary>
    public IReadOnlyList<Stall> Stalls
    {
        get
        {
            lock (_stalls)
            {
                return [.. _stalls];
            }
        }
    }

    /// <summary>A heartbeat, at <paramref name="timestamp"/> (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public void Observe(long timestamp)
    {
        var late = time.GetElapsedTime(_last, timestamp) - beat;
        if (late > threshold)
        {
            lock (_stalls)
            {
                _stalls.Add(new Stall(time.GetElapsedTime(_origin, _last), late));
            }
        }

        _last = timestamp;
    }

    /// <summary>Beats until <paramref name="stop"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        _last = time.GetTimestamp();
        try
        {
            while (true)
            {
                await Task.Delay(beat, time, stop).ConfigureAwait(false);
                Observe(time.GetTimestamp());
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
