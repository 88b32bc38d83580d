using System.Runtime.CompilerServices;
using Balancer.Proxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Requests in flight per backend of one cluster, kept so that the least-loaded backend is found in O(1): the
/// cluster's available backends sit in buckets by in-flight count (one set of buckets per weight class when
/// weights matter), each bucket a FIFO list, with the lowest non-empty bucket tracked as counts change. A backend
/// that gets a request moves to the tail of the next bucket, one that finishes to the tail of the previous one,
/// so equal backends take turns. Counting is done by <see cref="InFlightStep"/> around every proxied request;
/// a pick only reads. All of it under one short lock: each operation is a few pointer moves.
/// </summary>
internal sealed class InFlightTracker
{
    private static readonly ConditionalWeakTable<ClusterState, InFlightTracker> ByCluster = [];
    private static readonly ConditionalWeakTable<ClusterState, InFlightTracker>.CreateValueCallback CreateUnweighted = _ => new InFlightTracker(false);
    private static readonly ConditionalWeakTable<ClusterState, InFlightTracker>.CreateValueCallback CreateWeighted = _ => new InFlightTracker(true);

    private readonly Lock _lock = new();
    private readonly Dictionary<DestinationState, Node> _nodes = new(ReferenceEqualityComparer.Instance);
    private readonly bool _weighted;
    private IReadOnlyList<DestinationState>? _bucketed;
    private WeightClass[] _classes = [];
    private int _rotation;

    private InFlightTracker(bool weighted) => _weighted = weighted;

    /// <summary>The tracker of a cluster, created by its least-connections policy on first use.</summary>
    public static InFlightTracker For(ClusterState cluster, bool weighted) =>
        ByCluster.GetValue(cluster, weighted ? CreateWeighted : CreateUnweighted);

    /// <summary>The tracker of a cluster whose configured algorithm counts requests in flight; null otherwise.</summary>
    public static InFlightTracker? ForPolicy(ClusterState cluster, string? policy) => policy switch
    {
        AlgorithmNames.LeastConnections => For(cluster, weighted: false),
        AlgorithmNames.WeightedLeastConnections => For(cluster, weighted: true),
        _ => null,
    };

    /// <summary>
    /// The backend of <paramref name="available"/> with the fewest requests in flight (per weight, when weighted:
    /// the lowest (in flight + 1) / weight). O(1) for the cluster's whole available set, O(k) for a restricted
    /// subset of k backends.
    /// </summary>
    public DestinationState? Pick(ClusterState cluster, IReadOnlyList<DestinationState> available)
    {
        lock (_lock)
        {
            var clusterWide = cluster.DestinationsState?.AvailableDestinations ?? available;
            if (!ReferenceEquals(_bucketed, clusterWide))
            {
                Rebucket(clusterWide);
            }

            return ReferenceEquals(available, clusterWide) ? FromBuckets() : Scan(available);
        }
    }

    /// <summary>A request to <paramref name="destination"/> started.</summary>
    public void Acquire(DestinationState destination)
    {
        lock (_lock)
        {
            if (!_nodes.TryGetValue(destination, out var node))
            {
                _nodes[destination] = node = new Node(destination, DestinationMetadata.WeightOf(destination));
            }

            Move(node, node.Count + 1);
        }
    }

    /// <summary>A request to <paramref name="destination"/> finished.</summary>
    public void Release(DestinationState destination)
    {
        lock (_lock)
        {
            if (_nodes.TryGetValue(destination, out var node) && node.Count > 0)
            {
                Move(node, node.Count - 1);
            }
        }
    }

    /// <summary>In-flight requests this balancer has sent to <paramref name="destination"/>.</summary>
    public int CountOf(DestinationState destination)
    {
        lock (_lock)
        {
            return _nodes.TryGetValue(destination, out var node) ? node.Count : 0;
        }
    }

    private DestinationState? FromBuckets()
    {
        WeightClass? best = null;
        var n = _classes.Length;
        var start = n == 0 ? 0 : (int)((uint)_rotation++ % (uint)n);
        for (var i = 0; i < n; i++)
        {
            var candidate = _classes[(start + i) % n];
            if (candidate.Members > 0 && (best is null || Lighter(candidate.Min, candidate.Weight, best.Min, best.Weight)))
            {
                best = candidate;
            }
        }

        return best?.Head(best.Min)!.Destination;
    }

