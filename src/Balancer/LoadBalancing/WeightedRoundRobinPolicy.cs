using Balancer.Proxy;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Smooth weighted round robin (nginx's): weights 5, 1, 1 give a a b a c a a. The whole period (Σw picks) is
/// computed once per change of the available set; a pick is one array read at a counter. A period too long to
/// hold (over <see cref="MaxSchedule"/> picks) is stepped live instead, under a lock, at O(distinct weights).
/// </summary>
internal sealed class WeightedRoundRobinPolicy : ILoadBalancingPolicy, IExplainingPolicy
{
    public const int MaxSchedule = 1 << 22;

    public string Name => AlgorithmNames.WeightedRoundRobin;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var state = SelectionState.Of(cluster, availableDestinations);
        var schedule = state.Compile(availableDestinations, cluster, static view => Schedule.Build(view));
        return schedule.Next(ref state.Counter);
    }

    public PickReason Explain(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> available, DestinationState picked) =>
        new($"weighted-round-robin: its turn in the smooth schedule of weights {PickReason.Listed([.. Weighted(available)])}");

    internal static IEnumerable<string> Weighted(IReadOnlyList<DestinationState> available) =>
        available.Where(d => DestinationMetadata.WeightOf(d) > 0).OrderBy(DestinationMetadata.OrderOf).Select(d => $"{d.Model.Config.Address}={DestinationMetadata.WeightOf(d)}");

    internal sealed class Schedule
    {
        private readonly DestinationState[] _items;
        private readonly int[]? _slots;
        private readonly SmoothWeightedStepper? _live;
        private readonly Lock _lock = new();

        private Schedule(DestinationState[] items, int[]? slots, SmoothWeightedStepper? live)
        {
            _items = items;
            _slots = slots;
            _live = live;
        }

        public static Schedule Build(DestinationView view)
        {
            Volatile.Write(ref view.State.Counter, 0);
            var stepper = new SmoothWeightedStepper(view.Weights);
            if (view.Items.Length == 0 || stepper.Period > MaxSchedule)
            {
                return new Schedule(view.Items, null, view.Items.Length == 0 ? null : stepper);
            }

            var slots = new int[stepper.Period];
            for (var i = 0; i < slots.Length; i++)
            {
                slots[i] = stepper.Next();
            }

            return new Schedule(view.Items, slots, null);
        }

        public DestinationState? Next(ref int counter)
        {
            if (_slots is not null)
            {
                return _items[_slots[(uint)(Interlocked.Increment(ref counter) - 1) % (uint)_slots.Length]];
            }

            if (_live is null)
            {
                return null;
            }

            lock (_lock)
            {
                return _items[_live.Next()];
            }
        }
    }
}
