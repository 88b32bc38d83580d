using System.Text;

namespace Balancer.Hosting;

/// <summary>
/// Decodes a request header value as Latin-1 (as Kestrel's own decoding would, for the ASCII that headers are) and
/// shows the result to <see cref="Decoded"/> before Kestrel reads it: the hook <see cref="RequestHeaderDecoding"/> needs.
/// </summary>
internal abstract class Latin1HeaderEncoding : Encoding
{
    protected Latin1HeaderEncoding()
        : base(Latin1.CodePage)
    {
    }

    /// <summary>The value just decoded; it may be changed in place.</summary>
    protected abstract void Decoded(Span<char> value);

    public sealed override int GetByteCount(char[] chars, int index, int count) => Latin1.GetByteCount(chars, index, count);

    public sealed override int GetBytes(char[] chars, int charIndex, int charCount, byte[] bytes, int byteIndex) => Latin1.GetBytes(chars, charIndex, charCount, bytes, byteIndex);

    public sealed override int GetCharCount(byte[] bytes, int index, int count) => Latin1.GetCharCount(bytes, index, count);

    public sealed override int GetChars(byte[] bytes, int byteIndex, int byteCount, char[] chars, int charIndex)
    {
        var written = Latin1.GetChars(bytes, byteIndex, byteCount, chars, charIndex);
        Decoded(chars.AsSpan(charIndex, written));
        return written;
    }

    public sealed override int GetMaxByteCount(int charCount) => charCount;

    public sealed override int GetMaxCharCount(int byteCount) => byteCount;
}
