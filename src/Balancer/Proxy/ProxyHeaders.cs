using System.Net.Http.Headers;
using Microsoft.Extensions.Primitives;

namespace Balancer.Proxy;

/// <summary>Request headers of the message going to a backend, read and written without parsing them.</summary>
internal static class ProxyHeaders
{
    /// <summary>
    /// Removes a header (from the request or its content) and returns what it held; empty when it was not there. The
    /// message's headers are the client's, copied (nothing else adds the ones taken): one the client did not send is
    /// known to be absent from Kestrel's table of the request, which answers that far more cheaply.
    /// </summary>
    public static StringValues Take(HttpContext context, HttpRequestMessage request, string name)
    {
        if (!context.Request.Headers.ContainsKey(name))
        {
            return StringValues.Empty;
        }

        // Looked up before removing: a name that is not a valid header name (a client's Connection token, say) is simply absent.
        if (request.Headers.NonValidated.TryGetValues(name, out var values))
        {
            var taken = ToStringValues(values);
            request.Headers.Remove(name);
            return taken;
        }

        if (request.Content is { } content && content.Headers.NonValidated.TryGetValues(name, out values))
        {
            var taken = ToStringValues(values);
            content.Headers.Remove(name);
            return taken;
        }

        return StringValues.Empty;
    }

    /// <summary>Adds a request header, as is.</summary>
    public static void Add(HttpRequestMessage request, string name, string value) => request.Headers.TryAddWithoutValidation(name, value);

    private static StringValues ToStringValues(HeaderStringValues values)
    {
        if (values.Count == 1)
        {
            return values.ToString(); // the one value as stored: no copy
        }

        var all = new string[values.Count];
        var i = 0;
        foreach (var value in values)
        {
            all[i++] = value;
        }

        return all;
    }
}
