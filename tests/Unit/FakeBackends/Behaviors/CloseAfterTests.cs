using FakeBackends.Behaviors;

namespace Balancer.Tests.Unit.FakeBackends.Behaviors;

public sealed class CloseAfterTests
{
    [Fact]
    public async Task Silent_TheNthAnswerOnAConnection_IsFollowedByAClose()
    {
        var closeAfter = new CloseAfter(3, notice: false);
        var request = new Harness();
        var closes = new List<bool>();
        for (var i = 0; i < 3; i++)
        {
            await request.RunAsync(closeAfter);
            await request.CompleteAsync();
            closes.Add(request.CloseRequested);
            Assert.True(request.Proceeded);
            Assert.False(request.Http.Response.Headers.ContainsKey("Connection"));
            request = request.Next();
        }

        Assert.Equal([false, false, true], closes);
    }

    [Fact]
    public async Task WithNotice_TheNthAnswerSaysConnectionClose()
    {
        var closeAfter = new CloseAfter(2, notice: true);
        var first = new Harness();
        await first.RunAsync(closeAfter);
        var second = first.Next();

        await second.RunAsync(closeAfter);
        await second.CompleteAsync();

        Assert.False(first.Http.Response.Headers.ContainsKey("Connection"));
        Assert.Equal("close", second.Http.Response.Headers.Connection);
        Assert.False(second.CloseRequested);
    }
}
