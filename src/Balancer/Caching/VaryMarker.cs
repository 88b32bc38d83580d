using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Balancer.Caching;

/// <summary>
/// What a URL's key holds when its responses vary on request fields: the field names and a nonce. Each variant is
/// stored under the key plus a hash of the nonce and the request's values of those fields
/// (<see cref="VariantKey"/>); a new marker (a new nonce) makes every earlier variant unreachable at once, which is
/// how a POST to the URL invalidates them (RFC 9111 §4.4) without a scan.
/// </summary>
internal sealed class VaryMarker(ulong nonce, IReadOnlyList<string> names)
{
    private const byte Kind = 2;
    private const int MaxNames = 64;

    public ulong Nonce => nonce;

    /// <summary>Lower-case and sorted.</summary>
    public IReadOnlyList<string> Names => names;

    public static bool IsMarker(ReadOnlySpan<byte> data) => data.Length > 0 && data[0] == Kind;

    /// <summary>The key of the variant that answers <paramref name="request"/>'s values of the marker's fields.</summary>
    public string VariantKey(string primary, IHeaderDictionary request)
    {
        var hash = new XxHash3((long)nonce);
        Span<byte> separator = [0];
        foreach (var name in names)
        {
            // Values as the request gave them, field lines joined: RFC 9111 §4.1 lets a cache normalise no further.
            hash.Append(Encoding.UTF8.GetBytes(string.Join(',', request[name].Select(v => v?.Trim()))));
            hash.Append(separator);
        }

        return primary + "#" + hash.GetCurrentHashAsUInt64().ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    }

    public bool SameNames(IReadOnlyList<string> other) => names.SequenceEqual(other, StringComparer.Ordinal);

    public byte[] Write()
    {
        var parts = names.Select(Encoding.UTF8.GetBytes).ToList();
        var buffer = new byte[1 + 8 + 4 + parts.Sum(p => 4 + p.Length)];
        buffer[0] = Kind;
        BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(1), nonce);
        BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(9), parts.Count);
        var at = 13;
        foreach (var part in parts)
        {
            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(at), part.Length);
            part.CopyTo(buffer.AsSpan(at + 4));
            at += 4 + part.Length;
        }

        return buffer;
    }

    public static VaryMarker? TryRead(ReadOnlySpan<byte> data)
    {
        if (data.Length < 13 || data[0] != Kind)
        {
            return null;
        }

        var nonce = BinaryPrimitives.ReadUInt64LittleEndian(data[1..]);
        var count = BinaryPrimitives.ReadInt32LittleEndian(data[9..]);
        if (count is < 1 or > MaxNames)
        {
            return null;
        }

        var names = new List<string>(count);
        var at = 13;
        for (var i = 0; i < count; i++)
        {
            if (data.Length - at < 4 || BinaryPrimitives.ReadInt32LittleEndian(data[at..]) is var length && (length < 1 || data.Length - at - 4 < length))
            {
                return null;
            }

            names.Add(Encoding.UTF8.GetString(data.Slice(at + 4, length)));
            at += 4 + length;
        }

        return at == data.Length ? new VaryMarker(nonce, names) : null;
    }
}
