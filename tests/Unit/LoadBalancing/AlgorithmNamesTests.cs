using Balancer.LoadBalancing;

namespace Balancer.Tests.Unit.LoadBalancing;

public sealed class AlgorithmNamesTests
{
    [Theory]
    [InlineData("Least-Connected", AlgorithmNames.LeastConnections)]
    [InlineData("least_conn", AlgorithmNames.LeastConnections)]
    [InlineData("least-connections", AlgorithmNames.LeastConnections)]
    [InlineData("leastconn", AlgorithmNames.LeastConnections)]
    [InlineData("round_robin", AlgorithmNames.RoundRobin)]
    [InlineData("round-robin", AlgorithmNames.RoundRobin)]
    [InlineData("roundrobin", AlgorithmNames.RoundRobin)]
    [InlineData("weighted-round-robin", AlgorithmNames.WeightedRoundRobin)]
    [InlineData("weighted", AlgorithmNames.WeightedLeastConnections)]
    [InlineData("ip_hash", AlgorithmNames.IpHash)]
    [InlineData("IP-Hash", AlgorithmNames.IpHash)]
    [InlineData("power-of-two-choices", AlgorithmNames.PowerOfTwo)]
    [InlineData("p2c", AlgorithmNames.PowerOfTwo)]
    [InlineData("random", AlgorithmNames.Random)]
    [InlineData("consistent_hash", AlgorithmNames.ConsistentHash)]
    public void Canonicalize_SeedSpellings_MapToOneName(string spelling, string canonical) =>
        Assert.Equal(canonical, AlgorithmNames.Canonicalize(spelling));

    [Fact]
    public void Canonicalize_UnknownName_IsNull() => Assert.Null(AlgorithmNames.Canonicalize("fastest"));
}
