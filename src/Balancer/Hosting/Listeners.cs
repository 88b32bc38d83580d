using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Balancer.Hosting;

/// <summary>The listeners of the one Kestrel server.</summary>
public enum ListenerKind
{
    Proxy,
    Admin,
}

/// <summary>Endpoint metadata: this endpoint answers only on connections accepted by <see cref="Kind"/>.</summary>
internal sealed record ListenerMetadata(ListenerKind Kind);

/// <summary>
/// Tags every connection with the listener that accepted it, and keeps endpoints to their own listener:
/// the admin API is unreachable through the proxy port, and the proxy unreachable through the admin port,
/// whatever Host header a client sends.
/// </summary>
internal static class Listeners
{
    private const string ItemKey = "lb.listener";

    public static void Tag(ListenOptions listen, ListenerKind kind) =>
        listen.Use(next => connection =>
        {
            connection.Items[ItemKey] = kind;
            return next(connection);
        });

    public static ListenerKind? Of(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(ItemKey, out var kind) == true ? (ListenerKind)kind! : null;
}

/// <summary>Invalidates candidate endpoints that belong to another listener.</summary>
internal sealed class ListenerMatcherPolicy : MatcherPolicy, IEndpointSelectorPolicy
{
    public override int Order => 0;

    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) =>
        endpoints.Any(e => e.Metadata.GetMetadata<ListenerMetadata>() is not null);

    public Task ApplyAsync(HttpContext httpContext, CandidateSet candidates)
    {
        var listener = Listeners.Of(httpContext);
        for (var i = 0; i < candidates.Count; i++)
        {
            var owner = candidates[i].Endpoint.Metadata.GetMetadata<ListenerMetadata>();
            if (owner is not null && owner.Kind != listener)
            {
                candidates.SetValidity(i, false);
            }
        }

        return Task.CompletedTask;
    }
}
