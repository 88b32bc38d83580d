using System.Globalization;
using Balancer.Configuration;

namespace FakeBackends.Behaviors;

/// <summary>How long to wait: fixed, uniform between two bounds, or log-normal with a given median and p99 (a tail).</summary>
public abstract record LatencyDistribution
{
    public abstract TimeSpan Sample(Random random);

    public abstract string Spec { get; }
}

public sealed record FixedLatency(TimeSpan Delay) : LatencyDistribution
{
    public override TimeSpan Sample(Random random) => Delay;

    public override string Spec => ValueParsers.FormatDuration(Delay);
}

public sealed record UniformLatency(TimeSpan Min, TimeSpan Max) : LatencyDistribution
{
    public override TimeSpan Sample(Random random) => Min + ((Max - Min) * random.NextDouble());

    public override string Spec => $"{{ min: {ValueParsers.FormatDuration(Min)}, max: {ValueParsers.FormatDuration(Max)} }}";
}

/// <summary>
/// Log-normal: most requests near <see cref="P50"/>, one in a hundred beyond <see cref="P99"/>, the way real service
/// latencies spread. Samples are capped at ten times the p99 so that one draw cannot stall a run.
/// </summary>
public sealed record TailLatency(TimeSpan P50, TimeSpan P99) : LatencyDistribution
{
    private const double Z99 = 2.326347874; // the standard normal's 99th percentile

    public override TimeSpan Sample(Random random)
    {
        var mu = Math.Log(P50.TotalMilliseconds);
        var sigma = (Math.Log(P99.TotalMilliseconds) - mu) / Z99;
        // Box-Muller: one standard normal from two uniforms.
        var normal = Math.Sqrt(-2.0 * Math.Log(1.0 - random.NextDouble())) * Math.Cos(2.0 * Math.PI * random.NextDouble());
        var milliseconds = Math.Min(Math.Exp(mu + (sigma * normal)), 10 * P99.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(milliseconds);
    }

    public override string Spec => $"{{ p50: {ValueParsers.FormatDuration(P50)}, p99: {ValueParsers.FormatDuration(P99)} }}";
}

/// <summary>Waits before answering (Toxiproxy's <c>latency</c>): <c>latency: 200ms</c>, <c>{ min, max }</c> or <c>{ p50, p99 }</c>.</summary>
public sealed class Latency(LatencyDistribution distribution, TimeProvider time, Random random) : IBehavior
{
    public LatencyDistribution Distribution => distribution;

    public string Spec => $"latency: {distribution.Spec}";

    public async Task InvokeAsync(BehaviorContext context, Func<Task> proceed)
    {
        await Task.Delay(distribution.Sample(random), time, context.Aborted).ConfigureAwait(false);
        await proceed().ConfigureAwait(false);
    }

    internal static IBehavior? Read(ConfigSection item, BehaviorEnvironment environment)
    {
        LatencyDistribution? distribution;
        if (!item.IsNested(Name))
        {
            distribution = new FixedLatency(item.Value(Name, TimeSpan.Zero, ValueParsers.Duration));
        }
        else
        {
            var spec = item.Section(Name);
            var (hasMin, hasMax, hasP50, hasP99) = (spec.Has("min"), spec.Has("max"), spec.Has("p50"), spec.Has("p99"));
            if (spec.Has("fixed"))
            {
                distribution = new FixedLatency(spec.Value("fixed", TimeSpan.Zero, ValueParsers.Duration));
            }
            else if (hasMin || hasMax)
            {
                var min = spec.Value("min", TimeSpan.Zero, ValueParsers.Duration);
                var max = spec.Value("max", min, ValueParsers.Duration);
                if (max < min)
                {
                    spec.Error("max", $"is less than min ({ValueParsers.FormatDuration(min)})");
                }

                distribution = new UniformLatency(min, max);
            }
            else if (hasP50 && hasP99)
            {
                var p50 = spec.Value("p50", TimeSpan.FromMilliseconds(1), ValueParsers.Duration);
                var p99 = spec.Value("p99", p50, ValueParsers.Duration);
                if (p50 <= TimeSpan.Zero || p99 < p50)
                {
                    spec.Error("p99", string.Create(CultureInfo.InvariantCulture, $"needs 0 < p50 <= p99 (p50 is {ValueParsers.FormatDuration(p50)})"));
                }

                distribution = new TailLatency(p50, p99);
            }
            else
            {
                item.Error(Name, "give a duration, { fixed }, { min, max } or { p50, p99 }");
                return null;
            }
        }

        return new Latency(distribution, environment.Time, environment.Random);
    }

    internal const string Name = "latency";
}
