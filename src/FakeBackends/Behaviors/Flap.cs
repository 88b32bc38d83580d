using Balancer.Configuration;

namespace FakeBackends.Behaviors;

/// <summary>
/// Up for <c>up</c>, down for <c>down</c>, over and over, from when it was set: <c>flap: { up: 2s, down: 1s }</c>.
/// Down means <c>/health</c> answers 503 and so do requests (<c>status</c>, 503 by default); with
/// <c>health-only: true</c> only the health endpoint flaps while requests keep being served.
/// </summary>
public sealed class Flap : IBehavior, IOutageSchedule
{
    private readonly TimeSpan _up;
    private readonly TimeSpan _down;
    private readonly bool _healthOnly;
    private readonly int _status;
    private readonly TimeProvider _time;
    private readonly DateTimeOffset _since;

    public Flap(TimeSpan up, TimeSpan down, bool healthOnly, int status, TimeProvider time)
    {
        _up = up;
        _down = down;
        _healthOnly = healthOnly;
        _status = status;
        _time = time;
        _since = time.GetUtcNow();
    }

    public string Spec => $"flap: {{ up: {ValueParsers.FormatDuration(_up)}, down: {ValueParsers.FormatDuration(_down)}"
        + (_healthOnly ? ", health-only: true" : "") + (_status != 503 ? $", status: {_status}" : "") + " }";

    /// <summary>Whether it is in a down period at <paramref name="now"/>.</summary>
    public bool IsDown(DateTimeOffset now) => (now - _since).Ticks % (_up + _down).Ticks >= _up.Ticks;

    public bool IsHealthy(DateTimeOffset now) => !IsDown(now);

    public IEnumerable<(DateTimeOffset Down, DateTimeOffset Up)> DownPeriods(DateTimeOffset start, DateTimeOffset until)
    {
        var period = _up + _down;
        var cycle = Math.Max(0, (start - _since).Ticks / period.Ticks);
        for (var begins = _since + (period * cycle); begins < until; begins += period)
        {
            var down = begins + _up;
            var up = down + _down;
            if (up > start && down < until)
            {
                yield return (down, up);
            }
        }
    }

    public Task InvokeAsync(BehaviorContext context, Func<Task> proceed)
    {
        if (!_healthOnly && IsDown(_time.GetUtcNow()))
        {
            context.Http.Response.StatusCode = _status;
        }

        return proceed();
    }

    internal static IBehavior? Read(ConfigSection item, BehaviorEnvironment environment)
    {
        if (!item.IsNested(Name))
        {
            item.Error(Name, "give the periods: flap: { up: 2s, down: 1s }");
            return null;
        }

        var spec = item.Section(Name);
        var up = spec.Value("up", TimeSpan.Zero, ValueParsers.Duration);
        var down = spec.Value("down", TimeSpan.Zero, ValueParsers.Duration);
        if (up <= TimeSpan.Zero || down <= TimeSpan.Zero)
        {
            spec.Error("both up and down are needed, each above 0");
            return null;
        }

        return new Flap(up, down, spec.Value("health-only", false, ValueParsers.Bool), spec.Value("status", 503, ValueParsers.Int(100, 599, "an HTTP status")), environment.Time);
    }

    internal const string Name = "flap";
}
