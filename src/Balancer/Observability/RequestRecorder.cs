using System.Diagnostics;
using Balancer.Configuration;
using Balancer.Hosting;
using Balancer.Proxy;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Model;

namespace Balancer.Observability;

/// <summary>
/// Times each proxied request and records it once it is over: the request metrics, the running totals of the stats
/// endpoints, and an access-log entry (handed to <see cref="AccessLog"/>'s queue). Requests to the admin listener are
/// not recorded.
/// </summary>
internal sealed class RequestRecorder(RequestDelegate next, AccessLog log, BalancerMetrics metrics, TrafficStats stats, BalancerOptions options, TimeProvider time)
{
    private const int ClientClosedRequest = 499;

    public async Task InvokeAsync(HttpContext context)
    {
        if (Listeners.Of(context) != ListenerKind.Proxy)
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        var started = time.GetTimestamp();
        var status = StatusCodes.Status500InternalServerError;
        var body = log.CountsBytes ? context.Features.Get<IHttpResponseBodyFeature>() : null;
        var counter = body is null ? null : new ResponseByteCounter(body);
        if (counter is not null)
        {
            context.Features.Set<IHttpResponseBodyFeature>(counter);
        }

        try
        {
            await next(context).ConfigureAwait(false);
            status = context.Response.StatusCode;
        }
        finally
        {
            if (counter is not null)
            {
                context.Features.Set(body);
            }

            var elapsed = time.GetElapsedTime(started);
            if (context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted)
            {
                status = ClientClosedRequest;
            }

            var proxy = context.Features.Get<IReverseProxyFeature>();
            var pool = proxy?.Cluster?.Config.ClusterId;
            var backend = proxy?.ProxiedDestination?.Model.Config.Address;
            var retries = context.Features.Get<AttemptFeature>()?.Retries ?? 0;
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
                    log.WritesTraceIds && Activity.Current is { } activity ? activity.TraceId.ToHexString() : null));
            }
        }
    }

    private static string? HeaderOrNull(StringValues values) => values.Count > 0 ? values.ToString() : null;
}
