using System.Net;
using System.Net.Sockets;

namespace Balancer.Networking;

/// <summary>
/// An immutable set of IP networks (IPv4 and IPv6). A bare address is a network of one address.
/// IPv4-mapped IPv6 peers (<c>::ffff:10.0.0.1</c>, what a dual-stack socket reports) match IPv4 entries.
/// </summary>
public sealed class NetworkList
{
    /// <summary>The empty list: contains nothing.</summary>
    public static readonly NetworkList Empty = new([]);

    /// <summary>127.0.0.0/8 and ::1.</summary>
    public static readonly NetworkList Loopback = new([new IPNetwork(IPAddress.Parse("127.0.0.0"), 8), new IPNetwork(IPAddress.IPv6Loopback, 128)]);

    private readonly IPNetwork[] _networks;

    /// <summary>Creates a list of the given networks.</summary>
    public NetworkList(IEnumerable<IPNetwork> networks) => _networks = [.. networks];

    /// <summary>The networks, in the order given.</summary>
    public IReadOnlyList<IPNetwork> Networks => _networks;

    /// <summary>True when <paramref name="address"/> lies in one of the networks.</summary>
    public bool Contains(IPAddress? address)
    {
        if (address is null)
        {
            return false;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        foreach (var network in _networks)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Parses an address (<c>10.1.2.3</c>, <c>::1</c>) or a CIDR (<c>10.0.0.0/8</c>, <c>fd00::/8</c>).
    /// On failure <paramref name="error"/> says what is wrong, starting with the text given.
    /// </summary>
    public static bool TryParseNetwork(string text, out IPNetwork network, out string error)
    {
        network = default;
        error = "";
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            if (IPAddress.TryParse(text, out var single) && !text.Contains('%', StringComparison.Ordinal))
            {
                if (single.IsIPv4MappedToIPv6)
                {
                    single = single.MapToIPv4();
                }

                network = new IPNetwork(single, single.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
                return true;
            }
        }
        else if (IPAddress.TryParse(text.AsSpan(0, slash), out var baseAddress)
                 && int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, null, out var prefix)
                 && prefix <= (baseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
        {
            var masked = Mask(baseAddress, prefix);
            if (!masked.Equals(baseAddress))
            {
                error = $"{text} has host bits set; did you mean {masked}/{prefix}?";
                return false;
            }

            network = new IPNetwork(baseAddress, prefix);
            return true;
        }

        error = $"{text} is not an IP address or CIDR";
        return false;
    }

    private static IPAddress Mask(IPAddress address, int prefix)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var bitsInByte = Math.Clamp(prefix - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - bitsInByte));
        }

        return new IPAddress(bytes);
    }
}
