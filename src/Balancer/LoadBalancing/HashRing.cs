using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// A consistent-hash ring (ketama): each backend places virtual-nodes × weight points on a 64-bit ring (the same
/// points whatever the other backends are), and a key belongs to the first point at or after its hash. A new backend takes keys only for itself, from just before
/// its points; a removed one hands only its own keys to the points after them. A lookup is O(1): an index over the
/// top bits of the ring finds the first candidate point, and the next point is on average one or two steps away.
/// </summary>
internal sealed class HashRing
{
    /// <summary>
    /// At most this many points in all (16 bytes each, 256 MB): beyond it, points per unit of weight are reduced to fit, which makes
    /// them depend on the pool's total weight, so keys reshuffle as a pool crosses that size. Lower virtual-nodes
    /// for pools that large.
    /// </summary>
    public const int MaxPoints = 1 << 24;

    private readonly Point[] _points; // hash and owner side by side: one memory access for both
    private readonly int[] _index;
    private readonly int _shift;

    public HashRing(DestinationState[] items, int[] weights, int virtualNodes)
    {
        var totalWeight = weights.Sum(w => (long)w);
        var perWeight = totalWeight * virtualNodes <= MaxPoints ? virtualNodes : Math.Max(1, (int)(MaxPoints / Math.Max(totalWeight, 1)));
        var counts = weights.Select(w => (int)Math.Min((long)w * perWeight, MaxPoints)).ToArray();
        var total = counts.Sum(c => (long)c);

        var hashes = new ulong[total];
        var owners = new int[total];
        var p = 0;
        for (var i = 0; i < items.Length; i++)
        {
            var address = items[i].DestinationId;
            for (var j = 0; j < counts[i]; j++, p++)
            {
                hashes[p] = StableHash.Of(address, (ulong)j + 1);
                owners[p] = i;
            }
        }

        Array.Sort(hashes, owners); // sorting primitive keys is much faster than sorting structs
        _points = new Point[total];
        for (var i = 0; i < total; i++)
        {
            _points[i] = new Point(hashes[i], items[owners[i]]);
        }

        // index[k]: the first point whose top bits are at least k.
        var bits = Math.Clamp((int)Math.Ceiling(Math.Log2(Math.Max(total, 2))), 8, 24);
        _shift = 64 - bits;
        _index = new int[(1 << bits) + 1];
        var next = 0;
        for (var k = 0; k <= 1 << bits; k++)
        {
            while (next < _points.Length && (_points[next].Hash >> _shift) < (ulong)k)
            {
                next++;
            }

            _index[k] = next;
        }
    }

    public int Points => _points.Length;

    public DestinationState? Lookup(ulong keyHash) => _points.Length == 0 ? null : _points[PointOf(keyHash)].Owner;

    /// <summary>The index of the point a key belongs to: the first at or after its hash, wrapping round. The ring must not be empty.</summary>
    public int PointOf(ulong keyHash)
    {
        var i = _index[(int)(keyHash >> _shift)];
        while (i < _points.Length && _points[i].Hash < keyHash)
        {
            i++;
        }

        return i == _points.Length ? 0 : i;
    }

    private readonly record struct Point(ulong Hash, DestinationState Owner);
}
