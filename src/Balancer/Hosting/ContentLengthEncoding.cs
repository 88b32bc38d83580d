using System.Text;

namespace Balancer.Hosting;

/// <summary>
/// Decodes the <c>Content-Length</c> request header so that Kestrel's own parser accepts digits only: any other character
/// (a sign, which Kestrel would otherwise accept) is decoded as one it rejects, and Kestrel answers 400 and closes the
/// connection before the request reaches anything (see <see cref="RequestHeaderDecoding"/>).
/// </summary>
internal sealed class ContentLengthEncoding : Encoding
{
    public static readonly ContentLengthEncoding Instance = new();

    private ContentLengthEncoding()
        : base(Latin1.CodePage)
    {
    }

    public override int GetByteCount(char[] chars, int index, int count) => Latin1.GetByteCount(chars, index, count);

    public override int GetBytes(char[] chars, int charIndex, int charCount, byte[] bytes, int byteIndex) => Latin1.GetBytes(chars, charIndex, charCount, bytes, byteIndex);

    public override int GetCharCount(byte[] bytes, int index, int count) => Latin1.GetCharCount(bytes, index, count);

    public override int GetChars(byte[] bytes, int byteIndex, int byteCount, char[] chars, int charIndex)
    {
        var written = Latin1.GetChars(bytes, byteIndex, byteCount, chars, charIndex);
        var value = chars.AsSpan(charIndex, written);
        var bad = value.IndexOfAnyExceptInRange('0', '9');
        if (bad >= 0)
        {
            value[bad] = 'x'; // not a digit, nor anything a number parser takes
        }

        return written;
    }

    public override int GetMaxByteCount(int charCount) => charCount;

    public override int GetMaxCharCount(int byteCount) => byteCount;
}
