using System.Globalization;
using Balancer.Configuration;

namespace FakeBackends.Behaviors;

/// <summary>Answers with an error status at a rate: <c>fail: 500</c> (always) or <c>fail: { status: 500, rate: 0.1 }</c>.</summary>
public sealed class Fail(int status, double rate, Random random) : IBehavior
{
    public string Spec => rate >= 1.0 ? $"fail: {status}" : string.Create(CultureInfo.InvariantCulture, $"fail: {{ status: {status}, rate: {rate} }}");

    public Task InvokeAsync(BehaviorContext context, Func<Task> proceed)
    {
        if (rate >= 1.0 || random.NextDouble() < rate)
        {
            context.Http.Response.StatusCode = status; // the echo still answers, with this status
        }

        return proceed();
    }

    internal static IBehavior Read(ConfigSection item, BehaviorEnvironment environment)
    {
        if (!item.IsNested(Name))
        {
            return new Fail(item.Value(Name, 500, Status), 1.0, environment.Random);
        }

        var spec = item.Section(Name);
        return new Fail(spec.Value("status", 500, Status), spec.Value("rate", 1.0, ValueParsers.Fraction), environment.Random);
    }

    internal const string Name = "fail";

    private static readonly ValueParser<int> Status = ValueParsers.Int(100, 599, "an HTTP status");
}
