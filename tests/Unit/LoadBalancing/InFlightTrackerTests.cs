using System.Reflection;
using Balancer.LoadBalancing;
using Balancer.Tests.Kit;

namespace Balancer.Tests.Unit.LoadBalancing;

public sealed class InFlightTrackerTests
{
    [Fact]
    public void Pick_AfterBillionsOfPicks_TheTieBreakCounterWrapsWithoutFailing()
    {
        var destinations = Destinations.Create(3);
        var cluster = Destinations.Cluster(destinations);
        var tracker = InFlightTracker.For(cluster, weighted: false);
        typeof(InFlightTracker).GetField("_rotation", BindingFlags.NonPublic | BindingFlags.Instance)!.SetValue(tracker, int.MaxValue);
        var subset = new Balancer.Proxy.GroupDestinations(destinations[..2], new SelectionState());

        for (var i = 0; i < 4; i++)
        {
            Assert.NotNull(tracker.Pick(cluster, destinations)); // buckets
            Assert.NotNull(tracker.Pick(cluster, subset)); // scan
        }
    }

    [Fact]
    public void ForPolicy_OnlyTheLeastConnectionsAlgorithmsCount()
    {
        var cluster = Destinations.Cluster();

        Assert.NotNull(InFlightTracker.ForPolicy(cluster, AlgorithmNames.LeastConnections));
        Assert.Null(InFlightTracker.ForPolicy(Destinations.Cluster(), AlgorithmNames.RoundRobin));
        Assert.Null(InFlightTracker.ForPolicy(Destinations.Cluster(), null));
    }
}
