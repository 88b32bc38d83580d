using System.Collections;
using System.Collections.Frozen;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Balancer.LoadBalancing;
using Balancer.Registry;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace Balancer.Proxy;

/// <summary>
/// Which backends of a pool may serve a request, by its path and its client. Built once per pool change:
/// a trie of the path prefixes backends registered (the longest one matching the request wins; with none,
/// the backends registered without paths serve), and for each such group a bit trie of the client networks
/// its backends are restricted to. A lookup walks the path's segments and the client address's bits:
/// no allocation, O(path depth + address bits), whatever the number of backends.
/// </summary>
internal sealed class PoolRestrictions
{
    /// <summary>Cluster metadata marking a pool that has restrictions, so a missing index fails closed.</summary>
    public const string MetadataKey = "lb.restricted";

    // The index each config was compiled with (never changed), and the one in force for a config YARP kept when a
    // later one compared equal to it (set each time a config is applied).
    private static readonly ConditionalWeakTable<ClusterConfig, PoolRestrictions> Compiled = [];
    private static readonly ConditionalWeakTable<ClusterConfig, PoolRestrictions> Live = [];

    private readonly PathNode _root;
    private readonly PathGroup _unclaimed;

    private PoolRestrictions(PathNode root, PathGroup unclaimed)
    {
        _root = root;
        _unclaimed = unclaimed;
    }

    /// <summary>The index for a pool, or null when none of its backends is restricted.</summary>
    public static PoolRestrictions? Build(PoolSnapshot pool)
    {
        if (!pool.Backends.Any(b => b.IsRestricted))
        {
            return null;
        }

        var claims = new Dictionary<string, List<BackendEntry>>(StringComparer.OrdinalIgnoreCase);
        foreach (var backend in pool.Backends)
        {
            foreach (var path in backend.Paths)
            {
                if (!claims.TryGetValue(path, out var members))
                {
                    claims[path] = members = [];
                }

                members.Add(backend);
            }
        }

        var root = PathNode.Build(claims.Select(c => (Segments(c.Key), new PathGroup(c.Value))));
        return new PoolRestrictions(root, new PathGroup([.. pool.Backends.Where(b => b.Paths.Count == 0)]));
    }

    /// <summary>Records the index <paramref name="cluster"/> was compiled with.</summary>
    public static void Attach(ClusterConfig cluster, PoolRestrictions restrictions) => Compiled.AddOrUpdate(cluster, restrictions);

    /// <summary>The index <paramref name="cluster"/> was compiled with, whatever is in force.</summary>
    public static PoolRestrictions? CompiledWith(ClusterConfig cluster) => Compiled.TryGetValue(cluster, out var restrictions) ? restrictions : null;

    /// <summary>
    /// YARP applied <paramref name="applied"/> but routes with <paramref name="held"/>, the config it already had (equal
    /// to it but for the index): requests routed with <paramref name="held"/> use the index of <paramref name="applied"/>.
    /// Called on every apply, also when the two are one object, so that re-applying an earlier config restores its rules.
    /// </summary>
    public static void Apply(ClusterConfig held, ClusterConfig applied)
    {
        if (CompiledWith(applied) is { } restrictions)
        {
            Live.AddOrUpdate(held, restrictions);
        }
    }

    /// <summary>The index in force for requests routed with this cluster config.</summary>
    public static PoolRestrictions? For(ClusterConfig cluster) =>
        Live.TryGetValue(cluster, out var live) ? live : CompiledWith(cluster);

    /// <summary>The backends that claim the longest registered prefix of <paramref name="path"/>, or those that claim none.</summary>
    public PathGroup Select(ReadOnlySpan<char> path)
    {
        var best = _root.Group ?? _unclaimed;
        var node = _root;
        var rest = path.TrimStart('/');
        while (rest.Length > 0)
        {
            var slash = rest.IndexOf('/');
            var segment = slash < 0 ? rest : rest[..slash];
            if (!node.TryGetChild(segment, out node))
            {
                break;
            }

            best = node.Group ?? best;
            rest = slash < 0 ? [] : rest[(slash + 1)..];
        }

        return best;
    }

    private static string[] Segments(string path) => path.Split('/', StringSplitOptions.RemoveEmptyEntries);

    private sealed class PathNode
    {
        private FrozenDictionary<string, PathNode> _children = FrozenDictionary<string, PathNode>.Empty;
        private FrozenDictionary<string, PathNode>.AlternateLookup<ReadOnlySpan<char>> _lookup;

        public PathGroup? Group { get; private set; }

        public static PathNode Build(IEnumerable<(string[] Segments, PathGroup Group)> claims)
        {
            var root = new Builder();
            foreach (var (segments, group) in claims)
            {
                var node = root;
                foreach (var segment in segments)
                {
                    if (!node.Children.TryGetValue(segment, out var child))
                    {
                        node.Children[segment] = child = new Builder();
                    }

                    node = child;
                }

                node.Group = group;
            }

            return root.Freeze();
        }

        public bool TryGetChild(ReadOnlySpan<char> segment, out PathNode child) => _lookup.TryGetValue(segment, out child!);

        private sealed class Builder
        {
            public Dictionary<string, Builder> Children { get; } = new(StringComparer.OrdinalIgnoreCase);

            public PathGroup? Group { get; set; }

            public PathNode Freeze()
            {
                var node = new PathNode { Group = Group };
                node._children = Children.ToFrozenDictionary(c => c.Key, c => c.Value.Freeze(), StringComparer.OrdinalIgnoreCase);
                node._lookup = node._children.GetAlternateLookup<ReadOnlySpan<char>>();
                return node;
            }
        }
    }
}

