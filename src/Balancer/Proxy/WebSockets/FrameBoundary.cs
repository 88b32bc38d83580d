using System.Buffers.Binary;

namespace Balancer.Proxy.WebSockets;

/// <summary>
/// Follows the WebSocket frames (RFC 6455 5.2) in a byte stream written in arbitrary pieces, to know when it stands
/// between two frames: the only place another frame (a close frame) may be put in. Reads headers only; payloads are
/// skipped by length. Pure: no I/O.
/// </summary>
internal sealed class FrameBoundary
{
    private readonly byte[] _header = new byte[14];
    private int _headerRead;
    private int _headerLength = 2;
    private long _payloadLeft;

    /// <summary>True between frames: nothing of a frame has been written that its end has not followed.</summary>
    public bool AtBoundary => _headerRead == 0 && _payloadLeft == 0;

    /// <summary>Takes note of bytes written to the stream, in order.</summary>
    public void Advance(ReadOnlySpan<byte> written)
    {
        while (written.Length > 0)
        {
            if (_payloadLeft > 0)
            {
                var skip = (int)Math.Min(_payloadLeft, written.Length);
                _payloadLeft -= skip;
                written = written[skip..];
                continue;
            }

            _header[_headerRead++] = written[0];
            written = written[1..];
            if (_headerRead == 2)
            {
                var length = _header[1] & 0x7F;
                var masked = (_header[1] & 0x80) != 0;
                _headerLength = 2 + (length == 126 ? 2 : length == 127 ? 8 : 0) + (masked ? 4 : 0);
            }

            if (_headerRead >= 2 && _headerRead == _headerLength)
            {
                var length = _header[1] & 0x7F;
                _payloadLeft = length switch
                {
                    126 => BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(2)),
                    127 => (long)Math.Min(BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(2)), long.MaxValue),
                    _ => length,
                };
                _headerRead = 0;
                _headerLength = 2;
            }
        }
    }
}
