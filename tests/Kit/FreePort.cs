using System.Net;
using System.Net.Sockets;

namespace Balancer.Tests.Kit;

/// <summary>Loopback ports for things that cannot be told to pick their own (external processes).</summary>
public static class FreePort
{
    /// <summary>A port that was free a moment ago: the OS picks it, we release it for the caller to bind.</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A port nothing listens on, for "connection refused".</summary>
    public static int Closed() => Next();
}
