using FakeBackends.Behaviors;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Unit.FakeBackends.Behaviors;

public sealed class TrickleTests
{
    [Fact]
    public async Task BodyGoesOutInSlices_NeverFasterThanTheRate()
    {
        var clock = new FakeTimeProvider();
        var sink = new RecordingStream(clock);
        var throttled = new ThrottledStream(sink, bytesPerSecond: 1000, clock);

        var writing = throttled.WriteAsync(new byte[2000]).AsTask();
        for (var step = 0; step < 1000 && !writing.IsCompleted; step++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(10));
            await Task.Delay(1); // let the writer's continuation take its next slice
        }

        await writing;
        Assert.Equal(40, sink.Writes.Count); // twenty slices a second: 50 bytes each
        Assert.All(sink.Writes, w => Assert.Equal(50, w.Bytes));
        var start = sink.Writes[0].At;
        for (var i = 0; i < sink.Writes.Count; i++)
        {
            Assert.True(sink.Writes[i].At - start >= TimeSpan.FromMilliseconds(50 * i), $"slice {i} went out {sink.Writes[i].At - start} after the first");
        }
    }

    [Fact]
    public async Task AsksForABodyWorthTrickling()
    {
        var request = new Harness();

        await request.RunAsync(new Trickle(1000, 8192, new FakeTimeProvider()));

        Assert.True(request.Proceeded);
        Assert.Equal(8192, request.Context.PadBodyTo);
        Assert.Same(request.Body, request.Http.Response.Body); // put back once answered
    }

    private sealed class RecordingStream(TimeProvider clock) : MemoryStream
    {
        public List<(DateTimeOffset At, int Bytes)> Writes { get; } = [];

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Writes.Add((clock.GetUtcNow(), buffer.Length));
            return base.WriteAsync(buffer, cancellationToken);
        }
    }
}
