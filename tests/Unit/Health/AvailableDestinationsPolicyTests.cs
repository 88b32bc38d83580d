using Balancer.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Unit.Health;

public sealed class AvailableDestinationsPolicyTests
{
    [Theory]
    [InlineData(DestinationHealth.Unknown, DestinationHealth.Unhealthy, false)] // a failed first probe: out before, out after
    [InlineData(DestinationHealth.Unknown, DestinationHealth.Healthy, true)]
    [InlineData(DestinationHealth.Healthy, DestinationHealth.Unhealthy, true)]
    [InlineData(DestinationHealth.Unhealthy, DestinationHealth.Healthy, true)]
    [InlineData(DestinationHealth.Healthy, DestinationHealth.Healthy, false)]
    public void ActiveChangeMatters_OnlyWhenItCanMoveABackendInOrOut(DestinationHealth before, DestinationHealth after, bool matters) =>
        Assert.Equal(matters, AvailableDestinationsPolicy.ActiveChangeMatters(before, after));
}
