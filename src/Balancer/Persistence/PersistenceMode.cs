namespace Balancer.Persistence;

/// <summary>How a pool keeps a client on one backend.</summary>
public enum PersistenceMode
{
    /// <summary>Every request is the algorithm's to place.</summary>
    None,

    /// <summary>The algorithm places a client's first request; a signed cookie naming that backend brings the rest back to it.</summary>
    Cookie,

    /// <summary>As <see cref="Cookie"/>, carried in a response and request header the client echoes.</summary>
    Header,

    /// <summary>The client address picks the backend (the <c>ip-hash</c> algorithm, whatever the pool names).</summary>
    IpHash,

    /// <summary>The pool's <c>hash-key</c> picks the backend on a ring (the <c>consistent-hash</c> algorithm).</summary>
    ConsistentHash,
}
