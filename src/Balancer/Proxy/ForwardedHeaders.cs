using Balancer.Networking;

namespace Balancer.Proxy;

/// <summary>
/// X-Forwarded-For/Proto/Host: from a trusted proxy, our values are appended to the chain it sent;
/// from anyone else, whatever forwarding headers they sent are dropped and ours alone are sent.
/// </summary>
internal static class ForwardedHeaders
{
    private const string XForwardedFor = "X-Forwarded-For";
    private const string XForwardedProto = "X-Forwarded-Proto";
    private const string XForwardedHost = "X-Forwarded-Host";
    private const string XForwardedPrefix = "X-Forwarded-Prefix";
    private const string Forwarded = "Forwarded";
    private const string XRealIp = "X-Real-IP";

    public static void Apply(HttpContext context, HttpRequestMessage request, NetworkList trustedProxies)
    {
        var peer = context.Connection.RemoteIpAddress;
        if (peer is { IsIPv4MappedToIPv6: true })
        {
            peer = peer.MapToIPv4();
        }

        var trusted = trustedProxies.Contains(peer);
        Set(context, request, XForwardedFor, trusted, peer?.ToString());
        Set(context, request, XForwardedProto, trusted, context.Request.Scheme);
        Set(context, request, XForwardedHost, trusted, context.Request.Host.Value);
        if (!trusted)
        {
            ProxyHeaders.Take(context, request, XForwardedPrefix);
            ProxyHeaders.Take(context, request, Forwarded);
            ProxyHeaders.Take(context, request, XRealIp);
        }
    }

    private static void Set(HttpContext context, HttpRequestMessage request, string header, bool append, string? value)
    {
        var existing = ProxyHeaders.Take(context, request, header);
        if (string.IsNullOrEmpty(value))
        {
            return;
        }

        ProxyHeaders.Add(request, header, append && existing.Count > 0 ? $"{string.Join(", ", existing.ToArray())}, {value}" : value);
    }
}
