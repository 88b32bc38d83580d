using System.Text;
using Microsoft.Net.Http.Headers;

namespace Balancer.Hosting;

/// <summary>
/// Kestrel's <c>RequestHeaderEncodingSelector</c>: the one public place where a request header's raw bytes can be seen
/// before Kestrel interprets them. Two headers need it:
/// <list type="bullet">
/// <item><c>Connection</c>: when the only tokens Kestrel recognises in it are <c>keep-alive</c> or <c>close</c>, Kestrel
/// replaces the whole value with that one token (HttpHeaders.ParseConnection interns it), so <c>keep-alive, X-Secret</c>
/// would reach the proxy as <c>keep-alive</c> and <c>X-Secret</c> be forwarded. <see cref="ConnectionHeaderEncoding"/>
/// keeps the value as sent for the request.</item>
/// <item><c>Content-Length</c>: Kestrel reads <c>+53</c> as 53, where RFC 9112 allows digits only.
/// <see cref="ContentLengthEncoding"/> makes Kestrel refuse such a value with its own 400 (and close the connection).</item>
/// </list>
/// Every other header is decoded as Kestrel does by default.
/// </summary>
internal static class RequestHeaderDecoding
{
    public static Encoding? Select(string headerName) =>
        ReferenceEquals(headerName, HeaderNames.Connection) || headerName.Equals(HeaderNames.Connection, StringComparison.OrdinalIgnoreCase) ? ConnectionHeaderEncoding.Instance
        : ReferenceEquals(headerName, HeaderNames.ContentLength) || headerName.Equals(HeaderNames.ContentLength, StringComparison.OrdinalIgnoreCase) ? ContentLengthEncoding.Instance
        : null;
}
