using Balancer.Tests.Kit;
using Microsoft.Extensions.Time.Testing;
using Testbed.Load;

namespace Balancer.Tests.Unit.Testbed.Load;

public sealed class StallWatchTests
{
    [Fact]
    public void ALateHeartbeat_IsAStall_FromWhenTheLastOneCame()
    {
        var clock = new FakeTimeProvider();
        var origin = clock.GetTimestamp();
        var watch = new StallWatch(clock, origin, TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(100));

        foreach (var gap in new[] { 10, 12, 60, 109, 10, 700, 10 })
        {
            clock.Advance(TimeSpan.FromMilliseconds(gap));
            watch.Observe(clock.GetTimestamp());
        }

        Assert.Equal([new Stall(TimeSpan.FromMilliseconds(201), TimeSpan.FromMilliseconds(690))], watch.Stalls); // 109 ms is 99 ms late: in time
    }

    [Fact]
    public async Task RunAsync_BeatsOnTheClock_UntilStopped()
    {
        var clock = new FakeTimeProvider();
        var watch = new StallWatch(clock, clock.GetTimestamp(), TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(100));
        using var stop = new CancellationTokenSource();
        var running = watch.RunAsync(stop.Token);

        clock.Advance(TimeSpan.FromMilliseconds(500)); // the beat due at 10 ms comes 490 ms late

        await Eventually.TrueAsync(() => watch.Stalls.Count == 1, "the late beat is seen");
        await stop.CancelAsync();
        await running;
        Assert.Equal(TimeSpan.FromMilliseconds(490), Assert.Single(watch.Stalls).Length);
    }
}
