using Testbed.Load;

namespace Balancer.Tests.Unit.Testbed.Load;

public sealed class LatencyHistogramTests
{
    [Fact]
    public void Percentiles_AreWithinTwoPercentOfTheExactOnes()
    {
        var random = new Random(3);
        var values = Enumerable.Range(0, 100_000).Select(_ => TimeSpan.FromMicroseconds(Math.Exp(random.NextDouble() * 16))).ToList(); // 1 µs to ~9 s
        var histogram = new LatencyHistogram();
        values.ForEach(histogram.Record);
        var sorted = values.Order().ToList();

        foreach (var p in new[] { 1.0, 50, 90, 99, 99.9 })
        {
            var exact = sorted[(int)Math.Ceiling(p / 100 * sorted.Count) - 1].TotalMicroseconds;
            var read = histogram.Percentile(p).TotalMicroseconds;
            Assert.InRange(read, exact - 1, Math.Max(exact * 1.02, exact + 1)); // whole microseconds
        }

        Assert.Equal(Math.Floor(sorted[^1].TotalMicroseconds), histogram.Max.TotalMicroseconds);
        Assert.Equal(Math.Floor(sorted[0].TotalMicroseconds), histogram.Min.TotalMicroseconds);
        Assert.Equal(100_000, histogram.Count);
    }

    [Fact]
    public void NeverReportsMoreThanTheMaximumSeen()
    {
        var histogram = new LatencyHistogram();
        histogram.Record(TimeSpan.FromMilliseconds(100.001));

        Assert.Equal(TimeSpan.FromMilliseconds(100.001), histogram.Percentile(99.9));
    }

    [Fact]
    public void Empty_IsAllZero()
    {
        var histogram = new LatencyHistogram();

        Assert.Equal((0L, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero), (histogram.Count, histogram.Percentile(99), histogram.Max, histogram.Mean));
        Assert.Empty(histogram.Ranges());
    }

    [Fact]
    public void Add_MergesCountsAndExtremes()
    {
        var fast = new LatencyHistogram();
        var slow = new LatencyHistogram();
        for (var i = 0; i < 90; i++)
        {
            fast.Record(TimeSpan.FromMilliseconds(1));
        }

        for (var i = 0; i < 10; i++)
        {
            slow.Record(TimeSpan.FromMilliseconds(500));
        }

        fast.Add(slow);

        Assert.Equal(100, fast.Count);
        Assert.Equal(TimeSpan.FromMilliseconds(500), fast.Max);
        Assert.True(fast.Percentile(90) <= TimeSpan.FromMilliseconds(1.02));
        Assert.True(fast.Percentile(91) >= TimeSpan.FromMilliseconds(490));
    }

    [Fact]
    public void Ranges_CountEveryValueOnce()
    {
        var histogram = new LatencyHistogram();
        foreach (var ms in new[] { 0.5, 1.5, 1.7, 3, 40, 40, 900 })
        {
            histogram.Record(TimeSpan.FromMilliseconds(ms));
        }

        var ranges = histogram.Ranges();

        Assert.Equal(7, ranges.Sum(r => r.Count));
        Assert.Equal((TimeSpan.FromMilliseconds(2), 2L), ranges.Single(r => r.UpTo == TimeSpan.FromMilliseconds(2)));
        Assert.Equal((TimeSpan.FromMilliseconds(50), 2L), ranges.Single(r => r.UpTo == TimeSpan.FromMilliseconds(50)));
    }
}
