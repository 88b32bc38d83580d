using Balancer.Configuration;

namespace FakeBackends.Behaviors;

/// <summary>
/// Sends the body at a limited bandwidth (Toxiproxy's <c>bandwidth</c>), padded to a size worth trickling:
/// <c>trickle: { rate: 2KB, size: 16KB }</c> sends 16 KB at 2 KB per second.
/// </summary>
public sealed class Trickle(long bytesPerSecond, int size, TimeProvider time) : IBehavior
{
    public string Spec => $"{Name}: {{ rate: {ValueParsers.FormatSize(bytesPerSecond)}, size: {ValueParsers.FormatSize(size)} }}";

    public async Task InvokeAsync(BehaviorContext context, Func<Task> proceed)
    {
        var response = context.Http.Response;
        var original = response.Body;
        context.PadBodyTo = Math.Max(context.PadBodyTo, size);
        response.Body = new ThrottledStream(original, bytesPerSecond, time);
        try
        {
            await proceed().ConfigureAwait(false);
        }
        finally
        {
            response.Body = original;
        }
    }

    internal static IBehavior? Read(ConfigSection item, BehaviorEnvironment environment)
    {
        if (!item.IsNested(Name))
        {
            item.Error(Name, "give the bandwidth and body size: trickle: { rate: 2KB, size: 16KB }");
            return null;
        }

        var spec = item.Section(Name);
        var rate = spec.Value("rate", 1024L, ValueParsers.Size);
        var size = spec.Value("size", 16L * 1024, ValueParsers.Size);
        if (rate <= 0 || size > 64L * 1024 * 1024)
        {
            spec.Error("needs a rate above 0 bytes per second and a size up to 64MB");
            return null;
        }

        return new Trickle(rate, (int)size, environment.Time);
    }

    internal const string Name = "trickle";
}

/// <summary>Writes through to another stream in slices, each followed by the pause the bandwidth allows.</summary>
internal sealed class ThrottledStream(Stream inner, long bytesPerSecond, TimeProvider time) : Stream
{
    // Twenty slices a second: smooth enough to look like a slow link, few enough timers.
    private readonly int _slice = (int)Math.Clamp(bytesPerSecond / 20, 1, 64 * 1024);

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        for (var offset = 0; offset < buffer.Length; offset += _slice)
        {
            var slice = buffer.Slice(offset, Math.Min(_slice, buffer.Length - offset));
            await inner.WriteAsync(slice, cancellationToken).ConfigureAwait(false);
            await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
            await Task.Delay(TimeSpan.FromSeconds(slice.Length / (double)bytesPerSecond), time, cancellationToken).ConfigureAwait(false);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => throw new NotSupportedException("synchronous writes would block a thread for the whole trickle");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("synchronous writes would block a thread for the whole trickle");

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
