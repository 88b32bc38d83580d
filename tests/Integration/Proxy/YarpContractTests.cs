using Balancer.Proxy;
using Balancer.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;
using static Balancer.Tests.Kit.Registrations;

namespace Balancer.Tests.Integration.Proxy;

/// <summary>
/// What the balancer relies on YARP to do, pinned on the YARP version in use: if an upgrade changes one of these,
/// a test here fails rather than routing quietly going stale.
/// </summary>
public sealed class YarpContractTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AvailableDestinations_IsANewList_OnEveryChangeOfMembershipOrHealth()
    {
        // Restriction groups cache their intersection with this list by reference.
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync(TestBalancer.BackendsYaml([backends[0]]), output);
        var cluster = Cluster(lb);
        var first = cluster.DestinationsState.AvailableDestinations;

        await using (var control = await lb.ConnectControlPlaneAsync())
        {
            Assert.True((await control.SendAsync(Add(backends[1].Port))).Succeeded);
        }

        var afterJoin = cluster.DestinationsState.AvailableDestinations;
        Assert.NotSame(first, afterJoin);
        Assert.Equal(2, afterJoin.Count);

        var updater = lb.Running.App.Services.GetRequiredService<IDestinationHealthUpdater>();
        updater.SetActive(cluster, [new NewActiveDestinationHealth(afterJoin[1], DestinationHealth.Unhealthy)]);
        var afterHealth = cluster.DestinationsState.AvailableDestinations;
        Assert.NotSame(afterJoin, afterHealth);
        Assert.Single(afterHealth);
    }

    [Fact]
    public async Task AClusterConfigThatDiffersOnlyInMetadata_ReplacesTheModel()
    {
        // The restriction index is found by the cluster config YARP routes with; a paths-only change must replace it.
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        Assert.True((await control.SendAsync(Add(backends[0].Port, paths: ["/a"]))).Succeeded);
        var cluster = Cluster(lb);
        var before = cluster.Model.Config;

        Assert.True((await control.SendAsync(Add(backends[0].Port, paths: ["/b"]))).Succeeded);

        var after = cluster.Model.Config;
        Assert.NotSame(before, after);
        Assert.NotEqual(before.Metadata![RoutingConfigProvider.RevisionMetadata], after.Metadata![RoutingConfigProvider.RevisionMetadata]);
        Assert.NotNull(PoolRestrictions.For(after));
        Assert.Same(cluster, Cluster(lb)); // the same cluster state: destinations, their health and counters carry over
    }

    private static ClusterState Cluster(TestBalancer lb) =>
        lb.Running.App.Services.GetRequiredService<IProxyStateLookup>().TryGetCluster("default", out var cluster) ? cluster : throw new InvalidOperationException("no default cluster");
}
