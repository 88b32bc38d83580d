using FakeBackends.Behaviors;
using Microsoft.Extensions.Time.Testing;
using Testbed.Scenarios;

namespace Balancer.Tests.Unit.Testbed.Scenarios;

public sealed class OutageTests
{
    private static readonly TimeSpan End = TimeSpan.FromSeconds(12);

    private static void Near(TimeSpan expected, TimeSpan? actual) =>
        Assert.InRange(actual!.Value, expected - TimeSpan.FromMilliseconds(1), expected + TimeSpan.FromMilliseconds(1));

    private static BalancerSideEvent At(double seconds, string kind, string backend = "b2") => new(TimeSpan.FromSeconds(seconds), kind, backend, "default", "");

    [Fact]
    public void AKill_IsDetectedByTheFirstDownOrEjection_AndReadmittedWhenNeitherHoldsAnyMore()
    {
        var outages = Outage.Judge([("b2", TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(7), "kill b2")],
            [At(-1, "up"), At(3.1, "ejected"), At(3.4, "down"), At(7.2, "returned"), At(7.5, "up"), At(3.2, "down", "b1")], End);

        var o = Assert.Single(outages);
        Near(TimeSpan.FromSeconds(0.1), o.DetectionDelay);
        Near(TimeSpan.FromSeconds(0.5), o.RecoveryDelay); // returned at 7.2, still down until 7.5
    }

    [Fact]
    public void AnOutageNeverTakenOutOfRotation_IsNotDetected_NorReadmitted()
    {
        var o = Assert.Single(Outage.Judge([("b2", TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(4), "kill b2")], [At(-1, "up"), At(4.5, "down")], End));

        Assert.Null(o.Detected);
        Assert.Null(o.Readmitted);
    }

    [Fact]
    public void AnOutageThatBeganTooLateToBeJudged_DoesNotCountAgainstDetection_ButOneWatchedLongEnoughDoes()
    {
        // Down 11 ms before the run ended (a flap's phase): nobody could have detected it within 1 s, so it is not late.
        var outages = Outage.Judge(
            [("f", TimeSpan.FromSeconds(9.5), TimeSpan.FromSeconds(10.5), "f flaps down"), ("f", TimeSpan.FromSeconds(11.989), null, "f flaps down")],
            [At(0, "up", "f"), At(9.55, "ejected", "f"), At(10.7, "returned", "f")], End);
        var within = new DetectedWithinExpectation(Window.All, TimeSpan.FromSeconds(1));

        Assert.Equal(TimeSpan.FromMilliseconds(11), outages[1].Watched);
        Assert.True(within.Evaluate([], outages).Passed);

        // The same outage watched for 2 s and never taken out is late.
        var watched = Outage.Judge([("f", TimeSpan.FromSeconds(9.5), null, "f flaps down")], [At(0, "up", "f")], End);
        Assert.False(within.Evaluate([], watched).Passed);
    }

    [Fact]
    public void AStop_IsTakenOutByItsRemoval_AndBackByItsRegistration()
    {
        var o = Assert.Single(Outage.Judge([("b2", TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(5), "stop b2")],
            [At(-1, "registered"), At(-1, "up"), At(2.01, "removed"), At(5.05, "registered"), At(5.1, "up")], End));

        Near(TimeSpan.FromMilliseconds(10), o.DetectionDelay);
        Near(TimeSpan.FromMilliseconds(50), o.RecoveryDelay);
    }

    [Fact]
    public void StillEjectedFromTheLastOutage_CountsAsDetectedAtOnce_AndReadmissionMustComeBeforeTheNextOne()
    {
        var outages = Outage.Judge(
            [("f", TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), "f flaps down"), ("f", TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(4), "f flaps down")],
            [At(0, "up", "f"), At(1.05, "ejected", "f"), At(5, "returned", "f")], End);

        Near(TimeSpan.FromMilliseconds(50), outages[0].DetectionDelay);
        Assert.Null(outages[0].Readmitted); // still ejected when it went down again
        Assert.Equal(TimeSpan.Zero, outages[1].DetectionDelay);
        Near(TimeSpan.FromSeconds(1), outages[1].RecoveryDelay);
    }

    [Fact]
    public void AFlap_ListsItsDownPeriods_InTheWindowAsked()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero));
        var flap = new Flap(TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(1), healthOnly: false, 503, clock);
        var start = clock.GetUtcNow();

        var periods = flap.DownPeriods(start.AddSeconds(2), start.AddSeconds(7)).ToList();

        Assert.Equal([(start.AddSeconds(1.5), start.AddSeconds(2.5)), (start.AddSeconds(4), start.AddSeconds(5)), (start.AddSeconds(6.5), start.AddSeconds(7.5))], periods);
        Assert.All(periods, p => Assert.True(flap.IsDown(p.Down) && !flap.IsDown(p.Up)));
    }
}
