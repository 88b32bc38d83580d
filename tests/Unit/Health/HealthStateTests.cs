using Balancer.Health;

namespace Balancer.Tests.Unit.Health;

public sealed class HealthStateTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void NewBackend_IsUnknown_AndItsFirstProbeDecides()
    {
        var up = new HealthState(rise: 3, fall: 3);
        var down = new HealthState(rise: 3, fall: 3);

        Assert.Equal(BackendHealth.Unknown, up.Health);
        Assert.True(up.Record(true, "200", T0));
        Assert.True(down.Record(false, "connection refused", T0));

        Assert.Equal(BackendHealth.Healthy, up.Health);
        Assert.Equal(BackendHealth.Unhealthy, down.Health);
        Assert.Equal("connection refused", down.Reason);
    }

    [Fact]
    public void Healthy_GoesDownOnlyAfterFallFailuresInARow()
    {
        var state = new HealthState(rise: 2, fall: 3);
        state.Record(true, "200", T0);

        Assert.False(state.Record(false, "503", T0));
        Assert.False(state.Record(false, "503", T0));
        Assert.False(state.Record(true, "200", T0)); // the streak is broken
        Assert.False(state.Record(false, "503", T0));
        Assert.False(state.Record(false, "503", T0));
        Assert.Equal(BackendHealth.Healthy, state.Health);
        Assert.True(state.Record(false, "503", T0.AddSeconds(9)));

        Assert.Equal(BackendHealth.Unhealthy, state.Health);
        Assert.Equal(T0.AddSeconds(9), state.Since);
        Assert.Equal("503 (3 failures in a row)", state.Reason);
    }

    [Fact]
    public void Unhealthy_ComesBackOnlyAfterRiseSuccessesInARow()
    {
        var state = new HealthState(rise: 2, fall: 1);
        state.Record(true, "200", T0);
        state.Record(false, "timeout", T0);

        Assert.False(state.Record(true, "200", T0));
        Assert.False(state.Record(false, "timeout", T0));
        Assert.False(state.Record(true, "200", T0));
        Assert.True(state.Record(true, "200", T0));

        Assert.Equal(BackendHealth.Healthy, state.Health);
        Assert.Equal("200 (2 successes in a row)", state.Reason);
    }

    [Fact]
    public void NeverHealthyBackend_IsAdmittedOnItsFirstSuccess()
    {
        // A cold or still-booting backend that failed its first probes has no history of flapping to guard against.
        var state = new HealthState(rise: 3, fall: 2);
        state.Record(false, "no answer within 500ms", T0);
        Assert.False(state.Settled);
        state.Record(false, "no answer within 500ms", T0);
        Assert.True(state.Settled);

        Assert.True(state.Record(true, "200", T0));

        Assert.Equal(BackendHealth.Healthy, state.Health);
        Assert.Equal("200", state.Reason);
    }

    [Fact]
    public void Settled_OnceHealthy_OrAfterFallFailures()
    {
        var up = new HealthState(rise: 2, fall: 2);
        Assert.False(up.Settled);
        up.Record(true, "200", T0);
        Assert.True(up.Settled);

        var down = new HealthState(rise: 2, fall: 2);
        down.Record(false, "connection refused", T0);
        Assert.Equal(BackendHealth.Unhealthy, down.Health);
        Assert.False(down.Settled); // one failure may be a cold start: worth waiting for the next probe
        down.Record(false, "connection refused", T0);
        Assert.True(down.Settled);
    }
}
