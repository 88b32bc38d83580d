using Balancer.LoadBalancing;
using Balancer.Tests.Kit;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Balancer.Tests.Properties.LoadBalancing;

public sealed class PowerOfTwoAndRandomProperties
{
    [Property(MaxTest = 200)]
    public Property PowerOfTwo_NeverPicksTheUniqueBusiestBackend() =>
        Prop.ForAll(Gen.Choose(2, 20).ToArbitrary(), Gen.Choose(0, int.MaxValue).ToArbitrary(), (n, seed) =>
        {
            var destinations = Destinations.Create(n);
            var random = new Random(seed);
            var busiest = random.Next(n);
            for (var i = 0; i < n; i++)
            {
                destinations[i].ConcurrentRequestCount = i == busiest ? 100 : random.Next(100);
            }

            var policy = new PowerOfTwoPolicy(new Random(seed));
            var cluster = Destinations.Cluster();
            return Enumerable.Range(0, 200).All(_ => policy.PickDestination(Destinations.Context(), cluster, destinations) != destinations[busiest]);
        });

    [Theory]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(16)]
    public void PowerOfTwo_EqualLoad_SpreadsEvenly(int n)
    {
        var destinations = Destinations.Create(n);
        var policy = new PowerOfTwoPolicy(new Random(42));
        var hits = new int[n];
        for (var i = 0; i < 20_000 * n; i++)
        {
            hits[Destinations.IndexOf(policy.PickDestination(Destinations.Context(), Destinations.Cluster(), destinations)!)]++;
        }

        AssertWithinBounds(hits, Enumerable.Repeat(1.0 / n, n).ToArray());
    }

    [Theory]
    [InlineData(new[] { 1, 1, 1, 1 })]
    [InlineData(new[] { 5, 1, 1 })]
    [InlineData(new[] { 1, 9 })]
    [InlineData(new[] { 3, 0, 2, 7, 1 })]
    public void Random_FollowsTheWeights_AndNeverPicksWeightZero(int[] weights) =>
        AssertSharesFollow(weights, new RandomPolicy(new Random(7)));

    [Theory]
    [InlineData(new[] { 5, 1, 1 })]
    [InlineData(new[] { 1, 9 })]
    [InlineData(new[] { 3, 0, 2, 7, 1 })]
    [InlineData(new[] { 1000, 1 })]
    public void PowerOfTwo_EqualLoad_FollowsTheWeights_AndNeverPicksWeightZero(int[] weights) =>
        AssertSharesFollow(weights, new PowerOfTwoPolicy(new Random(11)));

    /// <summary>200,000 picks at equal (no) load: each backend's share is its weight's, within 5σ; weight 0 is never picked.</summary>
    private static void AssertSharesFollow(int[] weights, Yarp.ReverseProxy.LoadBalancing.ILoadBalancingPolicy policy)
    {
        var destinations = Destinations.Create(weights.Length, i => weights[i]);
        var cluster = Destinations.Cluster();
        var hits = new int[weights.Length];
        const int Draws = 200_000;
        for (var i = 0; i < Draws; i++)
        {
            hits[Destinations.IndexOf(policy.PickDestination(Destinations.Context(), cluster, destinations)!)]++;
        }

        double total = weights.Sum();
        AssertWithinBounds(hits, [.. weights.Select(w => w / total)]);
    }

    [Property(MaxTest = 200)]
    public Property PowerOfTwo_WeightedDraws_NeverPickTheUniqueBusiestBackend() =>
        Prop.ForAll(Gen.Choose(2, 12).ToArbitrary(), Gen.Choose(0, int.MaxValue).ToArbitrary(), (n, seed) =>
        {
            var random = new Random(seed);
            var weights = Enumerable.Range(0, n).Select(_ => random.Next(1, 1000)).ToArray();
            var destinations = Destinations.Create(n, i => weights[i]);
            var busiest = random.Next(n);
            for (var i = 0; i < n; i++)
            {
                destinations[i].ConcurrentRequestCount = i == busiest ? 100 : random.Next(100);
            }

            var policy = new PowerOfTwoPolicy(new Random(seed));
            var cluster = Destinations.Cluster();
            return Enumerable.Range(0, 200).All(_ => policy.PickDestination(Destinations.Context(), cluster, destinations) != destinations[busiest]);
        });

    /// <summary>Each count within 5 standard deviations of its binomial expectation (a seeded run: no flakiness).</summary>
    private static void AssertWithinBounds(int[] hits, double[] shares)
    {
        var draws = hits.Sum();
        for (var i = 0; i < hits.Length; i++)
        {
            var expected = draws * shares[i];
            var sigma = Math.Sqrt(draws * shares[i] * (1 - shares[i]));
            Assert.InRange(hits[i], expected - (5 * sigma) - 1, expected + (5 * sigma) + 1);
        }
    }
}
