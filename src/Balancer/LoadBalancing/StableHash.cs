using System.Net;
using System.Runtime.CompilerServices;

namespace Balancer.LoadBalancing;

/// <summary>
/// A 64-bit hash that is the same in every process and on every machine (unlike <see cref="string.GetHashCode()"/>),
/// so that every balancer instance, and every restart, maps a key to the same backend. FNV-1a over the input,
/// finished with a full-avalanche mixer. Allocation-free.
/// </summary>
internal static class StableHash
{
    private const ulong Offset = 14695981039346656037UL;
    private const ulong Prime = 1099511628211UL;

    public static ulong Of(ReadOnlySpan<char> text, ulong seed = 0)
    {
        var hash = Offset ^ seed;
        foreach (var ch in text)
        {
            hash = (hash ^ ch) * Prime;
        }

        return Mix(hash);
    }

    public static ulong Of(ReadOnlySpan<byte> bytes, ulong seed = 0)
    {
        var hash = Offset ^ seed;
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * Prime;
        }

        return Mix(hash);
    }

    /// <summary>An address's hash; an IPv4-mapped IPv6 address hashes as its IPv4 form.</summary>
    public static ulong Of(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        return Of(bytes[..written]);
    }

    /// <summary>The murmur3 64-bit finalizer: every input bit affects every output bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix(ulong x)
    {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdUL;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53UL;
        x ^= x >> 33;
        return x;
    }
}
