namespace Testbed.Load;

/// <summary>
/// Latencies in fixed memory, as HdrHistogram keeps them: exact below 128 µs, then 64 buckets per power of two, so
/// any percentile read back is within 1.6% of the true value (and never above the maximum seen). Thread-safe to record
/// into; mergeable.
/// </summary>
public sealed class LatencyHistogram
{
    private const int Exact = 128;
    private const int SubBuckets = 64;
    private const int Powers = 40; // up to 2^46 µs: longer than any run
    private readonly long[] _counts = new long[Exact + (Powers * SubBuckets)];
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
        var microseconds = Math.Max(0, (long)latency.TotalMicroseconds);
        Interlocked.Increment(ref _counts[IndexOf(microseconds)]);
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
    public TimeSpan Percentile(double percentile)
    {
        var count = Count;
        if (count == 0)
        {
            return TimeSpan.Zero;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(percentile / 100.0 * count));
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += Interlocked.Read(ref _counts[i]);
            if (seen >= rank)
            {
                return TimeSpan.FromMicroseconds(Math.Min(UpperBound(i), Interlocked.Read(ref _maxMicroseconds)));
            }
        }

        return Max;
    }

    /// <summary>Counts in coarse ranges for display: up to 1 ms, 2 ms, 5 ms, 10 ms, ... and the rest.</summary>
    public IReadOnlyList<(TimeSpan UpTo, long Count)> Ranges()
    {
        var edges = new List<TimeSpan>();
        for (var decade = 1.0; decade <= 100_000; decade *= 10)
        {
            edges.AddRange([TimeSpan.FromMilliseconds(decade), TimeSpan.FromMilliseconds(2 * decade), TimeSpan.FromMilliseconds(5 * decade)]);
        }

        var ranges = new List<(TimeSpan, long)>();
        var index = 0;
        foreach (var edge in edges)
        {
            long inRange = 0;
            for (; index < _counts.Length && UpperBound(index) < (long)edge.TotalMicroseconds; index++)
            {
                inRange += Interlocked.Read(ref _counts[index]);
            }

            ranges.Add((edge, inRange));
            if (edge >= Max)
            {
                break;
            }
        }

        return ranges.SkipWhile(r => r.Item2 == 0).ToList();
    }

    public void Add(LatencyHistogram other)
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            Interlocked.Add(ref _counts[i], Interlocked.Read(ref other._counts[i]));
        }

        Interlocked.Add(ref _count, other.Count);
        Interlocked.Add(ref _sumMicroseconds, Interlocked.Read(ref other._sumMicroseconds));
        if (other.Count > 0)
        {
            _maxMicroseconds = Math.Max(_maxMicroseconds, other._maxMicroseconds);
            _minMicroseconds = Math.Min(_minMicroseconds, other._minMicroseconds);
        }
    }

    private static int IndexOf(long microseconds)
    {
        if (microseconds < Exact)
        {
            return (int)microseconds;
        }

        var power = Math.Min(63 - (int)long.LeadingZeroCount(microseconds), 6 + Powers); // 2^power <= value
        var sub = (int)(microseconds >> (power - 6)) - SubBuckets; // 0..63
        return Exact + ((power - 7) * SubBuckets) + Math.Min(sub, SubBuckets - 1);
    }

    /// <summary>The largest value that falls in bucket <paramref name="index"/>.</summary>
    private static long UpperBound(int index)
    {
        if (index < Exact)
        {
            return index;
        }

        var power = ((index - Exact) / SubBuckets) + 7;
        var sub = (index - Exact) % SubBuckets;
        return ((long)(SubBuckets + sub + 1) << (power - 6)) - 1;
    }
}
