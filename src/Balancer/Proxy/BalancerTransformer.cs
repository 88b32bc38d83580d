using Balancer.Explain;
using Balancer.Networking;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Proxy;

/// <summary>
/// What the balancer does to every request on its way to a backend and to every response on its way back, after YARP's
/// own transformer of the route (which copies the headers, and runs whatever transforms the route has, such as the
/// affinity cookie). Written as one transformer rather than as YARP transforms, so a request allocates no transform
/// contexts for it.
/// </summary>
/// <remarks>
/// To the backend: the headers the client named in <c>Connection</c> go (first, so that a client cannot have ours
/// removed); X-Forwarded-For/Proto/Host are set (<see cref="ForwardedHeaders"/>); our entry is appended to <c>Via</c>, the
/// header loops are detected by (<see cref="LoopGuard"/>); the request target keeps the client's own escapes where YARP
/// would encode them again (<see cref="RequestTarget"/>); the decision trace's headers never leave (the admin token
/// above all: a backend may have registered itself). To the client: the decision-trace header a backend may have
/// forged goes, and so do the headers the backend named in <c>Connection</c>; and when the response headers arrive the
/// try's response-headers timeout is disarmed, and a status of the pool's <c>retries.on-status</c> is held back (the body
/// not copied) when another try is allowed and the pool's retry budget pays for it, so that nothing reaches the
/// client and <see cref="RetryStep"/> can send the request elsewhere.
/// </remarks>
internal sealed class BalancerTransformer(HttpTransformer route, NetworkList trustedProxies, LoopGuard loopGuard) : HttpTransformer
{
    private static readonly UriCreationOptions AsSent = new() { DangerousDisablePathAndQueryCanonicalization = true };

    public override ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        var routes = route.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
        if (!routes.IsCompletedSuccessfully)
        {
            return TransformRequestLaterAsync(routes, httpContext, proxyRequest, destinationPrefix);
        }

        routes.GetAwaiter().GetResult();
        TransformRequest(httpContext, proxyRequest, destinationPrefix);
        return ValueTask.CompletedTask;
    }

    public override ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        var routes = route.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
        if (!routes.IsCompletedSuccessfully)
        {
            return TransformResponseLaterAsync(routes, httpContext, proxyResponse);
        }

        var copyBody = routes.GetAwaiter().GetResult();
        return new ValueTask<bool>(TransformResponse(httpContext, proxyResponse) && copyBody);
    }

    public override ValueTask TransformResponseTrailersAsync(HttpContext httpContext, HttpResponseMessage proxyResponse, CancellationToken cancellationToken) =>
        route.TransformResponseTrailersAsync(httpContext, proxyResponse, cancellationToken);

    private async ValueTask TransformRequestLaterAsync(ValueTask routes, HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix)
    {
        await routes.ConfigureAwait(false);
        TransformRequest(httpContext, proxyRequest, destinationPrefix);
    }

    private static async ValueTask<bool> TransformResponseLaterAsync(ValueTask<bool> routes, HttpContext httpContext, HttpResponseMessage? proxyResponse)
    {
        var copyBody = await routes.ConfigureAwait(false);
        return TransformResponse(httpContext, proxyResponse) && copyBody;
    }

    private void TransformRequest(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix)
    {
        ConnectionListedHeaders.RemoveFrom(proxyRequest, httpContext);
        ForwardedHeaders.Apply(httpContext, proxyRequest, trustedProxies);
        var ours = loopGuard.EntryFor(httpContext.Request.Protocol);
        var via = ProxyHeaders.Take(httpContext, proxyRequest, HeaderNames.Via);
        ProxyHeaders.Add(proxyRequest, HeaderNames.Via, via.Count == 0 ? ours : $"{string.Join(", ", via.ToArray())}, {ours}");
        var target = httpContext.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (target is not null && RequestTarget.NeedsRawForwarding(target))
        {
            // Ambiguous targets were refused before routing; this one means the same to every reader.
            proxyRequest.RequestUri = new Uri(string.Concat(destinationPrefix.AsSpan().TrimEnd('/'), RequestTarget.PathAndQuery(target)), in AsSent);
        }

        ProxyHeaders.Take(httpContext, proxyRequest, ExplainStep.Header);
        ProxyHeaders.Take(httpContext, proxyRequest, ExplainStep.TokenHeader);
    }

    /// <summary>Returns false when the response's body is not to be copied to the client (its status is held back for a retry).</summary>
    private static bool TransformResponse(HttpContext httpContext, HttpResponseMessage? proxyResponse)
    {
        httpContext.Response.Headers.Remove(ExplainStep.Header);
        ConnectionListedHeaders.RemoveFrom(httpContext.Response, proxyResponse);
        if (httpContext.Features.Get<AttemptFeature>() is not { } attempt)
        {
            return true;
        }

        attempt.HeadersArrived();
        if (proxyResponse is not null && attempt.StatusRetryAllowed && attempt.Settings.OnStatus.Contains((int)proxyResponse.StatusCode))
        {
            if (attempt.Budget.TryTake())
            {
                attempt.HeldBackStatus = (int)proxyResponse.StatusCode;
                return false;
            }

            attempt.BudgetRefused = true; // the status goes to the client; counted by RetryStep
        }

        return true;
    }
}
