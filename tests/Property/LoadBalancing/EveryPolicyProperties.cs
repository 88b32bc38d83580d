using Balancer.LoadBalancing;
using Balancer.Tests.Kit;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Yarp.ReverseProxy.LoadBalancing;

namespace Balancer.Tests.Properties.LoadBalancing;

public sealed class EveryPolicyProperties
{
    public static TheoryData<string> Names => [.. AlgorithmNames.All];

    [Property(MaxTest = 1600)]
    public Property Pick_NeverPicksAZeroWeightBackend_OrOneNotOffered() =>
        Prop.ForAll(Gen.Elements<string>(AlgorithmNames.All).ToArbitrary(), Gen.Choose(1, 12).ToArbitrary(), Gen.Choose(0, int.MaxValue).ToArbitrary(), (name, n, seed) =>
        {
            var random = new Random(seed);
            var everyone = Destinations.Create(n + 3, i => i % 3 == 0 ? 0 : random.Next(1, 5));
            var offered = everyone.Take(n).ToArray(); // the last three are not available
            var policy = Create(name, seed);
            var cluster = Destinations.Cluster();
            for (var i = 0; i < 50; i++)
            {
                var picked = policy.PickDestination(Destinations.Context(random), cluster, offered);
                if (picked is null ? offered.Any(d => Weight(d) > 0) : !offered.Contains(picked) || Weight(picked) == 0)
                {
                    return false;
                }
            }

            return true;
        });

    [Theory]
    [MemberData(nameof(Names))]
    public void Pick_NoneOrOneBackend_NeverThrows(string name)
    {
        var policy = Create(name, 1);
        var one = Destinations.Create(1);

        Assert.Null(policy.PickDestination(Destinations.Context(), Destinations.Cluster(), []));
        Assert.Same(one[0], policy.PickDestination(Destinations.Context(), Destinations.Cluster(), one));
        Assert.Null(policy.PickDestination(Destinations.Context(), Destinations.Cluster(), Destinations.Create(2, _ => 0)));
    }

    [Fact]
    public void EveryCanonicalName_HasAPolicy() =>
        Assert.Equal(AlgorithmNames.All.Order(), AlgorithmNames.All.Select(n => Create(n, 0).Name).Order());

    private static int Weight(Yarp.ReverseProxy.Model.DestinationState d) => int.Parse(d.Model.Config.Metadata![Balancer.Proxy.DestinationMetadata.Weight], System.Globalization.CultureInfo.InvariantCulture);

    private static ILoadBalancingPolicy Create(string name, int seed) => name switch
    {
        AlgorithmNames.RoundRobin => new RoundRobinPolicy(),
        AlgorithmNames.WeightedRoundRobin => new WeightedRoundRobinPolicy(),
        AlgorithmNames.LeastConnections => new LeastConnectionsPolicy(),
        AlgorithmNames.WeightedLeastConnections => new WeightedLeastConnectionsPolicy(),
        AlgorithmNames.PowerOfTwo => new PowerOfTwoPolicy(new Random(seed)),
        AlgorithmNames.Random => new RandomPolicy(new Random(seed)),
        AlgorithmNames.IpHash => new IpHashPolicy(Options.Default),
        AlgorithmNames.ConsistentHash => new ConsistentHashPolicy(Options.Default),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };
}
