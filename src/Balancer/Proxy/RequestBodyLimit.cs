using Microsoft.AspNetCore.Http.Features;

namespace Balancer.Proxy;

/// <summary>
/// Rejects a request whose declared Content-Length exceeds the body limit with 413 before a backend is
/// picked. Kestrel enforces the limit only as the body is read, by which time the request would already
/// be on its way to a backend; bodies without a declared length are still stopped by Kestrel mid-stream.
/// </summary>
internal static class RequestBodyLimit
{
    public static Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var limit = context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
        if (context.Request.ContentLength is not { } length || limit is null || length <= limit)
        {
            return next(context);
        }

        context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync($"413 the request body ({length} bytes) exceeds the limit of {limit} bytes\n", context.RequestAborted);
    }
}
