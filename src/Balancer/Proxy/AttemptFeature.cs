using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Balancer.Proxy;

/// <summary>
/// Per request: which try this is and what the steps of the proxy pipeline tell each other about it
/// (set by <see cref="RetryStep"/>).
/// </summary>
internal sealed class AttemptFeature
{
    /// <summary>The pool's retry settings (its own, or the top-level ones).</summary>
    public Balancer.Configuration.RetryOptions Settings { get; init; } = null!;

    /// <summary>The backend a sticky session pinned this try to, if any (the persistence policy reads it for the response).</summary>
    public object? Pinned { get; set; }

    private CancellationTokenSource? _perTry;
    private CancellationToken _client;
    private bool _timedOut;

    /// <summary>1 for the first try.</summary>
    public int Number { get; set; }

    public int Retries => Number - 1;

    /// <summary>The backends this try could go to, before load balancing chose one.</summary>
    public IReadOnlyList<DestinationState> Candidates { get; set; } = [];

    /// <summary>For a retry, the backends not tried yet that it was chosen from (its <see cref="Candidates"/> is the one chosen).</summary>
    public int Untried { get; set; }

    /// <summary>A held-back status may be retried: tries and backends are left, the method is idempotent, the body can be sent again.</summary>
    public bool StatusRetryAllowed { get; set; }

    /// <summary>The request's decision trace, when it asked for one.</summary>
    public Balancer.Explain.DecisionTrace? Trace { get; set; }

    /// <summary>The retry budget of the request's pool.</summary>
    public RetryBudget Budget { get; set; } = null!;

    /// <summary>The retryable status the response transform held back, so the request can go elsewhere.</summary>
    public int? HeldBackStatus { get; set; }

    /// <summary>This try's answer was worth a retry, but the pool's retry budget refused it.</summary>
    public bool BudgetRefused { get; set; }

    /// <summary>
    /// True when this try ran out of its response-headers timeout (the client still waiting): known from the moment
    /// it happens, so the steps inside the try (passive health) see it too.
    /// </summary>
    public bool TimedOut => _perTry is { } perTry ? perTry.IsCancellationRequested && !_client.IsCancellationRequested : _timedOut;

    public void StartTry(CancellationTokenSource perTry, CancellationToken client)
    {
        _perTry = perTry;
        _client = client;
        _timedOut = false;
        HeldBackStatus = null;
        BudgetRefused = false;
    }

    /// <summary>Response headers arrived: the rest of the response is governed by the activity timeout alone.</summary>
    public void HeadersArrived() => _perTry?.CancelAfter(Timeout.InfiniteTimeSpan);

    public void EndTry()
    {
        _timedOut = TimedOut;
        _perTry = null;
    }
}

/// <summary>An error the proxy reports itself (YARP's own feature class is internal).</summary>
internal sealed class ProxyErrorFeature(ForwarderError error, Exception? exception = null) : IForwarderErrorFeature
{
    public ForwarderError Error { get; } = error;

    public Exception? Exception { get; } = exception;
}
