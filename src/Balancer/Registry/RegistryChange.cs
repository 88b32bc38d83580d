using System.Net;

namespace Balancer.Registry;

/// <summary>One change to the registered backends. Addresses are normalized <c>scheme://host:port</c>.</summary>
public abstract record RegistryChange(string Address)
{
    /// <summary>
    /// Creates the backend if new (with <paramref name="Weight"/>, default 1), else adds the paths and clients
    /// (idempotent) and sets the weight if given. With <paramref name="MustBeNew"/>, an existing backend is a conflict.
    /// </summary>
    public sealed record Register(
        string Address,
        string Pool,
        int? Weight,
        IReadOnlyList<string> Paths,
        IReadOnlyList<IPNetwork> Clients,
        BackendSource Source,
        bool MustBeNew = false) : RegistryChange(Address);

    /// <summary>Removes the listed paths and clients; with none listed, removes the backend.</summary>
    public sealed record Deregister(string Address, IReadOnlyList<string> Paths, IReadOnlyList<IPNetwork> Clients) : RegistryChange(Address);

    /// <summary>Sets the backend's weight, and replaces its paths or clients: each only when given.</summary>
    public sealed record Update(string Address, int? Weight, IReadOnlyList<string>? Paths = null, IReadOnlyList<IPNetwork>? Clients = null) : RegistryChange(Address);

    /// <summary>Stops new requests to the backend; it is removed once its requests in flight are done (or at the drain timeout).</summary>
    public sealed record Drain(string Address) : RegistryChange(Address);
}

/// <summary>How a change ended.</summary>
public enum ChangeOutcome
{
    /// <summary>Stored and live.</summary>
    Applied,

    /// <summary>The change makes no sense (an unknown pool, ...); nothing changed.</summary>
    Invalid,

    /// <summary>No such backend; nothing changed.</summary>
    NotFound,

    /// <summary>It contradicts what exists (already registered, configured statically); nothing changed.</summary>
    Conflict,

    /// <summary>Storing it or making it live failed; nothing changed.</summary>
    Failed,
}

/// <summary>The answer to a change, with the backend as it now is (when it still exists).</summary>
/// <param name="Created">The change added a backend that was not there before.</param>
public sealed record ChangeResult(ChangeOutcome Outcome, string Message, BackendEntry? Backend = null, bool Created = false)
{
    public bool Succeeded => Outcome == ChangeOutcome.Applied;
}

/// <summary>Makes a snapshot live in the data plane. Called by the registry's single writer.</summary>
public interface IRoutingPublisher
{
    /// <summary>The snapshot in force at start-up, before anything is served.</summary>
    void Initialize(RoutingSnapshot snapshot);

    /// <summary>Completes once <paramref name="snapshot"/> (or a later one) routes traffic; throws if it cannot be made live.</summary>
    Task PublishAsync(RoutingSnapshot snapshot, CancellationToken cancellationToken);
}
