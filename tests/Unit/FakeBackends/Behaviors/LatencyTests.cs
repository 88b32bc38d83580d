using FakeBackends.Behaviors;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Unit.FakeBackends.Behaviors;

public sealed class LatencyTests
{
    [Fact]
    public async Task Fixed_AnswersOnlyOnceTheDelayHasPassed()
    {
        var clock = new FakeTimeProvider();
        var request = new Harness();
        var running = request.RunAsync(new Latency(new FixedLatency(TimeSpan.FromMilliseconds(200)), clock, new Random(1)));

        clock.Advance(TimeSpan.FromMilliseconds(199));
        Assert.False(request.Proceeded);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        await running;

        Assert.True(request.Proceeded);
    }

    [Fact]
    public void Uniform_StaysWithinItsBounds_AndCoversThem()
    {
        var uniform = new UniformLatency(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(50));
        var random = new Random(7);

        var samples = Enumerable.Range(0, 10_000).Select(_ => uniform.Sample(random).TotalMilliseconds).ToList();

        Assert.All(samples, s => Assert.InRange(s, 10, 50));
        Assert.True(samples.Min() < 11 && samples.Max() > 49);
    }

    [Fact]
    public void Tail_HasTheGivenMedianAndP99()
    {
        var tail = new TailLatency(TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(300));
        var random = new Random(7);

        var samples = Enumerable.Range(0, 200_000).Select(_ => tail.Sample(random).TotalMilliseconds).Order().ToList();

        Assert.InRange(samples[samples.Count / 2], 19, 21);
        Assert.InRange(samples[(int)(samples.Count * 0.99)], 285, 315);
        Assert.True(samples[^1] <= 3000, "capped at ten times the p99");
    }

    [Fact]
    public async Task ClientLeaving_EndsTheWait()
    {
        var request = new Harness();
        var running = request.RunAsync(new Latency(new FixedLatency(TimeSpan.FromHours(1)), new FakeTimeProvider(), new Random(1)));

        request.ClientLeaves();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        Assert.False(request.Proceeded);
    }
}
