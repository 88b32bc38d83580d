using FakeBackends.Behaviors;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Unit.FakeBackends.Behaviors;

public sealed class FlapTests
{
    [Fact]
    public async Task UpThenDown_OverAndOver_HealthAndRequestsAlike()
    {
        var clock = new FakeTimeProvider();
        var flap = new Flap(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1), healthOnly: false, 503, clock);

        var seen = new List<(bool Healthy, int Status)>();
        for (var i = 0; i < 7; i++)
        {
            var request = new Harness();
            await request.RunAsync(flap);
            seen.Add((flap.IsHealthy(clock.GetUtcNow()), request.Http.Response.StatusCode));
            clock.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal([(true, 200), (true, 200), (false, 503), (true, 200), (true, 200), (false, 503), (true, 200)], seen);
    }

    [Fact]
    public async Task HealthOnly_KeepsServingWhileDown()
    {
        var clock = new FakeTimeProvider();
        var flap = new Flap(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), healthOnly: true, 503, clock);
        clock.Advance(TimeSpan.FromSeconds(1.5));
        var request = new Harness();

        await request.RunAsync(flap);

        Assert.False(flap.IsHealthy(clock.GetUtcNow()));
        Assert.Equal(200, request.Http.Response.StatusCode);
    }
}
