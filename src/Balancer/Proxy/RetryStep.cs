using System.Diagnostics;
using System.Runtime.CompilerServices;
using Balancer.Configuration;
using Balancer.Explain;
using Balancer.Observability;
using Microsoft.AspNetCore.Http.Features;
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
internal sealed partial class RetryStep(BalancerOptions options, TimeProvider time, Random random, ILogger<RetryStep> logger, BalancerMetrics metrics, TrafficStats stats)
{
    private static readonly ConditionalWeakTable<ClusterState, RetryBudget> Budgets = [];
    private readonly bool _explain = options.Observability.Explain is not null;

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
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
        var attempt = new AttemptFeature { Settings = retries, Budget = budget, Trace = _explain ? context.Features.Get<DecisionTrace>() : null };
        context.Features.Set(attempt);
        var request = context.Request;
        var idempotent = retries.Methods.Contains(request.Method);
        var resendable = PrepareBody(context, retries.MaxBufferedBody);
        var client = context.RequestAborted;
        var candidates = proxy.AvailableDestinations;
        List<DestinationState>? tried = null;
        var granted = false; // this try is a retry the budget granted: give it back when the try is over
        for (attempt.Number = 1; ; attempt.Number++)
        {
            var retrying = granted;
            granted = false;
            var more = attempt.Number < retries.Attempts && resendable && candidates.Count - (tried?.Count ?? 0) > 1;
            attempt.StatusRetryAllowed = more && idempotent;
            attempt.Candidates = proxy.AvailableDestinations;
            attempt.Untried = candidates.Count - (tried?.Count ?? 0);
            using var perTry = new CancellationTokenSource(settings.ResponseHeadersTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(client, perTry.Token);
            attempt.StartTry(perTry, client);
            context.RequestAborted = linked.Token;
            proxy.ProxiedDestination = null;
            var started = time.GetTimestamp();
            using var span = Tracing.Source.StartActivity(Tracing.TrySpan);
            try
            {
                await next(context).ConfigureAwait(false);
            }
            finally
            {
                context.RequestAborted = client;
                attempt.EndTry();
                if (retrying)
                {
                    budget.Done();
                }

                Record(context, attempt, cluster, proxy.ProxiedDestination, time.GetElapsedTime(started), span);
            }

            var trace = attempt.Trace;

            var heldBack = attempt.HeldBackStatus is not null; // the response transform was granted a retry for it
            if (attempt.BudgetRefused)
            {
                metrics.BudgetRefusal(cluster.ClusterId); // the status went to the client, so nothing below runs
                trace?.Note($"try {attempt.Number} was worth a retry, but the pool's retry budget refused it");
            }

            if (client.IsCancellationRequested || context.Response.HasStarted)
            {
                if (heldBack)
                {
                    budget.Done();
                }

                return;
            }

            var retryable = heldBack || (more && Retryable(context, attempt, idempotent));
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
                    trace.Note($"try {attempt.Number} failed and was not retried: {WhyNot(attempt, retries, idempotent, resendable, request.Method)}");
                }

                if (attempt.TimedOut)
                {
                    context.Response.Clear();
                    context.Response.StatusCode = StatusCodes.Status504GatewayTimeout;
                    context.Features.Set<IForwarderErrorFeature>(new ProxyErrorFeature(ForwarderError.RequestTimedOut));
                }

                return;
            }

            granted = true;
            var failed = proxy.ProxiedDestination;
            metrics.Retry(cluster.ClusterId, RetryReason(context, attempt));
            (tried ??= []).Add(failed!);
            trace?.Retried(Why(context, attempt));
            LogRetry(logger, context.Request.Method, context.Request.Path.Value ?? "/", failed?.Model.Config.Address ?? "?", Why(context, attempt), attempt.Number + 1);
            context.Response.Clear();
            context.Features.Set<IForwarderErrorFeature>(null);
            if (request.Body.CanSeek)
            {
                request.Body.Position = 0;
            }

            proxy.AvailableDestinations = Next(candidates, tried); // a DestinationState is a list of one: itself
        }
    }

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
