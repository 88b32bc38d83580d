using System.Runtime.CompilerServices;
using Balancer.Proxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// What a policy keeps between picks for one group of destinations: a counter, and a structure compiled from the
/// group's available destinations (in pool order, without those of weight 0). A group is a cluster, or one
/// restricted subset of it (<see cref="GroupDestinations"/>), so interleaved requests to different groups do not
/// disturb each other. YARP hands policies a new list instance whenever membership or health changes; the
/// structure is rebuilt only then, never per pick.
/// </summary>
internal sealed class SelectionState
{
    private static readonly ConditionalWeakTable<ClusterState, SelectionState> ByCluster = [];

    private readonly Lock _building = new();
    private Compiled? _compiled;

    /// <summary>A free-running counter for rotations and tie-breaks.</summary>
    public int Counter;

    /// <summary>The pool order of the destination picked last, so a rotation can carry on after a change.</summary>
    public long LastOrder = long.MinValue;

    public static SelectionState Of(ClusterState cluster, IReadOnlyList<DestinationState> available) =>
        available is GroupDestinations group ? group.Selection : ByCluster.GetValue(cluster, static _ => new SelectionState());

    /// <summary>
    /// The structure <paramref name="build"/> makes of <paramref name="available"/>, rebuilt only when YARP has
    /// replaced that list. <paramref name="build"/> should be a static lambda: it is passed the view and the state.
    /// One caller builds; callers arriving meanwhile wait for that build rather than repeat it (at a million
    /// backends a build takes seconds, and a burst of requests after a health change would otherwise each do it).
    /// </summary>
    public T Compile<T>(IReadOnlyList<DestinationState> available, ClusterState cluster, Func<DestinationView, T> build)
        where T : class
    {
        var compiled = Volatile.Read(ref _compiled);
        if (compiled is not null && ReferenceEquals(compiled.Source, available) && compiled.Value is T value)
        {
            return value;
        }

        lock (_building)
        {
            compiled = Volatile.Read(ref _compiled);
            return compiled is not null && ReferenceEquals(compiled.Source, available) && compiled.Value is T built
                ? built
                : Build(available, cluster, build);
        }
    }

    private T Build<T>(IReadOnlyList<DestinationState> available, ClusterState cluster, Func<DestinationView, T> build)
        where T : class
    {
        var ordered = available.Where(d => DestinationMetadata.WeightOf(d) > 0).OrderBy(DestinationMetadata.OrderOf).ToArray();
        var built = build(new DestinationView(
            ordered,
            [.. ordered.Select(DestinationMetadata.WeightOf)],
            [.. ordered.Select(DestinationMetadata.OrderOf)],
            cluster,
            this));
        Volatile.Write(ref _compiled, new Compiled(available, built));
        return built;
    }

    private sealed record Compiled(IReadOnlyList<DestinationState> Source, object Value);
}

/// <summary>The input of a policy's compiled structure: available destinations in pool order, with their weights and orders.</summary>
internal readonly record struct DestinationView(DestinationState[] Items, int[] Weights, long[] Orders, ClusterState Cluster, SelectionState State);
