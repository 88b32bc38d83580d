namespace Balancer.Registry;

/// <summary>
/// The single owner of routing state. Readers take <see cref="Current"/>, an immutable snapshot.
/// </summary>
public sealed class BackendRegistry(RoutingSnapshot initial)
{
    /// <summary>The snapshot in force.</summary>
    public RoutingSnapshot Current { get; } = initial;
}
