using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Balancer.Proxy;

/// <summary>
/// Per request: which try this is and what the steps of the proxy pipeline tell each other about it
/// (set by <see cref="RetryStep"/>).
/// </summary>
internal sealed class AttemptFeature
{
    private CancellationTokenSource? _perTry;

    /// <summary>1 for the first try.</summary>
    public int Number { get; set; }

    public int Retries => Number - 1;

    /// <summary>The backends this try could go to, before load balancing chose one.</summary>
    public IReadOnlyList<DestinationState> Candidates { get; set; } = [];

    /// <summary>A held-back status may be retried: tries and backends are left, the method is idempotent, the body can be sent again.</summary>
    public bool StatusRetryAllowed { get; set; }

    /// <summary>The retry budget of the request's pool.</summary>
    public RetryBudget Budget { get; set; } = null!;

    /// <summary>The retryable status the response transform held back, so the request can go elsewhere.</summary>
    public int? HeldBackStatus { get; set; }

    /// <summary>True when this try ran out of its response-headers timeout (the client still waiting).</summary>
    public bool TimedOut { get; private set; }

    public void StartTry(CancellationTokenSource perTry)
    {
        _perTry = perTry;
        TimedOut = false;
        HeldBackStatus = null;
    }

    /// <summary>Response headers arrived: the rest of the response is governed by the activity timeout alone.</summary>
    public void HeadersArrived() => _perTry?.CancelAfter(Timeout.InfiniteTimeSpan);

    public void EndTry(CancellationToken client)
    {
        TimedOut = _perTry?.IsCancellationRequested == true && !client.IsCancellationRequested;
        _perTry = null;
    }
}

/// <summary>An error the proxy reports itself (YARP's own feature class is internal).</summary>
internal sealed class ProxyErrorFeature(ForwarderError error, Exception? exception = null) : IForwarderErrorFeature
{
    public ForwarderError Error { get; } = error;

    public Exception? Exception { get; } = exception;
}
