using FakeBackends.Behaviors;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Unit.FakeBackends.Behaviors;

public sealed class HangTests
{
    [Fact]
    public async Task NeverAnswers_UntilTheClientLeaves()
    {
        var clock = new FakeTimeProvider();
        var request = new Harness();
        var running = request.RunAsync(new Hang(1.0, clock, new Random(1)));

        clock.Advance(TimeSpan.FromDays(1));
        Assert.False(running.IsCompleted);
        request.ClientLeaves();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        Assert.False(request.Proceeded);
    }

    [Fact]
    public async Task AtRate_OthersAreAnswered()
    {
        var hang = new Hang(0.5, new FakeTimeProvider(), new Random(3));
        var hung = 0;
        for (var i = 0; i < 2_000; i++)
        {
            var request = new Harness();
            var running = request.RunAsync(hang);
            hung += running.IsCompleted ? 0 : 1;
            request.ClientLeaves();
        }

        Assert.InRange(hung / 2_000.0, 0.45, 0.55);
    }
}
