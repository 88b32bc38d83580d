using Balancer.Proxy;
using Balancer.Registry;
using Balancer.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Configuration;
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
    public async Task AChangeOfDestinations_InstallsTheNewClusterConfig_AndAnEqualOneIsNot_SoTheIndexIsCarriedOver()
    {
        // The restriction index is found by the cluster config YARP routes with. YARP installs a new config object when a
        // destination changed; when only a backend's paths did, it keeps the one it holds, and the balancer moves the new
        // index onto that one before answering. Both halves are YARP's behavior; the last assert is the balancer's.
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        Assert.True((await control.SendAsync(Add(backends[0].Port, paths: ["/a"]))).Succeeded);
        var cluster = Cluster(lb);
        var first = cluster.Model.Config;

        Assert.True((await control.SendAsync(Add(backends[1].Port))).Succeeded);
        var joined = cluster.Model.Config;
        Assert.NotSame(first, joined);

        string ServesB(ClusterConfig config) =>
            Assert.Single(PoolRestrictions.For(config)!.Select("/b").Admitting(null).Filter(cluster.DestinationsState.AvailableDestinations)).Model.Config.Address;
        Assert.Equal($"http://127.0.0.1:{backends[1].Port}", ServesB(joined)); // /b is nobody's claim: the backend without paths serves it

        Assert.True((await control.SendAsync(Add(backends[0].Port, paths: ["/b"]))).Succeeded);

        var held = cluster.Model.Config;
        Assert.Same(joined, held); // equal destinations: YARP kept its config object
        Assert.Equal($"http://127.0.0.1:{backends[0].Port}", ServesB(held)); // ...and it carries the new index
        Assert.Same(cluster, Cluster(lb)); // the same cluster state: destinations, their health and counters carry over
    }

    [Fact]
    public async Task RestoringThePreviousRouting_AfterAPathsOnlyChange_RestoresItsRules()
    {
        // What the registry does when a commit fails after the change went live: publish the previous snapshot again.
        // YARP keeps the same config object throughout (equal destinations), so the rules must come from what was applied.
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using (var control = await lb.ConnectControlPlaneAsync())
        {
            Assert.True((await control.SendAsync(Add(backends[0].Port, paths: ["/a"]))).Succeeded);
            Assert.True((await control.SendAsync(Add(backends[1].Port))).Succeeded);
        }

        var registry = lb.Running.App.Services.GetRequiredService<BackendRegistry>();
        var publisher = lb.Running.App.Services.GetRequiredService<IRoutingPublisher>();
        var previous = registry.Current;
        var claimant = previous.Pools[0].Backends.Single(b => b.Paths.Count > 0);
        Assert.Equal("b2", (await lb.GetEchoAsync("/b")).Server); // nobody claims /b: the backend without paths serves it

        await publisher.PublishAsync(previous.Apply(previous.Version + 100, [(claimant, claimant with { Paths = ["/a", "/b"] })]), CancellationToken.None);
        Assert.Equal("b1", (await lb.GetEchoAsync("/b")).Server);

        await publisher.PublishAsync(previous with { Version = previous.Version + 101 }, CancellationToken.None);
        Assert.Equal("b2", (await lb.GetEchoAsync("/b")).Server);
    }

    [Fact]
    public async Task AHealthChange_RebuildsFromTheDestinationsAsTheyAreNow_NotFromTheLastList()
    {
        // YARP's own updater rebuilds the available list from the list of all destinations it built last time, read
        // before its lock: a health change racing a config apply could write the old membership back after it. Every
        // rebuild, whoever asks for it (here YARP's health updater), must read the destinations as they are.
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(TestBalancer.BackendsYaml([backends[0]]), output);
        var cluster = Cluster(lb);
        var known = Assert.Single(cluster.DestinationsState.AllDestinations);

        // What a config apply does first: the new destination is in the cluster's table before the lists are rebuilt.
        var joining = new DestinationState("http://127.0.0.1:9", new DestinationModel(new DestinationConfig { Address = "http://127.0.0.1:9" }));
        cluster.Destinations[joining.DestinationId] = joining;
        lb.Running.App.Services.GetRequiredService<IDestinationHealthUpdater>()
            .SetActive(cluster, [new NewActiveDestinationHealth(known, DestinationHealth.Unhealthy)]);

        // (DestinationState is itself a list of one, so compare references, not contents.)
        Assert.True(cluster.DestinationsState.AllDestinations.Any(d => ReferenceEquals(d, joining)), "the joining destination is missing");
        Assert.False(cluster.DestinationsState.AvailableDestinations.Any(d => ReferenceEquals(d, known)), "the unhealthy destination is still available");
    }

    private static ClusterState Cluster(TestBalancer lb) =>
        lb.Running.App.Services.GetRequiredService<IProxyStateLookup>().TryGetCluster("default", out var cluster) ? cluster : throw new InvalidOperationException("no default cluster");
}
