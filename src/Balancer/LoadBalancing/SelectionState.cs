using System.Runtime.CompilerServices;
using Balancer.Proxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// What a policy keeps between picks for one group of destinations: the group's available destinations in
/// pool order without those of weight 0, and counters. A group is a cluster, or one restricted subset of it
/// (<see cref="GroupDestinations"/>), so interleaved requests to different groups do not disturb each other's
/// rotation. YARP hands policies a new list instance whenever membership or health changes; the ordered view
/// is rebuilt only then (O(n log n)), and the counters carry on across such changes.
/// </summary>
internal sealed class SelectionState
{
    private static readonly ConditionalWeakTable<ClusterState, SelectionState> ByCluster = [];

    private View _view = new(Array.Empty<DestinationState>(), []);

    /// <summary>A free-running counter for rotations and tie-breaks.</summary>
    public int Counter;

    public static SelectionState Of(ClusterState cluster, IReadOnlyList<DestinationState> available) =>
        available is GroupDestinations group ? group.Selection : ByCluster.GetValue(cluster, static _ => new SelectionState());

    /// <summary>The view of <paramref name="available"/>, rebuilt only when YARP has replaced that list.</summary>
    public DestinationState[] Ordered(IReadOnlyList<DestinationState> available)
    {
        var view = Volatile.Read(ref _view);
        if (ReferenceEquals(view.Source, available))
        {
            return view.Ordered;
        }

        var ordered = available.Where(d => DestinationMetadata.WeightOf(d) > 0).OrderBy(DestinationMetadata.OrderOf).ToArray();
        Volatile.Write(ref _view, new View(available, ordered));
        return ordered;
    }

    private sealed record View(IReadOnlyList<DestinationState> Source, DestinationState[] Ordered);
}
