using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace Balancer.Observability;

/// <summary>
/// Counts the response body bytes a request writes (nginx's <c>$body_bytes_sent</c>) by standing in for the server's
/// <see cref="IHttpResponseBodyFeature"/>: writes through <see cref="Stream"/> (what YARP copies a backend's body to),
/// through <see cref="Writer"/> and files sent are counted, then passed on unchanged. Installed only for the access-log
/// formats that show the count.
/// </summary>
internal sealed class ResponseByteCounter(IHttpResponseBodyFeature inner) : Stream, IHttpResponseBodyFeature
{
    private CountingPipeWriter? _writer;

    /// <summary>The server's feature this one stands in for.</summary>
    public IHttpResponseBodyFeature Inner => inner;

    /// <summary>Bytes written so far, before any compression or chunked framing by the server.</summary>
    public long Bytes { get; private set; }

    Stream IHttpResponseBodyFeature.Stream => this;

    public PipeWriter Writer => _writer ??= new CountingPipeWriter(inner.Writer, count => Bytes += count);

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public void DisableBuffering() => inner.DisableBuffering();

    public Task StartAsync(CancellationToken cancellationToken = default) => inner.StartAsync(cancellationToken);

    public async Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        await inner.SendFileAsync(path, offset, count, cancellationToken).ConfigureAwait(false);
        Bytes += count ?? new FileInfo(path).Length - offset;
    }

    public Task CompleteAsync() => inner.CompleteAsync();

    public override void Write(byte[] buffer, int offset, int count)
    {
        inner.Stream.Write(buffer, offset, count);
        Bytes += count;
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Stream.Write(buffer);
        Bytes += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await inner.Stream.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        Bytes += buffer.Length;
    }

    public override void Flush() => inner.Stream.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.Stream.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
