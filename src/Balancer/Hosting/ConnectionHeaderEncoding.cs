using System.Text;

namespace Balancer.Hosting;

/// <summary>
/// Decodes the <c>Connection</c> request header as Latin-1 and, when it lists several tokens, keeps the value as sent in
/// <see cref="AsSent"/> for the request being read (Kestrel may reduce it to one token; see <see cref="RequestHeaderDecoding"/>).
/// </summary>
internal sealed class ConnectionHeaderEncoding : Encoding
{
    public static readonly ConnectionHeaderEncoding Instance = new();

    private static readonly AsyncLocal<string?> Sent = new();

    private ConnectionHeaderEncoding()
        : base(Latin1.CodePage)
    {
    }

    /// <summary>The request's Connection header as the client sent it, when it listed several tokens; else null.</summary>
    public static string? AsSent => Sent.Value;

    public override int GetByteCount(char[] chars, int index, int count) => Latin1.GetByteCount(chars, index, count);

    public override int GetBytes(char[] chars, int charIndex, int charCount, byte[] bytes, int byteIndex) => Latin1.GetBytes(chars, charIndex, charCount, bytes, byteIndex);

    public override int GetCharCount(byte[] bytes, int index, int count) => Latin1.GetCharCount(bytes, index, count);

    public override int GetChars(byte[] bytes, int byteIndex, int byteCount, char[] chars, int charIndex)
    {
        var written = Latin1.GetChars(bytes, byteIndex, byteCount, chars, charIndex);
        var value = chars.AsSpan(charIndex, written);
        if (value.Contains(','))
        {
            // Several Connection lines in one request are all kept; Kestrel starts each request in a fresh context.
            var text = value.ToString();
            Sent.Value = Sent.Value is { } earlier ? $"{earlier}, {text}" : text;
        }

        return written;
    }

    public override int GetMaxByteCount(int charCount) => charCount;

    public override int GetMaxCharCount(int byteCount) => byteCount;
}
