using Balancer.Configuration;
using Balancer.Health;

namespace Balancer.Tests.Unit.Health;

public sealed class OutlierStateTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly OutlierDetectionOptions Options = new()
    {
        Enabled = true,
        ConsecutiveFailures = 3,
        BaseEjectionTime = TimeSpan.FromSeconds(30),
        MaxEjectionTime = TimeSpan.FromSeconds(100),
        MaxEjectionPercent = 50,
    };

    [Fact]
    public void ConsecutiveFailures_Eject_ForTheBaseTime_AndASuccessResetsTheStreak()
    {
        var state = new OutlierState();

        Assert.Null(state.RecordFailure(Options, T0));
        Assert.Null(state.RecordFailure(Options, T0));
        state.RecordSuccess(Options, T0);
        Assert.Null(state.RecordFailure(Options, T0));
        Assert.Null(state.RecordFailure(Options, T0));
        Assert.Equal(TimeSpan.FromSeconds(30), state.RecordFailure(Options, T0));
        Assert.Equal(1, state.Ejections);
    }

    [Fact]
    public void AfterReturning_OneFailureEjectsAgain_ForLonger_UpToTheMaximum()
    {
        var state = new OutlierState();
        var now = T0;
        var durations = new List<TimeSpan>();
        for (var round = 0; round < 5; round++)
        {
            TimeSpan? ejected = null;
            var failures = 0;
            while (ejected is null)
            {
                failures++;
                ejected = state.RecordFailure(Options, now);
            }

            Assert.Equal(round == 0 ? 3 : 1, failures); // returned on probation: the first failure ejects again
            durations.Add(ejected.Value);
            now += ejected.Value;
            state.Return(now);
        }

        Assert.Equal([30, 60, 90, 100, 100], durations.Select(d => (int)d.TotalSeconds));
    }

    [Fact]
    public void ProbationEnds_AfterEnoughSuccesses_ThenEjectionNeedsAFullStreakAgain()
    {
        var state = EjectedOnceThenThroughProbation();

        Assert.Null(state.RecordFailure(Options, T0.AddSeconds(32)));
        Assert.Null(state.RecordFailure(Options, T0.AddSeconds(32)));
        Assert.Equal(TimeSpan.FromSeconds(60), state.RecordFailure(Options, T0.AddSeconds(32)));
    }

    [Fact]
    public void ALongGoodSpell_ForgetsPastEjections()
    {
        var state = EjectedOnceThenThroughProbation();

        state.RecordSuccess(Options, T0.AddSeconds(30 + 100)); // healthy for the maximum ejection time

        Assert.Equal(0, state.Ejections);
        for (var i = 0; i < 2; i++)
        {
            state.RecordFailure(Options, T0.AddSeconds(200));
        }

        Assert.Equal(TimeSpan.FromSeconds(30), state.RecordFailure(Options, T0.AddSeconds(200)));
    }

    /// <summary>Ejected at T0 for 30s, back at T0+30s, and through probation by T0+31s.</summary>
    private static OutlierState EjectedOnceThenThroughProbation()
    {
        var state = new OutlierState();
        for (var i = 0; i < 3; i++)
        {
            state.RecordFailure(Options, T0);
        }

        state.Return(T0.AddSeconds(30));
        for (var i = 0; i < 3; i++)
        {
            state.RecordSuccess(Options, T0.AddSeconds(31));
        }

        return state;
    }
}
