using System.Net;
using System.Net.Sockets;

namespace Testbed.Scenarios;

/// <summary>Free loopback ports, for what must be started on a port known in advance.</summary>
internal static class LoopbackPort
{
    /// <summary>A port that was free a moment ago: the OS picks it, and it is released for the caller to bind.</summary>
    public static int Next() => Next(1)[0];

    /// <summary><paramref name="count"/> distinct such ports: each is held until all are chosen, so none is handed out twice.</summary>
    public static int[] Next(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
            }

            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Dispose();
            }
        }
    }
}
