using System.Net;
using System.Net.Sockets;

namespace Testbed.Scenarios;

/// <summary>Loopback ports for listeners that must know theirs before they start (to come back on it after a restart).</summary>
internal static class LoopbackPort
{
    /// <summary>A port that was free a moment ago: the OS picks it, and it is released for the caller to bind.</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