    private DestinationState? Scan(IReadOnlyList<DestinationState> available)
    {
        Node? best = null;
        var n = available.Count;
        var start = n == 0 ? 0 : (int)((uint)_rotation++ % (uint)n);
        for (var i = 0; i < n; i++)
        {
            var destination = available[(start + i) % n];
            var known = _nodes.TryGetValue(destination, out var node);
            var weight = known ? node!.Weight : DestinationMetadata.WeightOf(destination);
            if (weight <= 0)
            {
                continue;
            }

            var count = known ? node!.Count : 0;
            if (best is null || Lighter(count, _weighted ? weight : 1, best.Count, _weighted ? best.Weight : 1))
            {
                best = node ?? new Node(destination, weight);
            }
        }

        return best?.Destination;
    }

    /// <summary>(a + 1) / wa &lt; (b + 1) / wb, without division.</summary>
    private static bool Lighter(int a, int wa, int b, int wb) => (long)(a + 1) * wb < (long)(b + 1) * wa;

    private void Rebucket(IReadOnlyList<DestinationState> clusterWide)
    {
        foreach (var node in _nodes.Values)
        {
            node.Class = null;
            node.Previous = node.Next = null;
        }

        var present = new HashSet<DestinationState>(clusterWide, ReferenceEqualityComparer.Instance);
        foreach (var stale in _nodes.Keys.Where(d => !present.Contains(d) && _nodes[d].Count == 0).ToList())
        {
            _nodes.Remove(stale);
        }

        var classes = new Dictionary<int, WeightClass>();
        foreach (var destination in clusterWide.OrderBy(DestinationMetadata.OrderOf))
        {
            var weight = DestinationMetadata.WeightOf(destination);
            if (weight <= 0)
            {
                continue;
            }

            if (!_nodes.TryGetValue(destination, out var node))
            {
                _nodes[destination] = node = new Node(destination, weight);
            }

            var key = _weighted ? weight : 1;
            if (!classes.TryGetValue(key, out var weightClass))
            {
                classes[key] = weightClass = new WeightClass(key);
            }

            node.Class = weightClass;
            weightClass.Append(node);
        }

        _classes = [.. classes.Values];
        _bucketed = clusterWide;
    }

    private static void Move(Node node, int count)
    {
        var weightClass = node.Class;
        if (weightClass is null)
        {
            node.Count = count;
            return;
        }

        weightClass.Unlink(node);
        node.Count = count;
        weightClass.Append(node);
    }

    private sealed class Node(DestinationState destination, int weight)
    {
        public DestinationState Destination { get; } = destination;
        public int Weight { get; } = weight;
        public int Count;
        public Node? Previous;
        public Node? Next;
        public WeightClass? Class;
    }

    /// <summary>The buckets of one weight: bucket c lists, oldest first, the members with c requests in flight.</summary>
    private sealed class WeightClass(int weight)
    {
        private Node?[] _heads = new Node?[4];
        private Node?[] _tails = new Node?[4];

        public int Weight { get; } = weight;
        public int Members { get; private set; }

        // A lower bound of the lowest non-empty bucket, made exact on read: when the lowest bucket empties its member
        // is on its way to the next one up, which then lowers the bound again, so the bound rarely has to climb.
        private int _lowest = int.MaxValue;

        /// <summary>The lowest in-flight count among the members (int.MaxValue when there are none).</summary>
        public int Min
        {
            get
            {
                if (Members == 0)
                {
                    return int.MaxValue;
                }

                while (_heads[_lowest] is null)
                {
                    _lowest++;
                }

                return _lowest;
            }
        }

        public Node? Head(int count) => count < _heads.Length ? _heads[count] : null;

        public void Append(Node node)
        {
            var c = node.Count;
            if (c >= _heads.Length)
            {
                var size = Math.Max(c + 1, _heads.Length * 2);
                Array.Resize(ref _heads, size);
                Array.Resize(ref _tails, size);
            }

            node.Previous = _tails[c];
            node.Next = null;
            if (_tails[c] is { } tail)
            {
                tail.Next = node;
            }
            else
            {
                _heads[c] = node;
            }

            _tails[c] = node;
            Members++;
            _lowest = Math.Min(_lowest, c);
        }

        public void Unlink(Node node)
        {
            var c = node.Count;
            if (node.Previous is { } previous)
            {
                previous.Next = node.Next;
            }
            else
            {
                _heads[c] = node.Next;
            }

            if (node.Next is { } next)
            {
                next.Previous = node.Previous;
            }
            else
            {
                _tails[c] = node.Previous;
            }

            node.Previous = node.Next = null;
            if (--Members == 0)
            {
                _lowest = int.MaxValue;
            }
        }
    }
}
