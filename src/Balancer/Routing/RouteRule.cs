namespace Balancer.Routing;

/// <summary>
/// One entry of the route table: what a request must match (every condition given) and the pool it then goes to.
/// Routes from <c>routes:</c>, each pool's <c>paths</c> (a prefix each) and the default pool's catch-all, in the order
/// they are tried (<see cref="RouteTable"/> says how that order is decided).
/// </summary>
public sealed record RouteRule
{
    /// <summary>Unique; what metrics, logs and the decision trace call it.</summary>
    public required string Name { get; init; }

    public required string Pool { get; init; }

    /// <summary>Higher is tried first; 0 unless given.</summary>
    public int Priority { get; init; }

    /// <summary>Host names (<c>api.example.com</c>, <c>*.example.com</c>, optionally with <c>:port</c>); any of them; empty for any host.</summary>
    public IReadOnlyList<string> Hosts { get; init; } = [];

    /// <summary>The path condition; null for any path.</summary>
    public PathMatch? Path { get; init; }

    /// <summary>Upper-case methods, any of them; empty for any method.</summary>
    public IReadOnlyList<string> Methods { get; init; } = [];

    /// <summary>Request header conditions, all of them.</summary>
    public IReadOnlyList<ValueMatch> Headers { get; init; } = [];

    /// <summary>Query parameter conditions, all of them.</summary>
    public IReadOnlyList<ValueMatch> Query { get; init; } = [];

    /// <summary>The default pool's route for everything no other route matches: always tried last.</summary>
    public bool IsCatchAll { get; init; }

    /// <summary>The configuration key it was written at (<c>routes:2</c>, <c>pools:0:paths:1</c>), for messages.</summary>
    public string Origin { get; init; } = "";

    /// <summary>The conditions in a canonical form: two routes with equal signatures match exactly the same requests.</summary>
    internal string Signature =>
        string.Join('\n',
            string.Join(',', Hosts.Select(h => h.ToLowerInvariant()).Order(StringComparer.Ordinal)),
            Path?.Signature ?? "",
            string.Join(',', Methods.Order(StringComparer.Ordinal)),
            string.Join(',', Headers.Select(h => h.Signature).Order(StringComparer.Ordinal)),
            string.Join(',', Query.Select(q => q.Signature).Order(StringComparer.Ordinal)));
}
