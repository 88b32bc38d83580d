using System.Buffers;
using System.Text.Unicode;

namespace Balancer.Text;

/// <summary>Strict UTF-8 checks for what arrives from the network: overlong forms, surrogates and stray bytes are errors.</summary>
internal static class Utf8Text
{
    /// <summary>The offset of the first byte that is not valid UTF-8, or null when all of it is.</summary>
    public static int? InvalidAt(ReadOnlySpan<byte> bytes)
    {
        Span<char> chars = stackalloc char[256];
        var offset = 0;
        while (offset < bytes.Length)
        {
            var status = Utf8.ToUtf16(bytes[offset..], chars, out var read, out _, replaceInvalidSequences: false, isFinalBlock: true);
            offset += read;
            if (status is OperationStatus.InvalidData or OperationStatus.NeedMoreData)
            {
                return offset;
            }

            if (status == OperationStatus.Done)
            {
                return null;
            }
        }

        return null;
    }
}
