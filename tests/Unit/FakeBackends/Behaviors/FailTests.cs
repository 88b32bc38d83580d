using FakeBackends.Behaviors;

namespace Balancer.Tests.Unit.FakeBackends.Behaviors;

public sealed class FailTests
{
    [Fact]
    public async Task AtRate_ThatShareOfAnswersCarriesTheStatus_AndAllAreStillAnswered()
    {
        var fail = new Fail(503, 0.3, new Random(11));
        var failed = 0;
        for (var i = 0; i < 10_000; i++)
        {
            var request = new Harness();
            await request.RunAsync(fail);
            Assert.True(request.Proceeded);
            failed += request.Http.Response.StatusCode == 503 ? 1 : 0;
        }

        Assert.InRange(failed / 10_000.0, 0.28, 0.32);
    }

    [Fact]
    public async Task Always_WithoutARate()
    {
        var request = new Harness();

        await request.RunAsync(new Fail(500, 1.0, new Random(1)));

        Assert.Equal(500, request.Http.Response.StatusCode);
    }
}
