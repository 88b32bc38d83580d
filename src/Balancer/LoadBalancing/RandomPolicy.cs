using Balancer.Proxy;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// A uniformly random backend, or, when weights differ, one drawn in proportion to weight through Vose's alias
/// table (built once per change of the available set): one random number per pick, O(1).
/// </summary>
internal sealed class RandomPolicy(Random random) : ILoadBalancingPolicy, IExplainingPolicy
{
    public string Name => AlgorithmNames.Random;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var table = SelectionState.Of(cluster, availableDestinations).Compile(availableDestinations, cluster, static view => new AliasTable(view.Items, view.Weights));
        return table.Pick((ulong)random.NextInt64());
    }

    public PickReason Explain(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> available, DestinationState picked) =>
        available.Select(DestinationMetadata.WeightOf).Where(w => w > 0).Distinct().Count() <= 1
            ? new($"random: a uniform draw over {available.Count}")
            : new($"random: a draw in proportion to weight over {PickReason.Listed([.. WeightedRoundRobinPolicy.Weighted(available)])}");
}

/// <summary>Vose's alias method: an O(n) table from which a weighted draw is one random number.</summary>
internal sealed class AliasTable
{
    private readonly DestinationState[] _items;
    private readonly Column[] _columns; // each column holds both its backends: a draw is one memory access, not two
    private readonly bool _uniform;

    public AliasTable(DestinationState[] items, int[] weights)
    {
        _items = items;
        var n = items.Length;
        _columns = new Column[n];
        _uniform = weights.Distinct().Count() <= 1;
        if (_uniform || n == 0)
        {
            return;
        }

        double total = weights.Sum(w => (long)w);
        var scaled = weights.Select(w => w * n / total).ToArray();
        var small = new Stack<int>();
        var large = new Stack<int>();
        for (var i = 0; i < n; i++)
        {
            (scaled[i] < 1 ? small : large).Push(i);
        }

        while (small.Count > 0 && large.Count > 0)
        {
            var s = small.Pop();
            var l = large.Peek();
            _columns[s] = new Column((uint)(scaled[s] * (1u << 31)), items[s], items[l]);
            scaled[l] -= 1 - scaled[s];
            if (scaled[l] < 1)
            {
                small.Push(large.Pop());
            }
        }

        foreach (var i in small.Concat(large))
        {
            _columns[i] = new Column(1u << 31, items[i], items[i]); // what is left is (up to rounding) exactly one: always stay
        }
    }

    /// <summary>Every weight is the same: a draw is a uniform one.</summary>
    public bool IsUniform => _uniform;

    /// <summary>A draw from 63 random bits: the low 32 choose the column, the next 31 the coin.</summary>
    public DestinationState? Pick(ulong bits)
    {
        var n = (uint)_items.Length;
        if (n == 0)
        {
            return null;
        }

        var column = (int)(((bits & 0xFFFFFFFF) * n) >> 32);
        if (_uniform)
        {
            return _items[column];
        }

        var coin = (uint)(bits >> 32) & 0x7FFFFFFF;
        var entry = _columns[column];
        return coin < entry.Keep ? entry.Self : entry.Alias;
    }

    /// <param name="Keep">The chance, out of 2^31, that a draw landing on this column stays on it.</param>
    /// <param name="Self">The column's own backend.</param>
    /// <param name="Alias">Where it goes otherwise.</param>
    private readonly record struct Column(uint Keep, DestinationState Self, DestinationState Alias);
}
