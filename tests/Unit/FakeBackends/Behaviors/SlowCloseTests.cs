using FakeBackends.Behaviors;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Unit.FakeBackends.Behaviors;

public sealed class SlowCloseTests
{
    [Fact]
    public async Task AnswersInFull_WithConnectionClose_ThenHoldsOnBeforeClosing()
    {
        var clock = new FakeTimeProvider();
        var request = new Harness();
        var running = request.RunAsync(new SlowClose(TimeSpan.FromSeconds(2), clock));

        Assert.True(request.Proceeded);
        Assert.Equal("close", request.Http.Response.Headers.Connection);
        clock.Advance(TimeSpan.FromSeconds(1.9));
        Assert.False(running.IsCompleted);
        clock.Advance(TimeSpan.FromSeconds(0.1));
        await running;
    }
}
