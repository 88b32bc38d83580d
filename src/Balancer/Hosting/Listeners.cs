using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Balancer.Configuration;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Balancer.Hosting;

/// <summary>The listeners of the one Kestrel server.</summary>
public enum ListenerKind
{
    Proxy,
    Admin,
}

/// <summary>Endpoint metadata: this endpoint answers only on connections accepted by <see cref="Kind"/>.</summary>
internal sealed record ListenerMetadata(ListenerKind Kind);

/// <summary>
/// Tags every connection with the listener that accepted it, and keeps endpoints to their own listener:
/// the admin API is unreachable through the proxy port, and the proxy unreachable through the admin port,
/// whatever Host header a client sends.
/// </summary>
internal static partial class Listeners
{
    private const string ItemKey = "lb.listener";

    /// <summary>
    /// Tags the listener's connections; and where it listens on both IPv6 and IPv4 (the default <c>*</c>), gives an IPv4
    /// client its IPv4 address once per connection, rather than every request mapping <c>::ffff:a.b.c.d</c> back (and
    /// making a new address and its text each time).
    /// </summary>
    public static void Tag(ListenOptions listen, ListenerKind kind) =>
        listen.Use(next => connection =>
        {
            connection.Items[ItemKey] = kind;
            if (connection.RemoteEndPoint is IPEndPoint { Address.IsIPv4MappedToIPv6: true } mapped)
            {
                connection.RemoteEndPoint = new IPEndPoint(mapped.Address.MapToIPv4(), mapped.Port);
            }

            return next(connection);
        });

    /// <summary>
    /// A bind failure in the user's terms: the key of the listener that could not be bound and its address, e.g.
    /// <c>admin.port: cannot listen on 127.0.0.1:8081: address already in use</c>. Kestrel's own message names only the URL.
    /// </summary>
    public static string DescribeBindFailure(IOException failure, BalancerOptions options)
    {
        var match = BoundUrl().Match(failure.Message);
        if (!match.Success || !int.TryParse(match.Groups["port"].Value, CultureInfo.InvariantCulture, out var port))
        {
            return failure.Message;
        }

        var key = port == options.Proxy.Port ? "BalanceHub.listen"
            : port == options.Admin.Port ? "admin.port"
            : port == options.ControlPlane.Port ? "BalanceHub.tcpListener"
            : null;
        var reason = failure.InnerException?.Message is { Length: > 0 } inner ? inner.ToLowerInvariant().TrimEnd('.') : "the address cannot be used";
        return key is null ? failure.Message : $"{key}: cannot listen on {match.Groups["host"].Value}:{port}: {reason}";
    }

    public static ListenerKind? Of(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(ItemKey, out var kind) == true ? (ListenerKind)kind! : null;

    [GeneratedRegex(@"://(?<host>\[[^\]]+\]|[^:/\s]+):(?<port>\d+)")]
    private static partial Regex BoundUrl();
}
