using System.Diagnostics;
using System.Runtime.CompilerServices;
using Balancer.Configuration;
using Balancer.Explain;
using Balancer.Observability;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.ObjectPool;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Balancer.Proxy;

/// <summary>
/// Proxy pipeline step before load balancing: runs the rest of the pipeline (pick, count, forward) once per try.
/// A try that fails before anything reached the client goes to a backend not tried yet, up to <c>retries.attempts</c>
/// tries and within the pool's retry budget: a failed connect whatever the method (nothing was sent); a transport
/// error, a timeout or a status of <c>retries.on-status</c> for idempotent methods only. Request bodies up to
/// <c>retries.max-buffered-body</c> are kept so they can be sent again; larger ones are never retried. Each try
/// waits at most <c>proxy.response-headers-timeout</c> for response headers; the last try that runs out answers 504.
/// The client sees nothing of retries but the result (the access log and metrics count them).
/// </summary>
/// <param name="recordsRequests">
/// The try loop records the requests handed to it (see <see cref="RequestRecorder"/>): false when a step that still has
/// work to do after the tries wraps it (the response cache, which may wait on Redis), so the recorder times that too.
/// </param>
internal sealed partial class RetryStep(BalancerOptions options, TimeProvider time, Random random, ILogger<RetryStep> logger, BalancerMetrics metrics, TrafficStats stats, ProxyErrors errors, RequestRecorder recorder, bool recordsRequests)
{
    private static readonly ConditionalWeakTable<ClusterState, RetryBudget> Budgets = [];
    private readonly bool _explain = options.Observability.Explain is not null;

    /// <summary>
    /// The tries' timeout sources, reused (YARP does the same with its own): a source is handed back once its try is
    /// over and nothing holds its token, and only if it never fired. Only on the system clock, whose timers report a
    /// fired one to the reset; another clock's cannot, so its sources are not reused. A timer that fires in the moment
    /// of its reset can still cancel the source in the pool or in its next try (a 504 it did not earn): YARP's own pool
    /// has the same window, microseconds wide at the end of a whole response-headers timeout.
    /// </summary>
    private readonly DefaultObjectPool<CancellationTokenSource>? _timeouts = time == TimeProvider.System ? new(new TimeoutPolicy(time), maximumRetained: 4096) : null;

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var proxy = context.GetReverseProxyFeature();
        var cluster = proxy.Route.Cluster!;
        var settings = TrySettings.Of(cluster.Model.Config, options);
        var retries = settings.Retries;
        if (!Budgets.TryGetValue(cluster, out var budget) || budget.Percent != retries.BudgetPercent)
        {
            budget = new RetryBudget(retries.BudgetPercent); // a pool's first request, or a reload changed its budget
            Budgets.AddOrUpdate(cluster, budget);
        }

        budget.RecordRequest();
        var attempt = context.Features.Get<AttemptFeature>();
        if (attempt is null)
        {
            attempt = new AttemptFeature { Started = time.GetTimestamp() }; // recorded by whoever put this pipeline together
            context.Features.Set(attempt);
            attempt.RecorderClaims();
        }

