using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Google's Maglev lookup table. Every backend has a pseudo-random permutation of the M slots (from hashes of its
/// address), and backends take turns claiming their next free slot until the table is full, a backend of weight w
/// taking w turns for each turn of the heaviest one. A key's backend is one table read. Every backend ends up with
/// its share of slots to within one; the table is a function of the set of backends alone, so every instance and
/// every restart builds the same one. When the set changes, nearly every slot keeps its backend: those of a
/// removed backend move, those a new backend claims move to it, and a small further fraction shifts between
/// remaining backends (measured in the tests; this is Maglev's trade for O(1) lookups at any size).
/// The table size depends on the number of backends only through a doubling ladder (at least
/// <see cref="SlotsPerBackend"/> slots each), so it changes, and keys reshuffle, only when a pool crosses a
/// doubling: at 656, 1311, 2622 ... backends.
/// </summary>
internal sealed class MaglevTable
{
    /// <summary>Slots per backend aimed for (within the table's size limits): more slots, finer balance.</summary>
    public const int SlotsPerBackend = 100;

    private const int Rungs = 9; // 65,537 ... 16,777,259 slots

    private readonly DestinationState[] _items;
    private readonly int[] _table;

    public MaglevTable(DestinationState[] items, int[] weights)
    {
        _items = items;
        if (items.Length == 0)
        {
            _table = [];
            return;
        }

        var size = SizeFor(items.Length);
        _table = new int[size];
        Array.Fill(_table, -1);
        // Backend i visits slots offset, offset + skip, offset + 2·skip, ... (mod size): a permutation, since size is prime.
        var next = new int[items.Length];
        var skip = new int[items.Length];
        var credit = new long[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            var address = items[i].DestinationId;
            next[i] = (int)(StableHash.Of(address, 0x6d61676c) % (ulong)size);
            skip[i] = (int)(StableHash.Of(address, 0x65763121) % (ulong)(size - 1)) + 1;
        }

        var heaviest = weights.Max();
        var filled = 0;
        while (true)
        {
            for (var i = 0; i < items.Length; i++)
            {
                credit[i] += weights[i];
                while (credit[i] >= heaviest)
                {
                    credit[i] -= heaviest;
                    var slot = next[i];
                    while (_table[slot] >= 0)
                    {
                        slot = Step(slot, skip[i], size);
                    }

                    _table[slot] = i;
                    next[i] = Step(slot, skip[i], size);
                    if (++filled == size)
                    {
                        return;
                    }
                }
            }
        }
    }

    public int Size => _table.Length;

    private static int Step(int slot, int skip, int size)
    {
        var next = slot + skip; // both below size, which is below 2^30: no overflow, and no division
        return next >= size ? next - size : next;
    }

    /// <summary>The smallest prime of the ladder 65,536·2^k, for k up to 8, giving each backend enough slots.</summary>
    public static int SizeFor(int backends)
    {
        for (var rung = 0; ; rung++)
        {
            var size = NextPrime(65536 << rung);
            if (rung == Rungs - 1 || (long)backends * SlotsPerBackend <= size)
            {
                return size;
            }
        }
    }

    public DestinationState? Lookup(ulong keyHash) => _table.Length == 0 ? null : _items[_table[SlotOf(keyHash)]];

    /// <summary>The slot a key reads. The table must not be empty.</summary>
    public int SlotOf(ulong keyHash) => (int)(keyHash % (ulong)_table.Length);

    private static int NextPrime(int from)
    {
        for (var candidate = from | 1; ; candidate += 2)
        {
            var prime = true;
            for (var d = 3; (long)d * d <= candidate; d += 2)
            {
                if (candidate % d == 0)
                {
                    prime = false;
                    break;
                }
            }

            if (prime)
            {
                return candidate;
            }
        }
    }
}
