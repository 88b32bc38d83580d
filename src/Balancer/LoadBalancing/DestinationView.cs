using System.Runtime.CompilerServices;
using Balancer.Proxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// The available destinations of a cluster in pool order, without those of weight 0. YARP hands policies
/// a new list instance whenever membership or health changes, so the view is rebuilt only then (O(n log n))
/// and every pick in between reuses it.
/// </summary>
internal sealed class DestinationView
{
    private static readonly ConditionalWeakTable<ClusterState, DestinationView> Views = [];

    private Snapshot _current = new(Array.Empty<DestinationState>(), []);

    /// <summary>The view of <paramref name="available"/>, rebuilt only when YARP has replaced that list.</summary>
    public static DestinationState[] Of(ClusterState cluster, IReadOnlyList<DestinationState> available)
    {
        var view = Views.GetValue(cluster, static _ => new DestinationView());
        var current = view._current;
        if (ReferenceEquals(current.Source, available))
        {
            return current.Ordered;
        }

        var ordered = available.Where(d => DestinationMetadata.WeightOf(d) > 0).OrderBy(DestinationMetadata.OrderOf).ToArray();
        view._current = new Snapshot(available, ordered);
        return ordered;
    }

    private sealed record Snapshot(IReadOnlyList<DestinationState> Source, DestinationState[] Ordered);
}
