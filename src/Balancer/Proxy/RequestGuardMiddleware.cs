using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace Balancer.Proxy;

/// <summary>
/// First look at every request, on every HTTP listener, before anything routes it: one that has already passed through
/// this balancer is a loop (<c>508</c>, see <see cref="LoopGuard"/>); one whose path means different things to a server
/// that decodes <c>%2F</c> and one that does not is ambiguous (<c>400</c>, see <see cref="RequestTarget"/>).
/// </summary>
internal sealed partial class RequestGuardMiddleware(RequestDelegate next, LoopGuard guard, ILogger<RequestGuardMiddleware> logger)
{
    public Task InvokeAsync(HttpContext context)
    {
        var via = context.Request.Headers[HeaderNames.Via];
        if (via.Count > 0 && guard.CameThrough(via))
        {
            LogLoop(logger, context.Request.Method, context.Request.Path.Value ?? "/", via.ToString());
            return RefuseAsync(
                context,
                StatusCodes.Status508LoopDetected,
                $"508 loop detected: this request has already passed through this balancer ({guard.Name}); a backend leads back to it\n");
        }

        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if ((target is not null && RequestTarget.IsAmbiguous(target)) || RequestTarget.HasDotSegments(context.Request.Path.Value))
        {
            return RefuseAsync(
                context,
                StatusCodes.Status400BadRequest,
                "400 ambiguous path: . or .. segments beside escapes or backslashes mean different things to different servers; send the path without them\n");
        }

        return next(context);
    }

    private static Task RefuseAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(message, context.RequestAborted);
    }

    [LoggerMessage(EventId = 6101, Level = LogLevel.Warning, Message = "{Method} {Path} came back to this balancer (Via: {Via}): answered 508; a backend leads back here")]
    private static partial void LogLoop(ILogger logger, string method, string path, string via);
}
