using Balancer.Health;
using Balancer.Tests.Kit;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Unit.Health;

public sealed class SerializedDestinationsUpdaterTests
{
    private const int Threads = 8;
    private const int PerThread = 500;

    [Fact]
    public async Task AChangeMadeWhileARebuildRuns_IsPickedUpByTheRunner_AndTheCallerIsNotHeld()
    {
        var (updater, cluster, policy) = Create();
        var first = Destinations.Create(2);
        cluster.Destinations["a"] = first[0];
        policy.Hold.Reset();
        var runner = Task.Run(() => updater.UpdateAvailableDestinations(cluster));
        Assert.True(policy.Entered.Wait(TimeSpan.FromSeconds(30)), "the rebuild never started");

        cluster.Destinations["b"] = first[1];
        updater.UpdateAvailableDestinations(cluster); // a rebuild is running: this returns at once, leaving the change to it

        policy.Hold.Set();
        await runner;
        Assert.Equal(2, cluster.DestinationsState.AllDestinations.Count); // the runner went round again for "b"
    }

    [Fact]
    public async Task ChangesMadeConcurrently_AllReachTheLists_WithoutAFinalCall()
    {
        var (updater, cluster, _) = Create();

        await Task.WhenAll(Enumerable.Range(0, Threads).Select(t => Task.Run(() =>
        {
            foreach (var destination in Destinations.Create(PerThread).Select(d => new DestinationState($"{t}/{d.DestinationId}", d.Model)))
            {
                cluster.Destinations[destination.DestinationId] = destination;
                updater.UpdateAvailableDestinations(cluster);
            }
        })));

        await Eventually.TrueAsync(() => cluster.DestinationsState.AllDestinations.Count == Threads * PerThread, "every destination in the lists");
        Assert.Equal(Threads * PerThread, cluster.DestinationsState.AvailableDestinations.Count);
    }

    [Fact]
    public async Task RefreshAsync_CompletesOnlyOnceTheCallersChangeIsInTheLists()
    {
        var (updater, cluster, _) = Create();
        var missing = 0;

        await Task.WhenAll(Enumerable.Range(0, Threads).Select(t => Task.Run(async () =>
        {
            foreach (var destination in Destinations.Create(PerThread).Select(d => new DestinationState($"{t}/{d.DestinationId}", d.Model)))
            {
                cluster.Destinations[destination.DestinationId] = destination;
                await updater.RefreshAsync(cluster);
                if (!cluster.DestinationsState.AvailableDestinations.Contains(destination))
                {
                    Interlocked.Increment(ref missing);
                }
            }
        })));

        Assert.Equal(0, missing);
    }

    [Fact]
    public async Task ARebuildThatThrows_FailsTheWaiterItCovered_AndTheNextRequestRebuildsAgain()
    {
        var (updater, cluster, policy) = Create();
        cluster.Destinations["a"] = Destinations.Create(1)[0];
        policy.ThrowNext = true;

        await Assert.ThrowsAsync<InvalidOperationException>(() => updater.RefreshAsync(cluster));

        await updater.RefreshAsync(cluster);
        Assert.Single(cluster.DestinationsState.AllDestinations);
    }

    [Fact]
    public void UpdateAllDestinations_ReturnsWithTheNewSetInPlace_AndAnUnknownPolicyIsNamed()
    {
        var (updater, cluster, _) = Create();
        var destination = Destinations.Create(1)[0];
        cluster.Destinations[destination.DestinationId] = destination;

        updater.UpdateAllDestinations(cluster);

        Assert.Same(destination, Assert.Single(cluster.DestinationsState.AllDestinations));
        var misconfigured = new ClusterState("d", new ClusterModel(new ClusterConfig { ClusterId = "d", HealthCheck = new HealthCheckConfig { AvailableDestinationsPolicy = "nope" } }, cluster.Model.HttpClient));
        var error = Assert.Throws<InvalidOperationException>(() => updater.UpdateAllDestinations(misconfigured));
        Assert.Contains("nope", error.Message, StringComparison.Ordinal);
    }

    private static (SerializedDestinationsUpdater Updater, ClusterState Cluster, Everyone Policy) Create()
    {
        var cluster = new ClusterState("c", new ClusterModel(new ClusterConfig { ClusterId = "c", HealthCheck = new HealthCheckConfig { AvailableDestinationsPolicy = Everyone.PolicyName } }, new HttpMessageInvoker(new HttpClientHandler())));
        var policy = new Everyone();
        return (new SerializedDestinationsUpdater([policy]), cluster, policy);
    }

    /// <summary>Every destination is available; a test can hold a rebuild inside the policy.</summary>
    private sealed class Everyone : IAvailableDestinationsPolicy
    {
        public const string PolicyName = "everyone";

        public ManualResetEventSlim Hold { get; } = new(initialState: true);

        public ManualResetEventSlim Entered { get; } = new();

        public bool ThrowNext { get; set; }

        public string Name => PolicyName;

        public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations)
        {
            if (ThrowNext)
            {
                ThrowNext = false;
                throw new InvalidOperationException("the policy failed");
            }

            Entered.Set();
            Hold.Wait();
            return allDestinations;
        }
    }
}
