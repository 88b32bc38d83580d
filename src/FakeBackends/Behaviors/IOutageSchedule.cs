namespace FakeBackends.Behaviors;

/// <summary>A behavior that takes its backend down on a schedule of its own, so a run can tell when it was down.</summary>
public interface IOutageSchedule
{
    /// <summary>The down periods that overlap <paramref name="start"/>–<paramref name="until"/>, in order.</summary>
    IEnumerable<(DateTimeOffset Down, DateTimeOffset Up)> DownPeriods(DateTimeOffset start, DateTimeOffset until);
}
