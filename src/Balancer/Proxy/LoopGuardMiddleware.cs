using Microsoft.Net.Http.Headers;

namespace Balancer.Proxy;

/// <summary>Answers <c>508 Loop Detected</c> to a request that has already passed through this balancer (see <see cref="LoopGuard"/>).</summary>
internal sealed partial class LoopGuardMiddleware(RequestDelegate next, LoopGuard guard, ILogger<LoopGuardMiddleware> logger)
{
    public Task InvokeAsync(HttpContext context)
    {
        var via = context.Request.Headers[HeaderNames.Via];
        if (via.Count == 0 || !guard.CameThrough(via))
        {
            return next(context);
        }

        LogLoop(logger, context.Request.Method, context.Request.Path.Value ?? "/", via.ToString());
        context.Response.StatusCode = StatusCodes.Status508LoopDetected;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(
            $"508 loop detected: this request has already passed through this balancer ({guard.Name}); a backend leads back to it\n",
            context.RequestAborted);
    }

    [LoggerMessage(EventId = 6101, Level = LogLevel.Warning, Message = "{Method} {Path} came back to this balancer (Via: {Via}): answered 508; a backend leads back here")]
    private static partial void LogLoop(ILogger logger, string method, string path, string via);
}
