using Balancer.Proxy;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Strict rotation over the available backends, in pool order. When the set changes (a backend fails a health
/// check, joins or leaves), the rotation carries on after the backend picked last instead of starting over.
/// </summary>
internal sealed class RoundRobinPolicy : ILoadBalancingPolicy, IExplainingPolicy
{
    public string Name => AlgorithmNames.RoundRobin;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var state = SelectionState.Of(cluster, availableDestinations);
        var view = state.Compile(availableDestinations, cluster, static view => Continue(view));
        if (view.Items.Length == 0)
        {
            return null;
        }

        var i = (uint)(Interlocked.Increment(ref state.Counter) - 1) % (uint)view.Items.Length;
        Volatile.Write(ref state.LastOrder, view.Orders[i]);
        return view.Items[i];
    }

    public PickReason Explain(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> available, DestinationState picked) =>
        new($"round-robin: next in the rotation over {available.Count} in pool order ({PickReason.Listed([.. Ordered(available)])})");

    internal static IEnumerable<string> Ordered(IReadOnlyList<DestinationState> available) =>
        available.Where(d => DestinationMetadata.WeightOf(d) > 0).OrderBy(DestinationMetadata.OrderOf).Select(d => d.Model.Config.Address);

    /// <summary>A new view whose rotation starts at the first backend after the one picked last, in pool order.</summary>
    private static RotationView Continue(DestinationView view)
    {
        var last = Volatile.Read(ref view.State.LastOrder);
        var next = Array.BinarySearch(view.Orders, last);
        next = next >= 0 ? next + 1 : ~next;
        Volatile.Write(ref view.State.Counter, view.Items.Length == 0 ? 0 : next % view.Items.Length);
        return new RotationView(view.Items, view.Orders);
    }

    private sealed record RotationView(DestinationState[] Items, long[] Orders);
}
