using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace Balancer.Caching;

/// <summary>
/// Stands in for the server's <see cref="IHttpResponseBodyFeature"/> while a cacheable response is proxied: every
/// byte goes on to the client as it comes and a copy is kept, up to <c>redis-server.max-object-size</c>; past that the
/// copy is dropped (<see cref="Overflowed"/>) and the response is passed through without being stored.
/// </summary>
internal sealed class CacheCapture(IHttpResponseBodyFeature inner, long maxSize, long? expectedLength) : Stream, IHttpResponseBodyFeature
{
    private MemoryStream? _copy = new(expectedLength is { } length && length <= maxSize ? (int)length : 0);
    private PipeWriter? _writer;

    /// <summary>The body grew past the maximum object size, or was sent from a file: there is no copy.</summary>
    public bool Overflowed => _copy is null;

    /// <summary>The body written so far.</summary>
    public ReadOnlyMemory<byte> Body => _copy is { } copy ? copy.GetBuffer().AsMemory(0, (int)copy.Length) : ReadOnlyMemory<byte>.Empty;

    Stream IHttpResponseBodyFeature.Stream => this;

    public PipeWriter Writer => _writer ??= PipeWriter.Create(this, new StreamPipeWriterOptions(leaveOpen: true));

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public void DisableBuffering() => inner.DisableBuffering();

    public Task StartAsync(CancellationToken cancellationToken = default) => inner.StartAsync(cancellationToken);

    public Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        _copy = null;
        return inner.SendFileAsync(path, offset, count, cancellationToken);
    }

    public async Task CompleteAsync()
    {
        if (_writer is { } writer)
        {
            await writer.FlushAsync().ConfigureAwait(false);
        }

        await inner.CompleteAsync().ConfigureAwait(false);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Stream.Write(buffer);
        Keep(buffer);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await inner.Stream.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        Keep(buffer.Span);
    }

    private void Keep(ReadOnlySpan<byte> buffer)
    {
        if (_copy is not { } copy)
        {
            return;
        }

        if (copy.Length + buffer.Length > maxSize)
        {
            _copy = null;
            return;
        }

        copy.Write(buffer);
    }

    public override void Flush() => inner.Stream.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.Stream.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
