using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Transforms;

namespace Balancer.Proxy;

/// <summary>Sends the request target's path and query with the client's own escapes, where YARP would encode them again (see <see cref="RequestTarget"/>).</summary>
internal sealed class RawTargetTransform : RequestTransform
{
    private static readonly UriCreationOptions AsSent = new() { DangerousDisablePathAndQueryCanonicalization = true };

    public override ValueTask ApplyAsync(RequestTransformContext context)
    {
        var target = context.HttpContext.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (target is not null && RequestTarget.NeedsRawForwarding(target))
        {
            // Ambiguous targets were refused before routing; this one means the same to every reader.
            context.ProxyRequest.RequestUri = new Uri(string.Concat(context.DestinationPrefix.AsSpan().TrimEnd('/'), RequestTarget.PathAndQuery(target)), in AsSent);
        }

        return ValueTask.CompletedTask;
    }
}
