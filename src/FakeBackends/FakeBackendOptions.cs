using System.Net;
using FakeBackends.Behaviors;

namespace FakeBackends;

/// <summary>How one fake backend listens and behaves.</summary>
public sealed record FakeBackendOptions
{
    /// <summary>The name it reports in every response (<c>server</c>, and the <c>X-Backend</c> header).</summary>
    public required string Name { get; init; }

    /// <summary>Port to listen on; 0 picks a free one.</summary>
    public int Port { get; init; }

    /// <summary>Address to listen on; loopback unless told otherwise.</summary>
    public IPAddress Bind { get; init; } = IPAddress.Loopback;

    /// <summary>How it answers, in order (none: healthy). See <see cref="BehaviorCatalog"/>.</summary>
    public IReadOnlyList<IBehavior> Behaviors { get; init; } = [];

    /// <summary>The clock <c>/health</c> is judged by; the behaviors' own clocks should be the same.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>A balancer's control plane to talk to; none by default.</summary>
    public IPEndPoint? Register { get; init; }

    /// <summary>With <see cref="Register"/>: register on every start and restart (as a self-registering process does).</summary>
    public bool RegisterOnStart { get; init; } = true;

    /// <summary>Paths to register with (only these are routed here); none for every path.</summary>
    public IReadOnlyList<string> Paths { get; init; } = [];

    /// <summary>Client networks to register with (only these clients are routed here); none for every client.</summary>
    public IReadOnlyList<IPNetwork> Clients { get; init; } = [];

    /// <summary>Weight to register with; the balancer's default (1) when null.</summary>
    public int? Weight { get; init; }
}
