namespace Balancer.Hosting;

/// <summary>
/// Decodes the <c>Content-Length</c> request header so that Kestrel's own parser accepts digits only: any other character
/// (a sign, which Kestrel would otherwise accept) is decoded as one it rejects, and Kestrel answers 400 and closes the
/// connection before the request reaches anything (see <see cref="RequestHeaderDecoding"/>).
/// </summary>
internal sealed class ContentLengthEncoding : Latin1HeaderEncoding
{
    public static readonly ContentLengthEncoding Instance = new();

    private ContentLengthEncoding()
    {
    }

    protected override void Decoded(Span<char> value)
    {
        var bad = value.IndexOfAnyExceptInRange('0', '9');
        if (bad >= 0)
        {
            value[bad] = 'x'; // not a digit, nor anything a number parser takes
        }
    }
}
