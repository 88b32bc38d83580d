namespace Balancer.Proxy.WebSockets;

/// <summary>
/// The client side of a proxied WebSocket, as YARP reads and writes it, able to end the conversation properly: at
/// shutdown it puts a close frame (1001, going away) between two of the backend's frames, and drops what the backend
/// sends after it, so the client hears a close rather than a reset.
/// </summary>
internal sealed class ClosingStream(Stream inner, UpgradedConnections owner) : Stream
{
    private static readonly byte[] GoingAway = [0x88, 0x02, 0x03, 0xE9]; // FIN + close, 2 bytes of payload: 1001
    private readonly FrameBoundary _boundary = new();
    private readonly SemaphoreSlim _writing = new(1, 1);
    private bool _closed;

    public override bool CanRead => inner.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => inner.CanWrite;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Sends the close frame once the backend's frames allow it; false when they did not within <paramref name="patience"/>.</summary>
    public async Task<bool> CloseAsync(TimeSpan patience, TimeProvider time)
    {
        var deadline = time.GetTimestamp() + (long)(patience.TotalSeconds * time.TimestampFrequency);
        while (true)
        {
            // A backend write can hold the lock while a client does not read: wait no longer than the patience allows.
            var left = TimeSpan.FromSeconds(Math.Max(0, deadline - time.GetTimestamp()) / (double)time.TimestampFrequency);
            if (!await _writing.WaitAsync(left).ConfigureAwait(false))
            {
                return false;
            }

            try
            {
                if (_closed)
                {
                    return true;
                }

                if (_boundary.AtBoundary)
                {
                    _closed = true;
                    await inner.WriteAsync(GoingAway).ConfigureAwait(false);
                    await inner.FlushAsync().ConfigureAwait(false);
                    return true;
                }
            }
            finally
            {
                _writing.Release();
            }

            if (time.GetTimestamp() >= deadline)
            {
                return false;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(10), time).ConfigureAwait(false);
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _writing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_closed)
            {
                return; // after our close frame, nothing more goes to the client
            }

            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            _boundary.Advance(buffer.Span);
        }
        finally
        {
            _writing.Release();
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            owner.Forget(this);
            inner.Dispose();
            _writing.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        owner.Forget(this);
        await inner.DisposeAsync().ConfigureAwait(false);
        _writing.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
