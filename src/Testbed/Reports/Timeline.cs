using Testbed.Load;

namespace Testbed.Reports;

/// <summary>A run's requests cut into equal slices of time, for charts: per slice, requests by backend, failures, retries, latency.</summary>
public sealed class Timeline
{
    private Timeline(TimeSpan slice, IReadOnlyList<Slice> slices, IReadOnlyList<string> backends)
    {
        SliceLength = slice;
        Slices = slices;
        Backends = backends;
    }

    private static readonly double[] SliceLengths = [0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60];

    public TimeSpan SliceLength { get; }

    public IReadOnlyList<Slice> Slices { get; }

    /// <summary>Every backend that answered, in name order.</summary>
    public IReadOnlyList<string> Backends { get; }

    /// <summary>About a hundred slices over <paramref name="duration"/>, each a round length (100 ms, 250 ms, 500 ms, 1 s, ...).</summary>
    public static Timeline Of(IReadOnlyList<RequestRecord> history, TimeSpan duration)
    {
        var slice = TimeSpan.FromSeconds(SliceLengths.FirstOrDefault(l => duration.TotalSeconds / l <= 120, 60));
        var count = Math.Max(1, (int)Math.Ceiling(duration / slice));
        var backends = history.Where(r => r.Backend is not null).Select(r => r.Backend!).Distinct().Order(StringComparer.Ordinal).ToList();
        var indexOf = backends.Select((b, i) => (b, i)).ToDictionary(p => p.b, p => p.i, StringComparer.Ordinal);
        var slices = Enumerable.Range(0, count).Select(i => new Slice(slice * i, slice, backends.Count)).ToList();
        foreach (var record in history)
        {
            var index = (int)(record.Due / slice);
            if (index >= 0 && index < count)
            {
                slices[index].Add(record, record.Backend is { } backend ? indexOf[backend] : -1);
            }
        }

        return new Timeline(slice, slices, backends);
    }

    public sealed class Slice(TimeSpan start, TimeSpan length, int backends)
    {
        private readonly int[] _byBackend = new int[backends];

        public TimeSpan Start { get; } = start;

        public int Requests { get; private set; }

        public int Failed { get; private set; }

        public int Retried { get; private set; }

        public LatencyHistogram Latency { get; } = new();

        /// <summary>Requests per second answered by each backend (in <see cref="Timeline.Backends"/> order).</summary>
        public double RateOf(int backend) => _byBackend[backend] / length.TotalSeconds;

        public double FailedRate => Failed / length.TotalSeconds;

        public double RetriedRate => Retried / length.TotalSeconds;

        /// <param name="backend">The answering backend's index, or -1.</param>
        internal void Add(RequestRecord record, int backend)
        {
            Requests++;
            Failed += record.Failed ? 1 : 0;
            Retried += record.Retries is > 0 ? 1 : 0;
            if (record.Status != 0)
            {
                Latency.Record(record.Latency);
            }

            if (backend >= 0 && !record.Failed)
            {
                _byBackend[backend]++;
            }
        }
    }
}
