using System.Net.Http.Headers;
using Balancer.Configuration;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Balancer.Proxy;

/// <summary>Adds our request and response transforms to every route.</summary>
internal sealed class ProxyTransforms(BalancerOptions options, LoopGuard loopGuard) : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        // YARP's own X-Forwarded-* transforms either always trust or never trust; ours decide per peer.
        context.UseDefaultForwarders = false;
        // First what the client named as hop-by-hop, then what we add: a client cannot have our own headers removed.
        context.RequestTransforms.Add(new ConnectionListedRequestHeadersTransform());
        context.RequestTransforms.Add(new ForwardedHeadersTransform(options.Proxy.TrustedProxies));
        context.RequestTransforms.Add(new ViaTransform(loopGuard));
        context.RequestTransforms.Add(new RawTargetTransform());
        // The decision trace's headers are between a client and the balancer, explain on or off: the admin token above all
        // must never reach a backend (one may have registered itself), nor may a backend forge a trace.
        context.AddRequestHeaderRemove(Explain.ExplainStep.Header);
        context.AddRequestHeaderRemove(Explain.ExplainStep.TokenHeader);
        context.AddResponseHeaderRemove(Explain.ExplainStep.Header, ResponseCondition.Always);
        context.ResponseTransforms.Add(new ConnectionListedResponseHeadersTransform());
        context.ResponseTransforms.Add(new RetryableStatusTransform());
    }
}

/// <summary>
/// X-Forwarded-For/Proto/Host: from a trusted proxy, our values are appended to the chain it sent;
/// from anyone else, whatever forwarding headers they sent are dropped and ours alone are sent.
/// </summary>
internal sealed class ForwardedHeadersTransform(Networking.NetworkList trustedProxies) : RequestTransform
{
    private const string XForwardedFor = "X-Forwarded-For";
    private const string XForwardedProto = "X-Forwarded-Proto";
    private const string XForwardedHost = "X-Forwarded-Host";
    private const string XForwardedPrefix = "X-Forwarded-Prefix";
    private const string Forwarded = "Forwarded";
    private const string XRealIp = "X-Real-IP";

    public override ValueTask ApplyAsync(RequestTransformContext context)
    {
        var http = context.HttpContext;
        var peer = http.Connection.RemoteIpAddress;
        if (peer is { IsIPv4MappedToIPv6: true })
        {
            peer = peer.MapToIPv4();
        }

        var trusted = trustedProxies.Contains(peer);
        Set(context, XForwardedFor, trusted, peer?.ToString());
        Set(context, XForwardedProto, trusted, http.Request.Scheme);
        Set(context, XForwardedHost, trusted, http.Request.Host.Value);
        if (!trusted)
        {
            TakeHeader(context, XForwardedPrefix);
            TakeHeader(context, Forwarded);
            TakeHeader(context, XRealIp);
        }

        return ValueTask.CompletedTask;
    }

    private static void Set(RequestTransformContext context, string header, bool append, string? value)
    {
        var existing = TakeHeader(context, header);
        if (string.IsNullOrEmpty(value))
        {
            return;
        }

        AddHeader(context, header, append && existing.Count > 0 ? $"{string.Join(", ", existing.ToArray())}, {value}" : value);
    }
}

/// <summary>
/// Removes the request headers the client named in <c>Connection</c>: they were meant for us, not the backend
/// (RFC 9110 7.6.1). Kestrel keeps only the token <c>close</c> or <c>keep-alive</c> when either is present,
/// so names listed beside those never reach us; the fixed hop-by-hop set is dropped by YARP regardless.
/// </summary>
internal sealed class ConnectionListedRequestHeadersTransform : RequestTransform
{
    public override ValueTask ApplyAsync(RequestTransformContext context)
    {
        var connection = context.HttpContext.Request.Headers.Connection;
        if (connection.Count == 0)
        {
            return ValueTask.CompletedTask;
        }

        // Kestrel may have reduced "keep-alive, X-Secret" to "keep-alive": the value as sent names the rest.
        if (Hosting.ConnectionHeaderEncoding.AsSent is { } sent)
        {
            connection = StringValues.Concat(connection, sent);
        }

        foreach (var value in connection)
        {
            foreach (var token in (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                // YARP handles Upgrade itself (WebSockets); the rest of the fixed hop-by-hop set it already drops.
                if (!token.Equals(HeaderNames.Upgrade, StringComparison.OrdinalIgnoreCase))
                {
                    TakeHeader(context, token);
                }
            }
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>Removes the response headers the backend named in <c>Connection</c>.</summary>
internal sealed class ConnectionListedResponseHeadersTransform : ResponseTransform
{
    public override ValueTask ApplyAsync(ResponseTransformContext context)
    {
        HttpHeaderValueCollection<string>? connection = context.ProxyResponse?.Headers.Connection;
        if (connection is null || connection.Count == 0)
        {
            return ValueTask.CompletedTask;
        }

        var headers = context.HttpContext.Response.Headers;
        foreach (var token in connection)
        {
            if (!token.Equals(HeaderNames.Upgrade, StringComparison.OrdinalIgnoreCase))
            {
                headers.Remove(token);
            }
        }

        return ValueTask.CompletedTask;
    }
}
