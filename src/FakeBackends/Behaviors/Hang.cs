using System.Globalization;
using Balancer.Configuration;

namespace FakeBackends.Behaviors;

/// <summary>
/// Reads the request and never answers, until the client gives up (Toxiproxy's <c>timeout</c> without the close):
/// <c>hang</c>, or <c>hang: 0.3</c> for three requests in ten.
/// </summary>
public sealed class Hang(double rate, TimeProvider time, Random random) : IBehavior
{
    public string Spec => rate >= 1.0 ? "hang" : string.Create(CultureInfo.InvariantCulture, $"hang: {rate}");

    public Task InvokeAsync(BehaviorContext context, Func<Task> proceed) =>
        rate >= 1.0 || random.NextDouble() < rate ? Task.Delay(Timeout.InfiniteTimeSpan, time, context.Aborted) : proceed();

    internal static IBehavior Read(ConfigSection item, BehaviorEnvironment environment) =>
        new Hang(item.Value(Name, 1.0, ValueParsers.Fraction), environment.Time, environment.Random);

    internal const string Name = "hang";
}
