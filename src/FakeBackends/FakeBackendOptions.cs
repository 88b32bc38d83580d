using System.Net;

namespace FakeBackends;

/// <summary>How one fake backend listens and behaves.</summary>
public sealed record FakeBackendOptions
{
    /// <summary>The name it reports in every response (<c>server</c>).</summary>
    public required string Name { get; init; }

    /// <summary>Port to listen on; 0 picks a free one.</summary>
    public int Port { get; init; }

    /// <summary>Address to listen on; loopback unless told otherwise.</summary>
    public IPAddress Bind { get; init; } = IPAddress.Loopback;

    /// <summary>Delay before answering any request but <c>/health</c>.</summary>
    public TimeSpan Latency { get; init; }

    /// <summary>When set, requests (but <c>/health</c>) fail with this status, at <see cref="FailRate"/>.</summary>
    public int? FailStatus { get; init; }

    /// <summary>Share of requests that fail when <see cref="FailStatus"/> is set, 0..1.</summary>
    public double FailRate { get; init; } = 1.0;

    /// <summary>When true, <c>/health</c> answers 503.</summary>
    public bool Unhealthy { get; init; }

    /// <summary>When true, requests (but <c>/health</c>) are read and never answered, until the client gives up.</summary>
    public bool Hang { get; init; }

    /// <summary>A balancer's control plane to register with on start and leave on stop; none by default.</summary>
    public IPEndPoint? Register { get; init; }

    /// <summary>Paths to register with (only these are routed here); none for every path.</summary>
    public IReadOnlyList<string> Paths { get; init; } = [];

    /// <summary>Client networks to register with (only these clients are routed here); none for every client.</summary>
    public IReadOnlyList<IPNetwork> Clients { get; init; } = [];

    /// <summary>Weight to register with; the balancer's default (1) when null.</summary>
    public int? Weight { get; init; }
}