        attempt.Settings = retries;
        attempt.Budget = budget;
        attempt.Trace = _explain ? context.Features.Get<DecisionTrace>() : null;
        attempt.Idempotent = retries.Methods.Contains(context.Request.Method);
        attempt.Resendable = PrepareBody(context, retries.MaxBufferedBody);
        attempt.FirstCandidates = proxy.AvailableDestinations;
        return TriesAsync(context, next, attempt, settings.ResponseHeadersTimeout, recordsRequests && attempt.TriesClaim());
    }

    /// <summary>The tries, one after another; then the answer to an error; then, when it was handed over, the request's record.</summary>
    private async Task TriesAsync(HttpContext context, RequestDelegate next, AttemptFeature attempt, TimeSpan timeout, bool records)
    {
        var threw = true;
        try
        {
            do
            {
                StartTry(context, attempt, timeout);
                try
                {
                    await next(context).ConfigureAwait(false);
                }
                finally
                {
                    EndTry(context, attempt);
                }
            }
            while (GoesElsewhere(context, attempt));

            await errors.AnswerAsync(context).ConfigureAwait(false);
            threw = false;
        }
        finally
        {
            if (records)
            {
                recorder.Record(context, attempt, threw);
            }
        }
    }

    private void StartTry(HttpContext context, AttemptFeature attempt, TimeSpan timeout)
    {
        var proxy = context.GetReverseProxyFeature();
        attempt.Number++;
        var untried = attempt.FirstCandidates.Count - (attempt.Tried?.Count ?? 0);
        attempt.StatusRetryAllowed = MoreTries(attempt, untried) && attempt.Idempotent;
        attempt.Candidates = proxy.AvailableDestinations;
        attempt.Untried = untried;
        proxy.ProxiedDestination = null;
        attempt.TryStarted = time.GetTimestamp();
        attempt.Span = Tracing.Source.StartActivity(Tracing.TrySpan);
        var perTry = _timeouts?.Get() ?? new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        if (perTry.IsCancellationRequested)
        {
            perTry.Dispose(); // a timer that fired as its source was reset: never reuse it
            perTry = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        }

        perTry.CancelAfter(timeout);
        context.RequestAborted = attempt.StartTry(perTry, context.RequestAborted); // last: EndTry undoes it
    }

    private void EndTry(HttpContext context, AttemptFeature attempt)
    {
        context.RequestAborted = attempt.Client;
        if (attempt.EndTry() is { } perTry)
        {
            if (_timeouts is not null && perTry.TryReset())
            {
                _timeouts.Return(perTry);
            }
            else
            {
                perTry.Dispose(); // it fired (a cancelled source cannot be used again), or this clock's sources are not reused
            }
        }

        if (attempt.Granted)
        {
            attempt.Granted = false;
            attempt.Budget.Done(); // this try was a retry the budget granted
        }

        var span = attempt.Span;
        attempt.Span = null;
        var proxy = context.GetReverseProxyFeature();
        Record(context, attempt, proxy.Route.Cluster!, proxy.ProxiedDestination, time.GetElapsedTime(attempt.TryStarted), span);
        span?.Dispose();
    }

    /// <summary>After a try: whether the request goes to another backend (and if so, makes it ready to); otherwise settles its answer.</summary>
    private bool GoesElsewhere(HttpContext context, AttemptFeature attempt)
    {
        var proxy = context.GetReverseProxyFeature();
        var cluster = proxy.Route.Cluster!;
        var budget = attempt.Budget;
        var trace = attempt.Trace;
        var heldBack = attempt.HeldBackStatus is not null; // the response transform was granted a retry for it
        if (attempt.BudgetRefused)
        {
            metrics.BudgetRefusal(cluster.ClusterId); // the status went to the client, so nothing below runs
            trace?.Note($"try {attempt.Number} was worth a retry, but the pool's retry budget refused it");
        }

        if (attempt.Client.IsCancellationRequested || context.Response.HasStarted)
        {
            if (heldBack)
            {
                budget.Done();
            }

            return false;
        }

        var retryable = heldBack || (MoreTries(attempt, attempt.Untried) && Retryable(context, attempt, attempt.Idempotent));
        var retry = heldBack || (retryable && budget.TryTake());
        if (retryable && !retry)
        {
            metrics.BudgetRefusal(cluster.ClusterId);
            trace?.Note($"try {attempt.Number} was worth a retry, but the pool's retry budget refused it");
        }

        if (!retry)
        {
            if (trace is not null && !retryable && proxy.ProxiedDestination is not null && Failed(context, attempt))
            {
                trace.Note($"try {attempt.Number} failed and was not retried: {WhyNot(attempt, attempt.Settings, attempt.Idempotent, attempt.Resendable, context.Request.Method)}");
            }

            if (attempt.TimedOut)
            {
                context.Response.Clear();
                context.Response.StatusCode = StatusCodes.Status504GatewayTimeout;
                context.Features.Set<IForwarderErrorFeature>(new ProxyErrorFeature(ForwarderError.RequestTimedOut));
            }

            return false;
        }

        attempt.Granted = true;
        var failed = proxy.ProxiedDestination;
        metrics.Retry(cluster.ClusterId, RetryReason(context, attempt));
        var tried = attempt.Tried ??= [];
        tried.Add(failed!);
        trace?.Retried(Why(context, attempt));
        LogRetry(logger, context.Request.Method, context.Request.Path.Value ?? "/", failed?.Model.Config.Address ?? "?", Why(context, attempt), attempt.Number + 1);
        context.Response.Clear();
        context.Features.Set<IForwarderErrorFeature>(null);
        if (context.Request.Body.CanSeek)
        {
            context.Request.Body.Position = 0;
        }

        proxy.AvailableDestinations = Next(attempt.FirstCandidates, tried); // a DestinationState is a list of one: itself
        return true;
    }

    /// <summary>Another try is allowed after this one: tries are left, the body can be sent again, and so is another backend.</summary>
    private static bool MoreTries(AttemptFeature attempt, int untried) =>
        attempt.Number < attempt.Settings.Attempts && attempt.Resendable && untried > 1;

    /// <summary>Whether a try that failed without an answer may be sent again.</summary>
    private static bool Retryable(HttpContext context, AttemptFeature attempt, bool idempotent)
    {
        if (attempt.TimedOut)
        {
            return idempotent;
        }

        var error = context.Features.Get<IForwarderErrorFeature>();
        if (ForwarderFailures.IsConnectFailure(error))
        {
            return true; // a refused or unreachable backend never saw the request: safe to send anywhere, whatever the method
        }

        return error?.Error switch
        {
            ForwarderError.Request or ForwarderError.RequestTimedOut or ForwarderError.ResponseHeaders => idempotent,
            // The backend sent headers and then failed before a byte of body: nothing has reached the client (the
            // caller checked), so the request can still go elsewhere. A killed backend does this to what it is answering.
            ForwarderError.ResponseBodyDestination => idempotent,
            _ => false,
        };
    }

    /// <summary>
    /// Counts a try that reached a backend, for and against it: the metrics, the stats, and the try's span. A try
    /// the client gave up on counts as cancelled, not against the backend.
    /// </summary>
    private void Record(HttpContext context, AttemptFeature attempt, ClusterState cluster, DestinationState? destination, TimeSpan elapsed, Activity? span)
    {
        if (destination is null)
        {
            span?.SetTag("outcome", "no-backend");
            attempt.Trace?.EndTry(null, "no-backend", context.Response.StatusCode, elapsed);
            return;
        }

        var outcome = attempt.TimedOut ? TryOutcomes.Timeout
            : context.Features.Get<IForwarderErrorFeature>() is { } error ? (error.Error is ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.ResponseBodyCanceled ? TryOutcomes.Cancelled : TryOutcomes.Error)
            : attempt.HeldBackStatus is not null || context.Response.StatusCode >= 500 ? TryOutcomes.Status5xx
            : TryOutcomes.Success;
        var address = destination.Model.Config.Address;
        if (outcome == TryOutcomes.Error && context.Response.HasStarted)
        {
            // Cut off after the client had the headers: no retry, no error status; the access log shows what was sent.
            LogCutOff(logger, context.Request.Method, context.Request.Path.Value ?? "/", address, context.Features.Get<IForwarderErrorFeature>()?.Exception?.Message ?? "transport error");
        }

        metrics.Try(cluster.ClusterId, address, outcome, elapsed);
        attempt.Trace?.EndTry(address, outcome, attempt.TimedOut ? StatusCodes.Status504GatewayTimeout : attempt.HeldBackStatus ?? context.Response.StatusCode, elapsed);
        stats.Try(destination, outcome is not (TryOutcomes.Success or TryOutcomes.Cancelled), elapsed);
        if (span is not null)
        {
            span.SetTag("balancer.pool", cluster.ClusterId);
            span.SetTag("balancer.backend", address);
            span.SetTag("balancer.attempt", attempt.Number);
            span.SetTag("outcome", outcome);
            span.SetTag("http.response.status_code", attempt.HeldBackStatus ?? context.Response.StatusCode);
            if (outcome is not (TryOutcomes.Success or TryOutcomes.Cancelled))
            {
                span.SetStatus(ActivityStatusCode.Error, outcome);
            }
        }
    }

    /// <summary>The try failed without reaching the client: timed out, or a transport error (a status held back was retried).</summary>
    private static bool Failed(HttpContext context, AttemptFeature attempt) =>
        attempt.TimedOut || context.Features.Get<IForwarderErrorFeature>() is { Error: not (ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.ResponseBodyCanceled) };

    private static string WhyNot(AttemptFeature attempt, RetryOptions retries, bool idempotent, bool resendable, string method) =>
        !resendable ? $"its body is larger than retries.max-buffered-body ({retries.MaxBufferedBody} bytes) or of unknown length, so it cannot be sent again"
        : attempt.Number >= retries.Attempts ? $"all {retries.Attempts} tries (retries.attempts) are used"
        : !idempotent ? $"{method} is not in retries.methods, and the backend may have acted on it"
        : "no backend is left that was not tried";

    private static string RetryReason(HttpContext context, AttemptFeature attempt) =>
        attempt.HeldBackStatus is not null ? "status"
        : attempt.TimedOut ? "timeout"
        : ForwarderFailures.IsConnectFailure(context.Features.Get<IForwarderErrorFeature>()) ? "connect"
        : "transport";

    private static string Why(HttpContext context, AttemptFeature attempt) =>
        attempt.HeldBackStatus is { } status ? $"answered {status}"
        : attempt.TimedOut ? "no response headers in time"
        : context.Features.Get<IForwarderErrorFeature>()?.Exception?.Message ?? "transport error";

    /// <summary>The next backend: of two untried ones drawn at random, the one with fewer requests in flight.</summary>
    private DestinationState Next(IReadOnlyList<DestinationState> candidates, List<DestinationState> tried)
    {
        var left = candidates.Where(d => !tried.Contains(d)).ToList();
        var a = left[random.Next(left.Count)];
        var b = left[random.Next(left.Count)];
        return b.ConcurrentRequestCount < a.ConcurrentRequestCount ? b : a;
    }

    /// <summary>True when the request can be sent again: no body, or one small enough to keep.</summary>
    private static bool PrepareBody(HttpContext context, long max)
    {
        if (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == false)
        {
            return true;
        }

        if (context.Request.ContentLength is { } length && length <= max)
        {
            context.Request.EnableBuffering(bufferThreshold: (int)Math.Min(max, 64 * 1024), bufferLimit: max);
            return true;
        }

        return false;
    }

    [LoggerMessage(EventId = 6003, Level = LogLevel.Warning, Message = "{Method} {Path}: {Backend} failed after the response began; the client got a cut-off response ({Reason})")]
    private static partial void LogCutOff(ILogger logger, string method, string path, string backend, string reason);

    [LoggerMessage(EventId = 6001, Level = LogLevel.Debug, Message = "{Method} {Path}: {Backend} failed ({Reason}); try {Try} goes elsewhere")]
    private static partial void LogRetry(ILogger logger, string method, string path, string backend, string reason, int @try);
}