/// <summary>
/// The backends claiming one path prefix (or none), and who among them admits which clients: a client
/// address selects the members without client restrictions plus those whose networks contain it.
/// </summary>
internal sealed class PathGroup
{
    private readonly MemberSet _unrestricted;
    private readonly ClientTrie? _v4;
    private readonly ClientTrie? _v6;

    private readonly HashSet<string> _members;

    public PathGroup(IReadOnlyList<BackendEntry> members)
    {
        HasMembers = members.Count > 0;
        _members = members.Select(m => m.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var open = members.Where(m => m.Clients.Networks.Count == 0).Select(m => m.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
        _unrestricted = new MemberSet(open, []); // what a client outside every network gets
        var restricted = members.Where(m => m.Clients.Networks.Count > 0).ToList();
        if (restricted.Count > 0)
        {
            _v4 = ClientTrie.Build(open, restricted, AddressFamily.InterNetwork);
            _v6 = ClientTrie.Build(open, restricted, AddressFamily.InterNetworkV6);
        }
    }

    /// <summary>True when some backend claims this group's path (or, for the unclaimed group, serves every path).</summary>
    public bool HasMembers { get; }

    /// <summary>The backend claims this group's path (whichever clients it admits).</summary>
    public bool Serves(string address) => _members.Contains(address);

    /// <summary>The members that admit <paramref name="client"/>; empty when none does.</summary>
    public MemberSet Admitting(IPAddress? client)
    {
        if (client is null || (_v4 is null && _v6 is null))
        {
            return _unrestricted;
        }

        if (client.IsIPv4MappedToIPv6)
        {
            client = client.MapToIPv4();
        }

        var trie = client.AddressFamily == AddressFamily.InterNetwork ? _v4 : _v6;
        return trie?.Lookup(client) ?? _unrestricted;
    }

    /// <summary>A binary trie over address bits; nodes where a network ends hold the members admitting that prefix.</summary>
    private sealed class ClientTrie
    {
        private readonly Node _root;

        private ClientTrie(Node root) => _root = root;

        public static ClientTrie? Build(HashSet<string> open, List<BackendEntry> restricted, AddressFamily family)
        {
            var root = new Node();
            var any = false;
            foreach (var member in restricted)
            {
                foreach (var network in member.Clients.Networks.Where(n => n.BaseAddress.AddressFamily == family))
                {
                    var bytes = network.BaseAddress.GetAddressBytes();
                    var node = root;
                    for (var bit = 0; bit < network.PrefixLength; bit++)
                    {
                        node = Bit(bytes, bit) ? node.One ??= new Node() : node.Zero ??= new Node();
                    }

                    (node.Direct ??= []).Add(member.Address);
                    any = true;
                }
            }

            if (!any)
            {
                return null;
            }

            Seal(root, new HashSet<string>(StringComparer.OrdinalIgnoreCase));
            return new ClientTrie(root);

            void Seal(Node node, HashSet<string> inherited)
            {
                if (node.Direct is not null)
                {
                    inherited = new HashSet<string>(inherited.Concat(node.Direct), StringComparer.OrdinalIgnoreCase);
                    node.Set = new MemberSet(open, inherited);
                }

                if (node.Zero is not null)
                {
                    Seal(node.Zero, inherited);
                }

                if (node.One is not null)
                {
                    Seal(node.One, inherited);
                }
            }
        }

        public MemberSet? Lookup(IPAddress client)
        {
            Span<byte> bytes = stackalloc byte[16];
            client.TryWriteBytes(bytes, out var written);
            var node = _root;
            var best = node.Set;
            for (var bit = 0; bit < written * 8; bit++)
            {
                node = Bit(bytes, bit) ? node.One : node.Zero;
                if (node is null)
                {
                    break;
                }

                best = node.Set ?? best;
            }

            return best;
        }

        private static bool Bit(ReadOnlySpan<byte> bytes, int bit) => (bytes[bit >> 3] & (0x80 >> (bit & 7))) != 0;

        private sealed class Node
        {
            public Node? Zero;
            public Node? One;
            public List<string>? Direct;
            public MemberSet? Set;
        }
    }
}

/// <summary>
/// A set of backends that may serve a request: those without client restrictions (shared by every set of a
/// group) plus those admitting the client. Its intersection with YARP's available destinations is cached and
/// recomputed only when YARP replaces that list (membership or health changed). Plain hash sets: these are
/// rebuilt with the pool, where frozen sets would cost more to build than they save.
/// </summary>
internal sealed class MemberSet(HashSet<string> open, HashSet<string> admitted)
{
    private Cache? _cache;

    /// <summary>Selection state (rotation counters) for policies, stable while this set exists.</summary>
    public SelectionState Selection { get; } = new();

    public bool IsEmpty => open.Count == 0 && admitted.Count == 0;

    public IReadOnlyList<DestinationState> Filter(IReadOnlyList<DestinationState> available)
    {
        var cache = Volatile.Read(ref _cache);
        if (cache is not null && ReferenceEquals(cache.Source, available))
        {
            return cache.Result;
        }

        var members = available.Where(d => open.Contains(d.DestinationId) || admitted.Contains(d.DestinationId)).ToArray();
        var result = new GroupDestinations(members, Selection);
        Volatile.Write(ref _cache, new Cache(available, result));
        return result;
    }

    private sealed record Cache(IReadOnlyList<DestinationState> Source, GroupDestinations Result);
}

/// <summary>A restricted list of destinations, carrying the selection state of the group it came from.</summary>
internal sealed class GroupDestinations(DestinationState[] items, SelectionState selection) : IReadOnlyList<DestinationState>
{
    public SelectionState Selection => selection;

    public int Count => items.Length;

    public DestinationState this[int index] => items[index];

    public IEnumerator<DestinationState> GetEnumerator() => ((IEnumerable<DestinationState>)items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
