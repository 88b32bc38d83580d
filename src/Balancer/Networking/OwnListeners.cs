using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Balancer.Networking;

/// <summary>
/// The balancer's own listeners (proxy, admin API, control plane), and whether a backend address would reach one of
/// them: such a backend would send every request it is given straight back to the balancer, which would forward it
/// again, until the process ran out of file descriptors. An address is checked when it is an IP literal, or a name
/// that is this host's own (<c>localhost</c>, the machine name); any other name is caught at request time instead,
/// by the hop header (<see cref="Proxy.LoopGuard"/>).
/// </summary>
internal sealed class OwnListeners
{
    private readonly HashSet<IPAddress> _hostAddresses;
    private readonly HashSet<string> _hostNames;
    private IReadOnlyList<Listener> _listeners = [];

    /// <param name="hostAddresses">This host's own addresses (its interfaces'); loopback and unspecified ones are always local.</param>
    /// <param name="hostNames">Names that mean this host.</param>
    public OwnListeners(IEnumerable<IPAddress> hostAddresses, IEnumerable<string> hostNames)
    {
        _hostAddresses = hostAddresses.Select(Unmapped).ToHashSet();
        _hostNames = hostNames.ToHashSet(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>A listener: what it is called in messages (with its config key), and where it is bound.</summary>
    public sealed record Listener(string Name, IPEndPoint Endpoint);

    /// <summary>This machine: the addresses of its interfaces, and its names.</summary>
    public static OwnListeners ForThisHost() =>
        new(HostAddresses(), ["localhost", "localhost.", Environment.MachineName, Dns.GetHostName()]);

    /// <summary>The addresses of this host's network interfaces (none, if they cannot be listed).</summary>
    public static IReadOnlyList<IPAddress> HostAddresses()
    {
        try
        {
            return [.. NetworkInterface.GetAllNetworkInterfaces().SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(a => a.Address)];
        }
        catch (NetworkInformationException)
        {
            return [];
        }
    }

    /// <summary>Where the listeners are bound (set again once the ports of listeners configured with port 0 are known).</summary>
    public void Set(IEnumerable<Listener> listeners) => Volatile.Write(ref _listeners, [.. listeners.Where(l => l.Endpoint.Port != 0)]);

    /// <summary>Why <paramref name="address"/> (<c>scheme://host:port</c>) may not be a backend, or null when it may.</summary>
    public string? Refusal(string address)
    {
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri))
        {
            return null;
        }

        var listeners = Volatile.Read(ref _listeners);
        IPAddress[] targets = IPAddress.TryParse(uri.IdnHost.Trim('[', ']'), out var literal) ? [Unmapped(literal)]
            : _hostNames.Contains(uri.IdnHost) ? [IPAddress.Loopback, IPAddress.IPv6Loopback]
            : [];
        foreach (var listener in listeners.Where(l => l.Endpoint.Port == uri.Port))
        {
            if (targets.Any(t => Reaches(t, listener.Endpoint.Address)))
            {
                return $"{address} is this balancer's own {listener.Name} ({listener.Endpoint}): it would send every request back to the balancer";
            }
        }

        return null;
    }

    /// <summary>Whether a connection to <paramref name="target"/> would be accepted by a socket bound to <paramref name="bind"/>.</summary>
    private bool Reaches(IPAddress target, IPAddress bind)
    {
        bind = Unmapped(bind);

        // Connecting to 0.0.0.0 or :: reaches the host itself (Linux treats them as loopback).
        if (target.Equals(IPAddress.Any))
        {
            target = IPAddress.Loopback;
        }
        else if (target.Equals(IPAddress.IPv6Any))
        {
            target = IPAddress.IPv6Loopback;
        }

        var local = IPAddress.IsLoopback(target) || _hostAddresses.Contains(target);
        return bind.Equals(IPAddress.IPv6Any) ? local // dual-stack: every local address, either family
            : bind.Equals(IPAddress.Any) ? local && target.AddressFamily == AddressFamily.InterNetwork
            : target.Equals(bind);
    }

    private static IPAddress Unmapped(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
