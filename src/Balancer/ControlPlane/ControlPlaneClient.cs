using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace Balancer.ControlPlane;

/// <summary>
/// A client of the control plane, speaking the same codec as the balancer: what fake backends use to register
/// themselves, and what tests use to drive it. Requests may be pipelined: send several, then read the answers,
/// which come back in order.
/// </summary>
public sealed class ControlPlaneClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _input;

    private ControlPlaneClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _input = PipeReader.Create(_stream);
    }

    /// <summary>The address the server sees this connection come from.</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    /// <summary>Connects to <paramref name="server"/>, from <paramref name="localAddress"/> if given (127.0.0.2, say).</summary>
    public static async Task<ControlPlaneClient> ConnectAsync(IPEndPoint server, IPAddress? localAddress = null, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (localAddress is not null)
            {
                socket.Bind(new IPEndPoint(localAddress, 0));
            }

            await socket.ConnectAsync(server, cancellationToken).ConfigureAwait(false);
            return new ControlPlaneClient(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends one request and waits for its answer.</summary>
    public async Task<ControlResponse> SendAsync(RegistrationRequest request, CancellationToken cancellationToken = default)
    {
        await WriteAsync(ControlPlaneCodec.EncodeRequest(request), cancellationToken).ConfigureAwait(false);
        return await ReadResponseAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new IOException("The control plane closed the connection without answering.");
    }

    /// <summary>Writes bytes as they are: one or several packets, or deliberately broken ones.</summary>
    public async Task WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default)
    {
        await _stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads the next answer; null when the server has closed the connection.</summary>
    public async Task<ControlResponse?> ReadResponseAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var read = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = read.Buffer;
            var status = ControlPlaneCodec.TryReadResponse(ref buffer, out var response, out var error);
            switch (status)
            {
                case FrameStatus.Frame:
                    // Only what was consumed is examined: further answers may already be buffered.
                    _input.AdvanceTo(buffer.Start);
                    return response;
                case FrameStatus.FramingError:
                    _input.AdvanceTo(buffer.Start);
                    throw new IOException($"Not a control-plane answer: {error}");
                default:
                    _input.AdvanceTo(buffer.Start, buffer.End);
                    if (read.IsCompleted)
                    {
                        return buffer.Length == 0 ? null : throw new IOException("The connection closed in the middle of an answer.");
                    }

                    break;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _input.CompleteAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }
}
