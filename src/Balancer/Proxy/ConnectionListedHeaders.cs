using Microsoft.Net.Http.Headers;

namespace Balancer.Proxy;

/// <summary>
/// Removes the headers a peer named in <c>Connection</c>: they were meant for the hop, not for the other side
/// (RFC 9110 7.6.1). YARP drops the fixed hop-by-hop set itself, and handles Upgrade (WebSockets).
/// </summary>
internal static class ConnectionListedHeaders
{
    /// <summary>
    /// The request headers the client named. Kestrel keeps only the token <c>close</c> or <c>keep-alive</c> when
    /// either is present, so the value as sent (<see cref="Hosting.ConnectionHeaderEncoding"/>) names the rest.
    /// </summary>
    public static void RemoveFrom(HttpRequestMessage request, HttpContext context)
    {
        var connection = context.Request.Headers.Connection;
        if (connection.Count == 0)
        {
            return;
        }

        if (Hosting.ConnectionHeaderEncoding.AsSent is { } sent)
        {
            connection = Microsoft.Extensions.Primitives.StringValues.Concat(connection, sent);
        }

        foreach (var value in connection)
        {
            var text = value ?? "";
            foreach (var range in text.AsSpan().Split(','))
            {
                if (Named(text.AsSpan(range)) is { } name)
                {
                    ProxyHeaders.Take(context, request, name);
                }
            }
        }
    }

    /// <summary>The response headers the backend named, from what goes to the client.</summary>
    public static void RemoveFrom(HttpResponse response, HttpResponseMessage? fromBackend)
    {
        // The header as received, unparsed: asking for the parsed one would allocate its collections on every response.
        if (fromBackend is null || !fromBackend.Headers.NonValidated.TryGetValues(HeaderNames.Connection, out var connection))
        {
            return;
        }

        foreach (var value in connection)
        {
            foreach (var range in value.AsSpan().Split(','))
            {
                if (Named(value.AsSpan(range)) is { } name)
                {
                    response.Headers.Remove(name);
                }
            }
        }
    }

    /// <summary>
    /// The header a <c>Connection</c> token names, or null for none to remove: an empty token, <c>close</c>,
    /// <c>keep-alive</c> (the Keep-Alive header is hop-by-hop, dropped anyway) and <c>Upgrade</c> (YARP's, for
    /// WebSockets). Those common ones are recognised without making a string of them.
    /// </summary>
    private static string? Named(ReadOnlySpan<char> token)
    {
        token = token.Trim();
        return token.IsEmpty
            || token.Equals("close", StringComparison.OrdinalIgnoreCase)
            || token.Equals("keep-alive", StringComparison.OrdinalIgnoreCase)
            || token.Equals(HeaderNames.Upgrade, StringComparison.OrdinalIgnoreCase)
            ? null
            : token.ToString();
    }
}
