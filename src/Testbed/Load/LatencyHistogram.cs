using HdrHistogram;

namespace Testbed.Load;

/// <summary>
/// Latencies in fixed memory: an HdrHistogram of microseconds (three significant digits, so any percentile read back
/// is within 0.1% of the true value), plus the exact minimum, maximum and sum; a percentile is never reported above the
/// maximum seen. Thread-safe to record into; mergeable.
/// </summary>
public sealed class LatencyHistogram
{
    private const long Highest = 24L * 3600 * 1_000_000; // a day, in µs: longer than any run
    private readonly LongConcurrentHistogram _histogram = new(1, Highest, 3);
    private long _count;
    private long _sumMicroseconds;
    private long _maxMicroseconds;
    private long _minMicroseconds = long.MaxValue;

    public long Count => Interlocked.Read(ref _count);

    public TimeSpan Max => Count == 0 ? TimeSpan.Zero : TimeSpan.FromMicroseconds(Interlocked.Read(ref _maxMicroseconds));

    public TimeSpan Min => Count == 0 ? TimeSpan.Zero : TimeSpan.FromMicroseconds(Interlocked.Read(ref _minMicroseconds));

    public TimeSpan Mean => Count == 0 ? TimeSpan.Zero : TimeSpan.FromMicroseconds(Interlocked.Read(ref _sumMicroseconds) / (double)Count);

    public void Record(TimeSpan latency)
    {
        var microseconds = Math.Clamp((long)latency.TotalMicroseconds, 0, Highest);
        _histogram.RecordValue(microseconds);
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sumMicroseconds, microseconds);
        long seen;
        while (microseconds > (seen = Interlocked.Read(ref _maxMicroseconds)) && Interlocked.CompareExchange(ref _maxMicroseconds, microseconds, seen) != seen)
        {
        }

        while (microseconds < (seen = Interlocked.Read(ref _minMicroseconds)) && Interlocked.CompareExchange(ref _minMicroseconds, microseconds, seen) != seen)
        {
        }
    }

    /// <summary>The latency at or below which <paramref name="percentile"/> percent of the recorded ones fall (0 if none).</summary>
    public TimeSpan Percentile(double percentile) =>
        Count == 0 ? TimeSpan.Zero : TimeSpan.FromMicroseconds(Math.Min(_histogram.GetValueAtPercentile(percentile), Interlocked.Read(ref _maxMicroseconds)));

    /// <summary>Counts in coarse ranges for display: up to 1 ms, 2 ms, 5 ms, 10 ms, ... and the rest.</summary>
    public IReadOnlyList<(TimeSpan UpTo, long Count)> Ranges()
    {
        if (Count == 0)
        {
            return [];
        }

        var edges = new List<TimeSpan>();
        for (var decade = 1.0; decade <= 100_000; decade *= 10)
        {
            edges.AddRange([TimeSpan.FromMilliseconds(decade), TimeSpan.FromMilliseconds(2 * decade), TimeSpan.FromMilliseconds(5 * decade)]);
        }

        // The last range shown is the first that reaches past the maximum; anything beyond the edges is counted in it.
        var last = edges.FindIndex(e => e > Max);
        last = last < 0 ? edges.Count - 1 : last;
        var counts = new long[last + 1];
        foreach (var value in _histogram.RecordedValues())
        {
            var at = TimeSpan.FromMicroseconds(_histogram.LowestEquivalentValue(value.ValueIteratedTo));
            var edge = edges.FindIndex(e => at < e);
            counts[edge < 0 ? last : Math.Min(edge, last)] += value.CountAtValueIteratedTo;
        }

        return counts.Select((count, i) => (edges[i], count)).SkipWhile(r => r.count == 0).ToList();
    }

    public void Add(LatencyHistogram other)
    {
        if (other.Count == 0)
        {
            return;
        }

        _histogram.Add(other._histogram);
        Interlocked.Add(ref _count, other.Count);
        Interlocked.Add(ref _sumMicroseconds, Interlocked.Read(ref other._sumMicroseconds));
        _maxMicroseconds = Math.Max(_maxMicroseconds, other._maxMicroseconds);
        _minMicroseconds = Math.Min(_minMicroseconds, other._minMicroseconds);
    }
}
