using System.Numerics;

namespace Balancer.LoadBalancing;

/// <summary>
/// nginx's smooth weighted round robin, computed by weight class. At every step nginx adds each backend's weight
/// to its current weight, picks the largest (the first in pool order on a tie) and subtracts the total. Within one
/// weight class the backend with the fewest picks always leads, so a class is a rotation in pool order and only its
/// head competes: a step costs O(distinct weights), not O(backends). Weights are divided by their greatest common
/// divisor first, which leaves the sequence unchanged. The sequence repeats every Σw picks, with each backend
/// picked exactly w times per period.
/// </summary>
internal sealed class SmoothWeightedStepper
{
    private readonly WeightClass[] _classes;
    private readonly long _total;
    private long _step;

    public SmoothWeightedStepper(int[] weights)
    {
        var divisor = weights.Where(w => w > 0).Aggregate(0, (g, w) => (int)BigInteger.GreatestCommonDivisor(g, w));
        divisor = Math.Max(divisor, 1);
        _classes = [.. weights
            .Select((w, i) => (Weight: w / divisor, Index: i))
            .Where(x => x.Weight > 0)
            .GroupBy(x => x.Weight)
            .Select(g => new WeightClass(g.Key, [.. g.Select(x => x.Index)]))];
        _total = _classes.Sum(c => (long)c.Weight * c.Members.Length);
    }

    /// <summary>Picks per period (Σw after dividing by the gcd).</summary>
    public long Period => _total;

    /// <summary>The index (into the weights given) of the next pick.</summary>
    public int Next()
    {
        _step++;
        WeightClass? best = null;
        var bestKey = long.MinValue;
        foreach (var candidate in _classes)
        {
            // nginx's current weight of the class's leading backend: step·w − total·picks.
            var key = (_step * candidate.Weight) - (_total * candidate.Rounds);
            if (key > bestKey || (key == bestKey && candidate.Head < best!.Head))
            {
                best = candidate;
                bestKey = key;
            }
        }

        var picked = best!.Head;
        best.Advance();
        if (_step == _total)
        {
            // After a whole period every current weight is back at zero: start over, so nothing grows.
            _step = 0;
            foreach (var c in _classes)
            {
                c.Rounds = 0;
            }
        }

        return picked;
    }

    private sealed class WeightClass(int weight, int[] members)
    {
        private int _cursor;

        public int Weight { get; } = weight;

        public int[] Members { get; } = members;

        /// <summary>How many times every member of the class has been picked (those before the cursor once more).</summary>
        public long Rounds { get; set; }

        public int Head => Members[_cursor];

        public void Advance()
        {
            if (++_cursor == Members.Length)
            {
                _cursor = 0;
                Rounds++;
            }
        }
    }
}
