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
        Set(request, XForwardedFor, trusted, peer?.ToString());
        Set(request, XForwardedProto, trusted, context.Request.Scheme);
        Set(request, XForwardedHost, trusted, context.Request.Host.Value);
        if (!trusted)
        {
            ProxyHeaders.Take(request, XForwardedPrefix);
            ProxyHeaders.Take(request, Forwarded);
            ProxyHeaders.Take(request, XRealIp);
        }
    }

    private static void Set(HttpRequestMessage request, string header, bool append, string? value)
    {
        var existing = ProxyHeaders.Take(request, header);
        if (string.IsNullOrEmpty(value))
        {
            return;
        }

        ProxyHeaders.Add(request, header, append && existing.Count > 0 ? $"{string.Join(", ", existing.ToArray())}, {value}" : value);
    }
}
