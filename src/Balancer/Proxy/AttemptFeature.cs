using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Balancer.Proxy;

/// <summary>
/// Per request to the proxy listener: when it started and who records it (<see cref="Observability.RequestRecorder"/>),
/// which try this is and what the steps of the proxy pipeline tell each other about it (set by <see cref="RetryStep"/>).
/// The one object the balancer allocates for a request: everything the try loop keeps between tries lives here, so
/// that its state machine stays small.
/// </summary>
internal sealed class AttemptFeature
{
    private const int NobodyRecords = 0;
    private const int RecorderRecords = 1;
    private const int TriesRecord = 2;

    private CancellationTokenSource? _perTry;
    private CancellationTokenRegistration _clientLink;
    private CancellationToken _client;
    private bool _timedOut;
    private int _recorder;
    private LoadBalancing.InFlightTracker? _inFlight;
    private DestinationState? _inFlightAt;

    /// <summary>When the request arrived (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public long Started { get; init; }

    /// <summary>Counts the response body bytes, for the access-log formats that show them; null otherwise.</summary>
    public Observability.ResponseByteCounter? Counter { get; init; }

    /// <summary>The pool's retry settings (its own, or the top-level ones).</summary>
    public Balancer.Configuration.RetryOptions Settings { get; set; } = null!;

    /// <summary>The backend a sticky session pinned this try to, if any (the persistence policy reads it for the response).</summary>
    public object? Pinned { get; set; }

    /// <summary>1 for the first try; 0 before the first.</summary>
    public int Number { get; set; }

    public int Retries => Math.Max(0, Number - 1);

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

    /// <summary>The request's method is one of <c>retries.methods</c>.</summary>
    public bool Idempotent { get; set; }

    /// <summary>The request's body (if any) is kept, so the request can be sent again.</summary>
    public bool Resendable { get; set; }

    /// <summary>The backends the first try could go to (restrictions applied).</summary>
    public IReadOnlyList<DestinationState> FirstCandidates { get; set; } = [];

    /// <summary>The backends tried and failed so far; null before the first retry.</summary>
    public List<DestinationState>? Tried { get; set; }

    /// <summary>This try is a retry the budget granted: given back when the try is over.</summary>
    public bool Granted { get; set; }

    /// <summary>When this try started (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public long TryStarted { get; set; }

    /// <summary>This try's span, when tracing is on.</summary>
    public System.Diagnostics.Activity? Span { get; set; }

    /// <summary>The client's own cancellation (the connection's), while a try has a token of its own in its place.</summary>
    public CancellationToken Client => _client;

    /// <summary>
    /// True when this try ran out of its response-headers timeout (the client still waiting): known from the moment
    /// it happens, so the steps inside the try (passive health) see it too.
    /// </summary>
    public bool TimedOut => _perTry is { } perTry ? perTry.IsCancellationRequested && !_client.IsCancellationRequested : _timedOut;

    /// <summary>The recorder will record this request (it was not handed to the try loop in time): true once, for one caller.</summary>
    public bool RecorderClaims() => Interlocked.CompareExchange(ref _recorder, RecorderRecords, NobodyRecords) == NobodyRecords;

    /// <summary>The try loop will record this request, when it is over: true once, for one caller.</summary>
    public bool TriesClaim() => Interlocked.CompareExchange(ref _recorder, TriesRecord, NobodyRecords) == NobodyRecords;

    /// <summary>
    /// Starts a try whose cancellation is <paramref name="perTry"/> (armed with the response-headers timeout by the
    /// caller) and the client's going away, whichever comes first.
    /// </summary>
    public CancellationToken StartTry(CancellationTokenSource perTry, CancellationToken client)
    {
        _perTry = perTry;
        _client = client;
        _timedOut = false;
        HeldBackStatus = null;
        BudgetRefused = false;
        _clientLink = client.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), perTry);
        return perTry.Token;
    }

    /// <summary>Response headers arrived: the rest of the response is governed by the activity timeout alone.</summary>
    public void HeadersArrived() => _perTry?.CancelAfter(Timeout.InfiniteTimeSpan);

    /// <summary>This try counts against <paramref name="destination"/> in <paramref name="tracker"/> until it ends.</summary>
    public void CountInFlight(LoadBalancing.InFlightTracker tracker, DestinationState destination)
    {
        _inFlight = tracker;
        _inFlightAt = destination;
    }

    /// <summary>Ends the try (and its count in flight); returns its cancellation source, which nothing uses any more.</summary>
    public CancellationTokenSource? EndTry()
    {
        if (_inFlight is { } tracker)
        {
            tracker.Release(_inFlightAt!);
            _inFlight = null;
            _inFlightAt = null;
        }

        _clientLink.Dispose(); // waits for a cancellation that is running: nothing touches the source after this
        _clientLink = default;
        _timedOut = TimedOut;
        var perTry = _perTry;
        _perTry = null;
        return perTry;
    }
}

/// <summary>An error the proxy reports itself (YARP's own feature class is internal).</summary>
internal sealed class ProxyErrorFeature(ForwarderError error, Exception? exception = null) : IForwarderErrorFeature
{
    public ForwarderError Error { get; } = error;

    public Exception? Exception { get; } = exception;
}
