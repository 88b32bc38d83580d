using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Model;

namespace Balancer.Observability;

/// <summary>
/// Running totals for the stats endpoints and the dashboard: requests as clients saw them (one per request, however
/// many tries), and tries as each backend saw them (a retried request counts a failure against the backend that
/// failed it and a request for the one that answered). Lock-free counters; a backend's totals live as long as YARP's
/// state for it.
/// </summary>
internal sealed class TrafficStats(TimeProvider time)
{
    private readonly ConditionalWeakTable<DestinationState, BackendTraffic> _backends = [];

    private readonly long _started = time.GetTimestamp();
    private long _requests;
    private long _failed;
    private long _retries;
    private long _microseconds;

    public TimeSpan Uptime => time.GetElapsedTime(_started);

    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Requests answered 5xx (by a backend or by the balancer) or cut off.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    public long Retries => Interlocked.Read(ref _retries);

    public double AverageMilliseconds => Requests == 0 ? 0 : Interlocked.Read(ref _microseconds) / 1000.0 / Requests;

    public void Request(bool failed, int retries, TimeSpan duration)
    {
        Interlocked.Increment(ref _requests);
        if (failed)
        {
            Interlocked.Increment(ref _failed);
        }

        if (retries > 0)
        {
            Interlocked.Add(ref _retries, retries);
        }

        Interlocked.Add(ref _microseconds, (long)duration.TotalMicroseconds);
    }

    public void Try(DestinationState destination, bool failed, TimeSpan duration)
    {
        if (!_backends.TryGetValue(destination, out var traffic))
        {
            traffic = _backends.GetValue(destination, static _ => new BackendTraffic());
        }

        traffic.Record(failed, duration);
    }

    public BackendTraffic? Of(DestinationState destination) => _backends.TryGetValue(destination, out var traffic) ? traffic : null;
}

/// <summary>One backend's tries: counts, failures, and their durations in <see cref="LatencyBuckets"/>.</summary>
internal sealed class BackendTraffic
{
    private readonly long[] _buckets = new long[LatencyBuckets.Count];
    private long _requests;
    private long _failures;
    private long _microseconds;

    public long Requests => Interlocked.Read(ref _requests);

    public long Failures => Interlocked.Read(ref _failures);

    public double AverageMilliseconds => Requests == 0 ? 0 : Interlocked.Read(ref _microseconds) / 1000.0 / Requests;

    /// <summary>How many tries took up to each of <see cref="LatencyBuckets.UpperBoundsMs"/> (counts, not cumulative).</summary>
    public long[] Buckets() => [.. Enumerable.Range(0, _buckets.Length).Select(i => Interlocked.Read(ref _buckets[i]))];

    public void Record(bool failed, TimeSpan duration)
    {
        Interlocked.Increment(ref _requests);
        if (failed)
        {
            Interlocked.Increment(ref _failures);
        }

        Interlocked.Add(ref _microseconds, (long)duration.TotalMicroseconds);
        Interlocked.Increment(ref _buckets[LatencyBuckets.Index(duration)]);
    }
}

/// <summary>
/// Log-scaled duration buckets, four per doubling from 50 µs to about 110 s (and one beyond): fine enough for a
/// dashboard's p50 and p99 (within 19%) from counts alone.
/// </summary>
internal static class LatencyBuckets
{
    public const int Count = 86;
    private const double FirstMs = 0.05;

    public static readonly IReadOnlyList<double> UpperBoundsMs =
        [.. Enumerable.Range(0, Count - 1).Select(i => Math.Round(FirstMs * Math.Pow(2, i / 4.0), 4)), double.PositiveInfinity];

    public static int Index(TimeSpan duration)
    {
        var ms = duration.TotalMilliseconds;
        if (ms <= FirstMs)
        {
            return 0;
        }

        var index = (int)Math.Ceiling(4 * Math.Log2(ms / FirstMs));
        return Math.Min(index, Count - 1);
    }
}
