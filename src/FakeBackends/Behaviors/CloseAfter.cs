using Balancer.Configuration;
using Microsoft.AspNetCore.Connections.Features;

namespace FakeBackends.Behaviors;

/// <summary>
/// Closes each connection after it has carried N requests, as servers with a keep-alive request limit do:
/// <c>close-after: 3</c> closes it silently once the third answer is out (a client that sends a fourth on it meets
/// a dead connection), <c>close-after: { requests: 3, notice: true }</c> says <c>Connection: close</c> on the third.
/// </summary>
public sealed class CloseAfter(int requests, bool notice) : IBehavior
{
    private static readonly object CountKey = new();

    public string Spec => notice ? $"{Name}: {{ requests: {requests}, notice: true }}" : $"{Name}: {requests}";

    public Task InvokeAsync(BehaviorContext context, Func<Task> proceed)
    {
        var http = context.Http;
        var items = http.Features.Get<IConnectionItemsFeature>()?.Items;
        var count = items is not null && items.TryGetValue(CountKey, out var seen) ? (int)seen! + 1 : 1;
        if (items is not null)
        {
            items[CountKey] = count;
        }

        if (count >= requests)
        {
            if (notice)
            {
                http.Response.Headers.Connection = "close";
            }
            else
            {
                // Once the answer is out, close (FIN) instead of waiting for the next request, without having said so.
                http.Response.OnCompleted(() =>
                {
                    http.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
                    return Task.CompletedTask;
                });
            }
        }

        return proceed();
    }

    internal static IBehavior Read(ConfigSection item, BehaviorEnvironment environment)
    {
        var count = ValueParsers.Int(1, 1_000_000, "a number of requests");
        if (!item.IsNested(Name))
        {
            return new CloseAfter(item.Value(Name, 1, count), notice: false);
        }

        var spec = item.Section(Name);
        return new CloseAfter(spec.Value("requests", 1, count), spec.Value("notice", false, ValueParsers.Bool));
    }

    internal const string Name = "close-after";
}
