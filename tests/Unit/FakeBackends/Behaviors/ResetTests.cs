using FakeBackends.Behaviors;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Unit.FakeBackends.Behaviors;

public sealed class ResetTests
{
    [Fact]
    public async Task BeforeHeaders_AbortsWithNothingWritten()
    {
        var request = new Harness();

        await request.RunAsync(new Reset(ResetPoint.BeforeHeaders, 1.0, new FakeTimeProvider(), new Random(1)));

        Assert.True(request.Aborted);
        Assert.False(request.Proceeded);
        Assert.Equal(0, request.Body.Length);
    }

    [Fact]
    public async Task MidBody_AbortsAfterPartOfABodyAnnouncedLonger()
    {
        var clock = new FakeTimeProvider();
        var request = new Harness();

        var running = request.RunAsync(new Reset(ResetPoint.MidBody, 1.0, clock, new Random(1)));
        Assert.Equal(Reset.BytesBeforeMidBodyReset, request.Body.Length);
        Assert.False(request.Aborted); // the first part is given time to arrive
        clock.Advance(Reset.MidBodyPause);
        await running;

        Assert.True(request.Aborted);
        Assert.Equal(Reset.BytesBeforeMidBodyReset, request.Body.Length);
        Assert.True(request.Http.Response.ContentLength > request.Body.Length);
    }

    [Fact]
    public async Task AtRate_OthersPassThrough()
    {
        var reset = new Reset(ResetPoint.BeforeHeaders, 0.2, new FakeTimeProvider(), new Random(5));
        var aborted = 0;
        for (var i = 0; i < 5_000; i++)
        {
            var request = new Harness();
            await request.RunAsync(reset);
            aborted += request.Aborted ? 1 : 0;
            Assert.NotEqual(request.Aborted, request.Proceeded);
        }

        Assert.InRange(aborted / 5_000.0, 0.18, 0.22);
    }
}
