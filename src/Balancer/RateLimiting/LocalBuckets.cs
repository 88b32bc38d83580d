using System.Collections.Concurrent;

namespace Balancer.RateLimiting;

/// <summary>
/// One pool's token buckets in this process (<see cref="Gcra"/>), one per <see cref="BucketKey"/>: a lock-free
/// compare-and-swap on one number per request, nothing allocated for a client already known. Memory follows the
/// clients being limited now: a bucket that has filled up again is the same as none, and a sweep every
/// <see cref="SweepEvery"/> drops those. At most <c>maxClients</c> buckets are kept; when that many clients are all
/// part-way through their burst, a new client is refused (429) until some fill up, as nginx's <c>limit_req</c> does
/// when its zone is full: the table stays bounded under a flood of distinct clients.
/// </summary>
internal sealed class LocalBuckets : IDisposable
{
    public static readonly TimeSpan SweepEvery = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<BucketKey, Bucket> _buckets = new();
    private readonly TimeProvider _time;
    private readonly long _interval;
    private readonly int _burst;
    private readonly int _maxClients;
    private readonly ITimer _sweeper;
    private readonly long _start;
    private int _count;
    private long _lastFullSweep = long.MinValue;

    public LocalBuckets(TimeSpan interval, int burst, int maxClients, TimeProvider time)
    {
        _time = time;
        _start = time.GetTimestamp();
        _interval = Math.Max(1, interval.Ticks);
        _burst = burst;
        _maxClients = maxClients;
        _sweeper = time.CreateTimer(_ => Sweep(), null, SweepEvery, SweepEvery);
    }

    /// <summary>Buckets kept now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Takes a token from <paramref name="key"/>'s bucket, if it has one.</summary>
    public Gcra.Decision Take(BucketKey key)
    {
        var now = Now();
        if (!_buckets.TryGetValue(key, out var bucket))
        {
            if (Volatile.Read(ref _count) >= _maxClients && !SweepWhenFull(now))
            {
                return new Gcra.Decision(false, 0, _interval, 0);
            }

            bucket = new Bucket();
            if (_buckets.TryAdd(key, bucket))
            {
                Interlocked.Increment(ref _count);
            }
            else
            {
                bucket = _buckets[key];
            }
        }

        while (true)
        {
            var tat = Volatile.Read(ref bucket.Tat);
            var decision = Gcra.Take(tat, now, _interval, _burst);
            if (!decision.Allowed || Interlocked.CompareExchange(ref bucket.Tat, decision.Tat, tat) == tat)
            {
                return decision;
            }
        }
    }

    /// <summary>Drops every bucket that has filled up again; returns how many.</summary>
    public int Sweep()
    {
        var now = Now();
        var dropped = 0;
        foreach (var (key, bucket) in _buckets)
        {
            if (Volatile.Read(ref bucket.Tat) <= now && _buckets.TryRemove(new KeyValuePair<BucketKey, Bucket>(key, bucket)))
            {
                Interlocked.Decrement(ref _count);
                dropped++;
            }
        }

        return dropped;
    }

    /// <summary>At the cap: sweep (at most once a second, so a flood cannot make every request scan) and say whether there is room now.</summary>
    private bool SweepWhenFull(long now)
    {
        var last = Volatile.Read(ref _lastFullSweep);
        if (now - last >= TimeSpan.TicksPerSecond && Interlocked.CompareExchange(ref _lastFullSweep, now, last) == last)
        {
            Sweep();
        }

        return Volatile.Read(ref _count) < _maxClients;
    }

    /// <summary>Now, in TimeSpan ticks of the monotonic clock since these buckets were made (small numbers: exact through a double).</summary>
    private long Now() => _time.GetElapsedTime(_start).Ticks;

    public void Dispose() => _sweeper.Dispose();

    private sealed class Bucket
    {
        public long Tat;
    }
}
