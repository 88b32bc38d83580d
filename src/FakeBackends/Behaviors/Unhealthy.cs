using Balancer.Configuration;

namespace FakeBackends.Behaviors;

/// <summary><c>GET /health</c> answers 503 while requests are served as usual: <c>unhealthy</c>.</summary>
public sealed class Unhealthy : IBehavior
{
    public string Spec => Name;

    public Task InvokeAsync(BehaviorContext context, Func<Task> proceed) => proceed();

    public bool IsHealthy(DateTimeOffset now) => false;

    internal static IBehavior? Read(ConfigSection item, BehaviorEnvironment environment)
    {
        if (!item.Value(Name, true, ValueParsers.Bool))
        {
            item.Error(Name, "to be healthy, leave it out");
            return null;
        }

        return new Unhealthy();
    }

    internal const string Name = "unhealthy";
}
