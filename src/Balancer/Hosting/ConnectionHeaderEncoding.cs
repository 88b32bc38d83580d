namespace Balancer.Hosting;

/// <summary>
/// Decodes the <c>Connection</c> request header and keeps, for the request being read, every value that names more than
/// the one token Kestrel may reduce the header to (<c>keep-alive</c>, <c>close</c>, <c>upgrade</c>): several tokens on a
/// line, or another name on a line of its own (see <see cref="RequestHeaderDecoding"/>).
/// </summary>
internal sealed class ConnectionHeaderEncoding : Latin1HeaderEncoding
{
    public static readonly ConnectionHeaderEncoding Instance = new();

    private static readonly AsyncLocal<string?> Sent = new();

    private ConnectionHeaderEncoding()
    {
    }

    /// <summary>The request's Connection values as the client sent them, when Kestrel may have dropped some; else null.</summary>
    public static string? AsSent => Sent.Value;

    protected override void Decoded(Span<char> value)
    {
        var token = ((ReadOnlySpan<char>)value).Trim(" \t");
        if (token.Equals("keep-alive", StringComparison.OrdinalIgnoreCase) || token.Equals("close", StringComparison.OrdinalIgnoreCase)
            || token.Equals("upgrade", StringComparison.OrdinalIgnoreCase))
        {
            return; // what Kestrel keeps anyway: the common case costs nothing
        }

        // Several Connection lines in one request are all kept; Kestrel starts each request in a fresh context.
        var text = value.ToString();
        Sent.Value = Sent.Value is { } earlier ? $"{earlier}, {text}" : text;
    }
}
