using Balancer.Configuration;

namespace FakeBackends.Behaviors;

/// <summary>
/// Answers in full with <c>Connection: close</c>, then holds the connection open for a while before closing it
/// (Toxiproxy's <c>slow_close</c>): <c>slow-close: 2s</c>. Connections are not reused and linger.
/// </summary>
public sealed class SlowClose(TimeSpan delay, TimeProvider time) : IBehavior
{
    public string Spec => $"{Name}: {ValueParsers.FormatDuration(delay)}";

    public async Task InvokeAsync(BehaviorContext context, Func<Task> proceed)
    {
        context.Http.Response.Headers.Connection = "close";
        await proceed().ConfigureAwait(false);
        await context.Http.Response.CompleteAsync().ConfigureAwait(false);
        await Task.Delay(delay, time, context.Aborted).ConfigureAwait(false);
    }

    internal static IBehavior Read(ConfigSection item, BehaviorEnvironment environment) =>
        new SlowClose(item.Value(Name, TimeSpan.FromSeconds(1), ValueParsers.Duration), environment.Time);

    internal const string Name = "slow-close";
}
