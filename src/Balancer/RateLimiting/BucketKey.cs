using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Balancer.RateLimiting;

/// <summary>
/// Whose bucket a request takes from: a client address (IPv4 as itself, IPv4-mapped IPv6 as the IPv4 address it maps,
/// IPv6 by its /64, which one host can fill with addresses at will), or the value of the pool's key header.
/// A value type: looking a bucket up allocates nothing.
/// </summary>
internal readonly record struct BucketKey(UInt128 Address, bool IsIPv6, string? Value)
{
    private static readonly UInt128 Mask64 = UInt128.MaxValue << 64;

    public static BucketKey ForAddress(IPAddress client)
    {
        if (client.IsIPv4MappedToIPv6)
        {
            client = client.MapToIPv4();
        }

        Span<byte> bytes = stackalloc byte[16];
        if (client.AddressFamily == AddressFamily.InterNetwork)
        {
            client.TryWriteBytes(bytes[12..], out _);
            return new BucketKey(BinaryPrimitives.ReadUInt128BigEndian(bytes), false, null);
        }

        client.TryWriteBytes(bytes, out _);
        return new BucketKey(BinaryPrimitives.ReadUInt128BigEndian(bytes) & Mask64, true, null);
    }

    public static BucketKey ForValue(string value) => new(0, false, value);

    /// <summary>The key's text, as the shared buckets name it in Redis: <c>a:10.0.0.1</c>, <c>a:2001:db8::/64</c>, <c>h:VALUE</c>.</summary>
    public override string ToString()
    {
        if (Value is not null)
        {
            return "h:" + Value;
        }

        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, Address);
        return IsIPv6
            ? string.Create(CultureInfo.InvariantCulture, $"a:{new IPAddress(bytes)}/64")
            : "a:" + new IPAddress(bytes[12..]);
    }
}
