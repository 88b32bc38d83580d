using Balancer.Networking;
using Balancer.Proxy;

namespace Balancer.LoadBalancing;

/// <summary>Where consistent hashing takes its key from.</summary>
public enum HashKeySource
{
    ClientIp,
    Header,
    Cookie,
    Path,
}

/// <summary>
/// The key a request is hashed by: <c>client-ip</c>, <c>header:NAME</c>, <c>cookie:NAME</c> or <c>path</c>.
/// A request without the header or cookie is hashed by its client address instead.
/// </summary>
public sealed record HashKey(HashKeySource Source, string? Name = null)
{
    public static readonly HashKey ClientIp = new(HashKeySource.ClientIp);

    public override string ToString() => Source switch
    {
        HashKeySource.Header => $"header:{Name}",
        HashKeySource.Cookie => $"cookie:{Name}",
        HashKeySource.Path => "path",
        _ => "client-ip",
    };

    public static bool TryParse(string text, out HashKey key, out string error)
    {
        error = "";
        key = ClientIp;
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var kind = colon < 0 ? text : text[..colon];
        var name = colon < 0 ? "" : text[(colon + 1)..].Trim();
        switch (kind.Trim().ToUpperInvariant())
        {
            case "CLIENT-IP" or "IP" when colon < 0:
                return true;
            case "PATH" when colon < 0:
                key = new HashKey(HashKeySource.Path);
                return true;
            case "HEADER" or "COOKIE" when name.Length > 0 && name.All(c => c > ' ' && c < 127 && c is not (';' or '=' or ',')):
                key = new HashKey(kind.Trim().Equals("header", StringComparison.OrdinalIgnoreCase) ? HashKeySource.Header : HashKeySource.Cookie, name);
                return true;
            default:
                error = $"{text} is not a hash key (client-ip, header:NAME, cookie:NAME or path)";
                return false;
        }
    }

    /// <summary>The request's key hash. Allocation-free: header and cookie values are hashed where they lie.</summary>
    public ulong Of(HttpContext context, NetworkList trustedProxies)
    {
        switch (Source)
        {
            case HashKeySource.Header when context.Request.Headers[Name!] is { Count: > 0 } values && !string.IsNullOrEmpty(values[0]):
                return StableHash.Of(values[0]);
            case HashKeySource.Cookie when CookieValue(context.Request.Headers.Cookie, Name!) is { Length: > 0 } value:
                return StableHash.Of(value);
            case HashKeySource.Path:
                return StableHash.Of(context.Request.Path.Value);
            default:
                var client = ClientAddress.Resolve(context, trustedProxies);
                return client is null ? 0 : StableHash.Of(client);
        }
    }

    /// <summary>
    /// What <see cref="Of"/> hashes, as text (for the decision trace): the header's or cookie's value, the path, or the
    /// client's address (<paramref name="byClient"/>), also when the header or cookie is missing; null when that is unknown too.
    /// </summary>
    public string? ValueOf(HttpContext context, NetworkList trustedProxies, out bool byClient)
    {
        byClient = false;
        switch (Source)
        {
            case HashKeySource.Header when context.Request.Headers[Name!] is { Count: > 0 } values && !string.IsNullOrEmpty(values[0]):
                return values[0];
            case HashKeySource.Cookie when CookieValue(context.Request.Headers.Cookie, Name!) is { Length: > 0 } value:
                return value.ToString();
            case HashKeySource.Path:
                return context.Request.Path.Value;
            default:
                byClient = true;
                return ClientAddress.Resolve(context, trustedProxies)?.ToString();
        }
    }

    private static ReadOnlySpan<char> CookieValue(Microsoft.Extensions.Primitives.StringValues headers, string name)
    {
        foreach (var header in headers)
        {
            var rest = header.AsSpan();
            while (rest.Length > 0)
            {
                var end = rest.IndexOf(';');
                var pair = (end < 0 ? rest : rest[..end]).Trim();
                rest = end < 0 ? [] : rest[(end + 1)..];
                var eq = pair.IndexOf('=');
                if (eq > 0 && pair[..eq].Trim().Equals(name, StringComparison.Ordinal))
                {
                    return pair[(eq + 1)..].Trim().Trim('"');
                }
            }
        }

        return [];
    }
}
