using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Balancer.Tests.Kit;

/// <summary>
/// GETs one path (with one more header, when given) over one keep-alive connection, reading each response by its
/// Content-Length into one buffer: a client that allocates nothing per request, for measuring what a proxy allocates.
/// </summary>
public sealed class KeepAliveClient : IDisposable
{
    private readonly byte[] _request;
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[64 * 1024];

    public KeepAliveClient(IPEndPoint target, string path = "/bench?x=1", string? header = null)
    {
        _request = Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: bench\r\n{(header is null ? "" : header + "\r\n")}\r\n");
        _socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket.Connect(target);
    }

    /// <summary>The status code of the latest response.</summary>
    public int Status { get; private set; }

    public async ValueTask GetAsync()
    {
        await _socket.SendAsync(_request, SocketFlags.None);
        var filled = 0;
        while (true)
        {
            var read = await _socket.ReceiveAsync(_buffer.AsMemory(filled), SocketFlags.None);
            if (read == 0)
            {
                throw new IOException("the server closed the connection");
            }

            filled += read;
            var text = _buffer.AsSpan(0, filled);
            var end = text.IndexOf("\r\n\r\n"u8);
            if (end < 0)
            {
                continue;
            }

            var header = text[..end];
            var at = header.IndexOf("Content-Length: "u8);
            if (at < 0)
            {
                throw new IOException("the response has no Content-Length");
            }

            var rest = header[(at + 16)..];
            var eol = rest.IndexOf("\r\n"u8);
            var length = int.Parse(eol < 0 ? rest : rest[..eol], CultureInfo.InvariantCulture);
            if (filled >= end + 4 + length)
            {
                Status = int.Parse(header.Slice(9, 3), CultureInfo.InvariantCulture);
                return;
            }
        }
    }

    public void Dispose() => _socket.Dispose();
}
