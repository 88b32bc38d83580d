using Microsoft.AspNetCore.Routing.Matching;

namespace Balancer.Hosting;

/// <summary>
/// Keeps endpoints to their own listener (<see cref="ListenerMetadata"/>): a branch of the routing tree per listener, so
/// that the choice is one lookup per request and allocates nothing (a selector policy would make every request carry a
/// candidate set). An endpoint without the metadata answers on every listener.
/// </summary>
internal sealed class ListenerMatcherPolicy : MatcherPolicy, INodeBuilderPolicy
{
    /// <summary>The edge of connections no listener tagged (none, in the balancer): endpoints of no listener only.</summary>
    private static readonly object Untagged = new();

    private static readonly ListenerKind[] Kinds = Enum.GetValues<ListenerKind>();

    public override int Order => 0;

    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) =>
        endpoints.Any(e => e.Metadata.GetMetadata<ListenerMetadata>() is not null);

    public IReadOnlyList<PolicyNodeEdge> GetEdges(IReadOnlyList<Endpoint> endpoints)
    {
        var edges = new List<PolicyNodeEdge>(Kinds.Length + 1);
        foreach (var kind in Kinds)
        {
            edges.Add(new PolicyNodeEdge(kind, [.. endpoints.Where(e => e.Metadata.GetMetadata<ListenerMetadata>() is not { } owner || owner.Kind == kind)]));
        }

        edges.Add(new PolicyNodeEdge(Untagged, [.. endpoints.Where(e => e.Metadata.GetMetadata<ListenerMetadata>() is null)]));
        return edges;
    }

    public PolicyJumpTable BuildJumpTable(int exitDestination, IReadOnlyList<PolicyJumpTableEdge> edges)
    {
        var destinations = new int[Kinds.Length];
        Array.Fill(destinations, exitDestination);
        var untagged = exitDestination;
        foreach (var edge in edges)
        {
            if (edge.State is ListenerKind kind)
            {
                destinations[(int)kind] = edge.Destination;
            }
            else
            {
                untagged = edge.Destination;
            }
        }

        return new ByListener(destinations, untagged);
    }

    private sealed class ByListener(int[] destinations, int untagged) : PolicyJumpTable
    {
        public override int GetDestination(HttpContext httpContext) =>
            Listeners.Of(httpContext) is { } kind ? destinations[(int)kind] : untagged;
    }
}
