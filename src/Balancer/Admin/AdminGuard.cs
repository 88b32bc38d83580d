using System.Net;
using Balancer.Configuration;
using Microsoft.Net.Http.Headers;

namespace Balancer.Admin;

/// <summary>
/// Keeps browsers from being used against the admin API, which by default listens on loopback without a token:
/// <list type="bullet">
/// <item>DNS rebinding: a page on <c>evil.example</c> whose name is made to resolve to 127.0.0.1 sends <c>Host: evil.example</c>.
/// Only hosts that name the listener are served: <c>localhost</c>, IP literals of this listener (its bind address, loopback,
/// and with a wildcard bind this host's addresses), and the names in <c>admin.hosts</c>.</item>
/// <item>Cross-site requests: a form or a no-CORS fetch can POST from any page. A body must be declared
/// <c>application/json</c> (which no form can send, and no fetch can without a CORS preflight the API never grants), and
/// a change (any method but GET, HEAD, OPTIONS) whose <c>Sec-Fetch-Site</c> is not same-origin, or whose <c>Origin</c> is
/// not exactly where the request went (scheme, host and port), is refused, body or not.</item>
/// </list>
/// </summary>
internal sealed class AdminGuard
{
    private readonly HashSet<string> _names;
    private readonly HashSet<IPAddress> _addresses;
    private readonly bool _anyLocalAddress;

    public AdminGuard(AdminOptions options, IEnumerable<IPAddress> hostAddresses)
    {
        _names = new HashSet<string>(options.Hosts.Append("localhost"), StringComparer.OrdinalIgnoreCase);
        _anyLocalAddress = options.Bind.Equals(IPAddress.Any) || options.Bind.Equals(IPAddress.IPv6Any);
        _addresses = [options.Bind, .. _anyLocalAddress ? hostAddresses : []];
    }

    /// <summary>Why the request is refused (status and detail), or null when it may proceed.</summary>
    public (int Status, string Detail)? Check(HttpRequest request)
    {
        if (request.Host.HasValue && !Names(request.Host.Host))
        {
            return (StatusCodes.Status403Forbidden,
                $"Host {request.Host.Host} does not name this admin API (served: localhost, its addresses{(_names.Count > 1 ? ", " + string.Join(", ", _names.Where(n => n != "localhost")) : "")}); add a name under admin.hosts to serve it");
        }

        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method) && !HttpMethods.IsOptions(request.Method) && FromAnotherSite(request) is { } why)
        {
            return (StatusCodes.Status403Forbidden, $"a cross-site change is refused ({why})");
        }

        var hasBody = request.ContentLength > 0 || (request.ContentLength is null && request.Headers.TransferEncoding.Count > 0);
        if (hasBody && !IsJson(request.ContentType))
        {
            return (StatusCodes.Status415UnsupportedMediaType, $"a body needs Content-Type: application/json (got {(string.IsNullOrEmpty(request.ContentType) ? "none" : request.ContentType)})");
        }

        return null;
    }

    private bool Names(string host)
    {
        if (IPAddress.TryParse(host.Trim('[', ']'), out var address))
        {
            if (address.IsIPv4MappedToIPv6)
            {
                address = address.MapToIPv4();
            }

            return IPAddress.IsLoopback(address) || _addresses.Contains(address);
        }

        return _names.Contains(host.TrimEnd('.'));
    }

    private static string? FromAnotherSite(HttpRequest request)
    {
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site.Length > 0 && !site.Equals("same-origin", StringComparison.OrdinalIgnoreCase) && !site.Equals("none", StringComparison.OrdinalIgnoreCase))
        {
            return $"Sec-Fetch-Site: {site}";
        }

        // Same origin: the page's scheme, host and port are those this request was sent to (another port on localhost is
        // another site, as far as this API is concerned).
        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0 && !(Uri.TryCreate(origin, UriKind.Absolute, out var uri) && SameOrigin(uri, request)))
        {
            return $"Origin: {origin}";
        }

        return null;
    }

    private static bool SameOrigin(Uri origin, HttpRequest request) =>
        origin.Scheme.Equals(request.Scheme, StringComparison.OrdinalIgnoreCase)
        && origin.Host.Trim('[', ']').Equals(request.Host.Host.Trim('[', ']'), StringComparison.OrdinalIgnoreCase)
        && origin.Port == (request.Host.Port ?? (request.IsHttps ? 443 : 80));

    private static bool IsJson(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var media) && media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase);
}
