using System.Globalization;
using Balancer.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Proxy;

/// <summary>
/// Turns YARP's bare error statuses into answers a client can act on: 503 with <c>Retry-After</c> when no
/// backend is available, and a one-line body saying what happened for 502, 503 and 504. A 502 or 504 that reaches the
/// client is logged in one line, with the reason and without a stack trace (YARP's own 2 KB report of it is filtered).
/// Called by <see cref="RetryStep"/> once the tries are over.
/// </summary>
internal sealed partial class ProxyErrors(BalancerOptions options, ILogger<ProxyErrors> logger)
{
    private readonly string _retryAfter = Math.Max(1, (int)Math.Ceiling(options.Proxy.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    /// <summary>Once the tries are over: the answer to an error status that nothing has written a body for yet.</summary>
    public Task AnswerAsync(HttpContext context)
    {
        var error = context.Features.Get<IForwarderErrorFeature>()?.Error;
        if (error is null or ForwarderError.None || context.Response.HasStarted)
        {
            return Task.CompletedTask;
        }

        string? message = context.Response.StatusCode switch
        {
            StatusCodes.Status503ServiceUnavailable => "no backend is available",
            StatusCodes.Status502BadGateway => "the backend could not be reached or failed mid-request",
            StatusCodes.Status504GatewayTimeout => "the backend did not answer in time",
            _ => null,
        };
        if (message is null)
        {
            return Task.CompletedTask;
        }

        if (error == ForwarderError.NoAvailableDestinations)
        {
            context.Response.Headers.RetryAfter = _retryAfter;
        }
        else
        {
            var failure = context.Features.Get<IForwarderErrorFeature>()?.Exception;
            LogFailed(logger, context.Request.Method, context.Request.Path.Value ?? "/", context.Response.StatusCode,
                context.GetReverseProxyFeature().ProxiedDestination?.Model.Config.Address ?? "-", failure?.InnerException?.Message ?? failure?.Message ?? error.Value.ToString());
        }

        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync($"{context.Response.StatusCode} {message}\n", context.RequestAborted);
    }

    [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "{Method} {Path}: answered {Status}, {Backend} failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string method, string path, int status, string backend, string reason);
}
