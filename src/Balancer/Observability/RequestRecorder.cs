using Balancer.Configuration;
using Balancer.Hosting;
using Balancer.Proxy;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Model;

namespace Balancer.Observability;

/// <summary>
/// Times each request to the proxy listener and records it once it is over: the request metrics, the running totals
/// of the stats endpoints, and an access-log entry (handed to <see cref="AccessLog"/>'s queue). Requests to the admin
/// listener are not recorded.
/// </summary>
/// <remarks>
/// A request that reaches the try loop (<see cref="RetryStep"/>) before anything made it wait is recorded by the try
/// loop when it is over, and this step hands its task straight back instead of awaiting it: one state machine per
/// proxied request rather than one per step. Whichever of the two claims the request first (<see cref="AttemptFeature"/>)
/// records it, exactly once.
/// </remarks>
internal sealed class RequestRecorder(AccessLog log, BalancerMetrics metrics, TrafficStats stats, BalancerOptions options, TimeProvider time)
{
    private const int ClientClosedRequest = 499;

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (Listeners.Of(context) != ListenerKind.Proxy)
        {
            return next(context);
        }

        var body = log.CountsBytes ? context.Features.Get<IHttpResponseBodyFeature>() : null;
        var attempt = new AttemptFeature { Started = time.GetTimestamp(), Counter = body is null ? null : new ResponseByteCounter(body) };
        context.Features.Set(attempt);
        if (attempt.Counter is not null)
        {
            context.Features.Set<IHttpResponseBodyFeature>(attempt.Counter);
        }

        Task task;
        try
        {
            task = next(context);
        }
        catch
        {
            if (attempt.RecorderClaims())
            {
                Record(context, attempt, threw: true);
            }

            throw;
        }

        if (!attempt.RecorderClaims())
        {
            return task; // the try loop has it
        }

        if (task.IsCompletedSuccessfully)
        {
            Record(context, attempt, threw: false);
            return Task.CompletedTask;
        }

        return RecordWhenDoneAsync(context, attempt, task);
    }

    private async Task RecordWhenDoneAsync(HttpContext context, AttemptFeature attempt, Task task)
    {
        var threw = true;
        try
        {
            await task.ConfigureAwait(false);
            threw = false;
        }
        finally
        {
            Record(context, attempt, threw);
        }
    }

    /// <summary>Records a request that is over; <paramref name="threw"/>: it ended in an exception (recorded as 500, or 499 when the client left).</summary>
    public void Record(HttpContext context, AttemptFeature attempt, bool threw)
    {
        var status = threw ? StatusCodes.Status500InternalServerError : context.Response.StatusCode;
        var counter = attempt.Counter;
        if (counter is not null)
        {
            context.Features.Set(counter.Inner);
        }

        var elapsed = time.GetElapsedTime(attempt.Started);
        if (context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted)
        {
            status = ClientClosedRequest;
        }

        var proxy = context.Features.Get<IReverseProxyFeature>();
        var pool = proxy?.Cluster?.Config.ClusterId;
        var backend = proxy?.ProxiedDestination?.Model.Config.Address;
        var retries = attempt.Retries;
        metrics.Request(pool ?? "", backend ?? "", status, elapsed);
        stats.Request(status >= 500, retries, elapsed);
        if (log.Enabled)
        {
            var request = context.Request;
            log.Write(new AccessLogEntry(
                time.GetUtcNow(),
                ClientAddress.Resolve(context, options.Proxy.TrustedProxies),
                request.Method,
                request.Host.Value ?? "",
                request.Path.Value ?? "/",
                request.QueryString.Value ?? "",
                request.Protocol,
                status,
                elapsed,
                counter?.Bytes ?? 0,
                pool,
                backend,
                retries,
                HeaderOrNull(request.Headers.UserAgent),
                HeaderOrNull(request.Headers.Referer),
                log.WritesTraceIds ? TraceParent.TraceIdOf(context) ?? context.Features.Get<Explain.DecisionTrace>()?.Id : null));
        }
    }

    private static string? HeaderOrNull(StringValues values) => values.Count > 0 ? values.ToString() : null;
}
