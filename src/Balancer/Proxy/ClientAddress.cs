using System.Net;
using Balancer.Networking;
using Microsoft.Extensions.Primitives;

namespace Balancer.Proxy;

/// <summary>Who the client is: the TCP peer, or, when the peer is a trusted proxy, who that proxy says it forwarded for.</summary>
public static class ClientAddress
{
    /// <summary>The client of <paramref name="context"/>; X-Forwarded-For is read only when the peer is a trusted proxy.</summary>
    public static IPAddress? Resolve(HttpContext context, NetworkList trustedProxies)
    {
        var peer = context.Connection.RemoteIpAddress;
        return trustedProxies.Contains(peer) ? Resolve(peer, context.Request.Headers["X-Forwarded-For"], trustedProxies) : Unmapped(peer);
    }

    private static IPAddress? Unmapped(IPAddress? peer) => peer is { IsIPv4MappedToIPv6: true } ? peer.MapToIPv4() : peer;

    /// <summary>
    /// The client's address. When <paramref name="peer"/> is in <paramref name="trustedProxies"/>, walks
    /// X-Forwarded-For from the right past further trusted proxies; the first address not trusted is the
    /// client. Untrusted peers cannot speak for anyone but themselves.
    /// </summary>
    public static IPAddress? Resolve(IPAddress? peer, StringValues forwardedFor, NetworkList trustedProxies)
    {
        if (peer is { IsIPv4MappedToIPv6: true })
        {
            peer = peer.MapToIPv4();
        }

        if (peer is null || !trustedProxies.Contains(peer) || StringValues.IsNullOrEmpty(forwardedFor))
        {
            return peer;
        }

        var client = peer;
        for (var v = forwardedFor.Count - 1; v >= 0; v--)
        {
            var entries = (forwardedFor[v] ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            for (var i = entries.Length - 1; i >= 0; i--)
            {
                if (!TryParseForwardedAddress(entries[i], out var hop))
                {
                    return client; // garbage in the chain: stop at the last address we could vouch for
                }

                client = hop.IsIPv4MappedToIPv6 ? hop.MapToIPv4() : hop; // one client, however its proxy wrote it
                if (!trustedProxies.Contains(client))
                {
                    return client;
                }
            }
        }

        return client;
    }

    private static bool TryParseForwardedAddress(string text, out IPAddress address)
    {
        // Entries may carry a port ("10.0.0.1:1234", "[::1]:1234").
        if (IPAddress.TryParse(text, out address!))
        {
            return true;
        }

        if (IPEndPoint.TryParse(text, out var endpoint))
        {
            address = endpoint.Address;
            return true;
        }

        return false;
    }
}
