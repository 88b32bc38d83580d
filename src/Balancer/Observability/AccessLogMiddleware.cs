using Balancer.Configuration;
using Balancer.Hosting;
using Balancer.Proxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.Observability;

/// <summary>Times each proxied request and hands an access-log entry to <see cref="AccessLog"/>.</summary>
internal sealed class AccessLogMiddleware(RequestDelegate next, AccessLog log, BalancerOptions options, TimeProvider time)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (!log.Enabled || Listeners.Of(context) != ListenerKind.Proxy)
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        var started = time.GetTimestamp();
        var status = StatusCodes.Status500InternalServerError;
        try
        {
            await next(context).ConfigureAwait(false);
            status = context.Response.StatusCode;
        }
        finally
        {
            var request = context.Request;
            var proxy = context.Features.Get<IReverseProxyFeature>();
            log.Write(new AccessLogEntry(
                time.GetUtcNow(),
                ClientAddress.Resolve(context, options.Proxy.TrustedProxies),
                request.Method,
                request.Path.Value ?? "/",
                request.QueryString.Value ?? "",
                request.Protocol,
                context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted ? 499 : status,
                time.GetElapsedTime(started),
                proxy?.Cluster?.Config.ClusterId,
                proxy?.ProxiedDestination?.Model.Config.Address,
                context.Features.Get<AttemptFeature>()?.Retries ?? 0,
                request.Headers.UserAgent.Count > 0 ? request.Headers.UserAgent.ToString() : null));
        }
    }
}
