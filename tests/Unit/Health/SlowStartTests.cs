using Balancer.Health;
using Balancer.Tests.Kit;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Unit.Health;

public sealed class SlowStartTests
{
    [Fact]
    public void Share_RampsLinearlyOverTheWindow_ForABackendThatJoinsLater()
    {
        var clock = new FakeTimeProvider();
        var all = Destinations.Create(3);
        var ramp = new SlowStart(TimeSpan.FromSeconds(20), clock);

        ramp.Observe("pool", all[..2]); // the first set seen: nothing ramps (the balancer just started)
        Assert.Equal(1.0, ramp.Share(all[0]));
        ramp.Observe("pool", all); // all[2] joins
        Assert.Equal(0.0, ramp.Share(all[2]));
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(0.25, ramp.Share(all[2]), 3);
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0.75, ramp.Share(all[2]), 3);
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(1.0, ramp.Share(all[2]));
    }

    [Fact]
    public void BackendsThatComeUpWhileTheBalancerStarts_DoNotRamp_ThoseAfterItServesDo()
    {
        var clock = new FakeTimeProvider();
        var all = Destinations.Create(4);
        var ramp = new SlowStart(TimeSpan.FromSeconds(20), clock, starting: true);

        ramp.Observe("pool", all[..1]); // first probes pass one at a time before the listener opens
        ramp.Observe("pool", all[..2]);
        ramp.Observe("pool", all[..3]);
        ramp.Serving();
        ramp.Observe("pool", all); // all[3]'s first probe passed once traffic flowed

        Assert.All(all[..3], d => Assert.Equal(1.0, ramp.Share(d)));
        Assert.Equal(0.0, ramp.Share(all[3]));
    }

    [Fact]
    public void ABackendThatComesBack_RampsAgain()
    {
        var clock = new FakeTimeProvider();
        var all = Destinations.Create(2);
        var ramp = new SlowStart(TimeSpan.FromSeconds(10), clock);
        ramp.Observe("pool", all);
        clock.Advance(TimeSpan.FromMinutes(1));

        ramp.Observe("pool", all[..1]); // all[1] fails
        clock.Advance(TimeSpan.FromSeconds(30));
        ramp.Observe("pool", all); // and recovers

        Assert.Equal(0.0, ramp.Share(all[1]));
        Assert.Equal(1.0, ramp.Share(all[0]));
    }

    [Fact]
    public void Off_EveryShareIsWhole()
    {
        var all = Destinations.Create(2);
        var ramp = new SlowStart(TimeSpan.Zero, new FakeTimeProvider());
        ramp.Observe("pool", all[..1]);
        ramp.Observe("pool", all);

        Assert.Equal(1.0, ramp.Share(all[1]));
    }

    [Fact]
    public void BackendsReturningToAPoolThatHadNone_AreNotRamped()
    {
        // With nothing available there is no one to shift their load to.
        var clock = new FakeTimeProvider();
        var all = Destinations.Create(2);
        var ramp = new SlowStart(TimeSpan.FromSeconds(10), clock);
        ramp.Observe("pool", all);
        ramp.Observe("pool", []);
        clock.Advance(TimeSpan.FromSeconds(3));

        ramp.Observe("pool", all[..1]);
        ramp.Observe("pool", all);

        Assert.Equal(1.0, ramp.Share(all[0]));
        Assert.Equal(0.0, ramp.Share(all[1]));
    }

    [Fact]
    public void Choose_SendsARampingBackendsPicksMostlyElsewhere()
    {
        var clock = new FakeTimeProvider();
        var all = Destinations.Create(3);
        var ramp = new SlowStart(TimeSpan.FromSeconds(10), clock);
        ramp.Observe("pool", all[..2]);
        ramp.Observe("pool", all);
        clock.Advance(TimeSpan.FromSeconds(2)); // all[2] at a fifth of its share
        var random = new Random(7);

        var counts = new int[3];
        for (var i = 0; i < 30_000; i++)
        {
            counts[Destinations.IndexOf(ramp.Choose(all[i % 3], all, random))]++;
        }

        // Weighted by share, all[2] would get 0.2 / 2.2 of the picks, about 9%.
        var rampingShare = counts[2] / 30_000.0;
        Assert.InRange(rampingShare, 0.06, 0.13);
        Assert.InRange(counts[0] / (double)counts[1], 0.9, 1.1);
    }

    [Fact]
    public void Choose_WhenEveryBackendRamps_LeavesTheAlgorithmsChoice()
    {
        // All came back together (or the only warm one is gone): ramping them all alike changes nothing.
        var clock = new FakeTimeProvider();
        var all = Destinations.Create(3);
        var ramp = new SlowStart(TimeSpan.FromSeconds(10), clock);
        ramp.Observe("pool", all[..1]);
        ramp.Observe("pool", all);
        ramp.Observe("pool", all[1..]);
        clock.Advance(TimeSpan.FromSeconds(1));
        var random = new Random(7);

        var counts = new int[3];
        for (var i = 0; i < 30_000; i++)
        {
            counts[Destinations.IndexOf(ramp.Choose(all[1 + (i % 2)], all[1..], random))]++;
        }

        Assert.InRange(counts[1] / (double)counts[2], 0.9, 1.1);
    }

    [Fact]
    public void Choose_KeepsAWarmPick()
    {
        var all = Destinations.Create(2);
        var ramp = new SlowStart(TimeSpan.FromSeconds(10), new FakeTimeProvider());
        ramp.Observe("pool", all);

        Assert.Same(all[1], ramp.Choose(all[1], all, new Random(1)));
    }
}
