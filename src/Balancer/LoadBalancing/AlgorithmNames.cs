using System.Collections.Frozen;

namespace Balancer.LoadBalancing;

/// <summary>
/// Canonical names of the load-balancing algorithms, and the spellings other balancers use for them
/// (BalanceHub, GoBalancer, nginx, HAProxy, YARP), accepted case-insensitively with '_' or '-'.
/// </summary>
public static class AlgorithmNames
{
    public const string RoundRobin = "round-robin";
    public const string WeightedRoundRobin = "weighted-round-robin";
    public const string LeastConnections = "least-connections";
    public const string WeightedLeastConnections = "weighted-least-connections";
    public const string PowerOfTwo = "power-of-two";
    public const string Random = "random";
    public const string IpHash = "ip-hash";
    public const string ConsistentHash = "consistent-hash";

    /// <summary>Every algorithm, by canonical name.</summary>
    public static readonly IReadOnlyList<string> All =
        [RoundRobin, WeightedRoundRobin, LeastConnections, WeightedLeastConnections, PowerOfTwo, Random, IpHash, ConsistentHash];

    private static readonly FrozenDictionary<string, string> Aliases = new Dictionary<string, string>
    {
        ["round-robin"] = RoundRobin,
        ["roundrobin"] = RoundRobin,
        ["rr"] = RoundRobin,
        ["weighted-round-robin"] = WeightedRoundRobin,
        ["weighted-roundrobin"] = WeightedRoundRobin,
        ["smooth-weighted-round-robin"] = WeightedRoundRobin,
        ["wrr"] = WeightedRoundRobin,
        ["least-connections"] = LeastConnections,
        ["least-connection"] = LeastConnections,
        ["least-connected"] = LeastConnections,
        ["least-conn"] = LeastConnections,
        ["leastconn"] = LeastConnections,
        ["least-requests"] = LeastConnections,
        ["leastrequests"] = LeastConnections,
        ["weighted-least-connections"] = WeightedLeastConnections,
        ["weighted"] = WeightedLeastConnections,
        ["wlc"] = WeightedLeastConnections,
        ["power-of-two"] = PowerOfTwo,
        ["power-of-two-choices"] = PowerOfTwo,
        ["poweroftwochoices"] = PowerOfTwo,
        ["p2c"] = PowerOfTwo,
        ["random"] = Random,
        ["ip-hash"] = IpHash,
        ["iphash"] = IpHash,
        ["source"] = IpHash,
        ["consistent-hash"] = ConsistentHash,
        ["consistent-hashing"] = ConsistentHash,
        ["ring-hash"] = ConsistentHash,
        ["ketama"] = ConsistentHash,
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    /// <summary>The canonical name a spelling means; null if none.</summary>
    public static string? Canonicalize(string spelling) =>
        Aliases.TryGetValue(spelling.Trim().Replace('_', '-').Replace(' ', '-'), out var canonical) ? canonical : null;

    /// <summary>Resolves a spelling to its canonical name; on failure <paramref name="error"/> says why, starting with the spelling given.</summary>
    public static bool TryResolve(string spelling, out string canonical, out string error)
    {
        error = "";
        canonical = Canonicalize(spelling) ?? "";
        if (canonical.Length > 0)
        {
            return true;
        }

        error = $"{spelling} is not a known algorithm; use one of {string.Join(", ", All)}";
        return false;
    }
}
