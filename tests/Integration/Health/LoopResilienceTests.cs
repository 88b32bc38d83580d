using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using Balancer.Configuration;
using Balancer.Health;
using Balancer.Registry;
using Balancer.Tests.Kit;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Integration.Health;

/// <summary>Background loops that meet an exception say why and keep running: none dies silently.</summary>
public sealed class LoopResilienceTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("lb-loops-").FullName;
    private readonly TcpListener _backend = new(IPAddress.Loopback, 0);
    private BalancerOptions _options = null!;
    private BackendRegistry _registry = null!;
    private string _address = "";

    public Task InitializeAsync()
    {
        _backend.Start();
        _address = $"http://127.0.0.1:{((IPEndPoint)_backend.LocalEndpoint).Port}";
        var path = Path.Combine(_directory, "config.yaml");
        File.WriteAllText(path, "health-checks: { enabled: true, type: tcp, interval: 100ms, timeout: 1s, fall: 1 }");
        _options = ConfigLoader.Load(path, [], new Dictionary<string, string>()).Options!;
        _registry = new BackendRegistry(_options, SqliteRegistrationStore.Open(_options.DbPath), new Publisher(), NullLogger<BackendRegistry>.Instance);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _backend.Stop();
        await _registry.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task HealthChecks_AnUpdateThatThrows_IsLogged_AndTheChecksGoOn()
    {
        Assert.True((await _registry.ApplyAsync(new RegistryChange.Register(_address, "default", null, [], [], BackendSource.Api))).Succeeded);
        var cluster = Cluster(out var destination);
        var updater = new Updater { FailFirst = true };
        var logger = new FakeLogger<ActiveHealthChecker>();
        await using var checker = new ActiveHealthChecker(_registry, new Lookup(cluster), updater, new OutlierDetector(_options, new Updater(), TimeProvider.System, NullLogger<OutlierDetector>.Instance), TimeProvider.System, logger);

        await checker.StartAsync(); // the first probe passes; handing that to YARP throws
        _backend.Stop(); // now the probes fail, and the state change must still reach YARP

        await Eventually.TrueAsync(() => updater.Seen.Contains(DestinationHealth.Unhealthy), "the checks to go on and report the backend down");
        Assert.Contains(logger.Collector.GetSnapshot(), r => r.Level == LogLevel.Error && r.Message.Contains($"Health check of {_address} in pool default failed unexpectedly", StringComparison.Ordinal));
        Assert.NotNull(destination);
    }

    [Fact]
    public async Task DrainWatch_ALookupThatThrows_IsLogged_AndTheBackendIsStillRemoved()
    {
        Assert.True((await _registry.ApplyAsync(new RegistryChange.Register(_address, "default", null, [], [], BackendSource.Api))).Succeeded);
        Assert.True((await _registry.ApplyAsync(new RegistryChange.Drain(_address))).Succeeded);
        var logger = new FakeLogger<DrainMonitor>();
        await using var monitor = new DrainMonitor(_registry, new Lookup(null) { FailFirst = true }, _options, TimeProvider.System, logger);

        monitor.Start();

        await Eventually.TrueAsync(() => _registry.Current.Pools[0].Backends.Count == 0, "the drained backend to be removed");
        Assert.Contains(logger.Collector.GetSnapshot(), r => r.Level == LogLevel.Error && r.Message.Contains($"Watching the drain of {_address} failed unexpectedly", StringComparison.Ordinal));
    }

    private ClusterState Cluster(out DestinationState destination)
    {
        var cluster = new ClusterState("default");
        destination = new DestinationState(_address);
        cluster.Destinations[_address] = destination;
        return cluster;
    }

    private sealed class Publisher : IRoutingPublisher
    {
        public void Initialize(RoutingSnapshot snapshot)
        {
        }

        public Task PublishAsync(RoutingSnapshot snapshot, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class Updater : IDestinationsRefresh, IClusterDestinationsUpdater
    {
        public bool FailFirst { get; set; }

        public System.Collections.Concurrent.ConcurrentBag<DestinationHealth> Seen { get; } = [];

        public Task RefreshAsync(ClusterState cluster)
        {
            if (FailFirst)
            {
                FailFirst = false;
                throw new InvalidOperationException("the cluster changed meanwhile");
            }

            foreach (var destination in cluster.Destinations.Values)
            {
                Seen.Add(destination.Health.Active);
            }

            return Task.CompletedTask;
        }

        public void UpdateAvailableDestinations(ClusterState cluster)
        {
        }

        public void UpdateAllDestinations(ClusterState cluster)
        {
        }
    }

    private sealed class Lookup(ClusterState? cluster) : IProxyStateLookup
    {
        public bool FailFirst { get; set; }

        public bool TryGetRoute(string id, [NotNullWhen(true)] out RouteModel? route)
        {
            route = null;
            return false;
        }

        public IEnumerable<RouteModel> GetRoutes() => [];

        public bool TryGetCluster(string id, [NotNullWhen(true)] out ClusterState? found)
        {
            if (FailFirst)
            {
                FailFirst = false;
                throw new InvalidOperationException("the proxy is reconfiguring");
            }

            found = cluster;
            return found is not null;
        }

        public IEnumerable<ClusterState> GetClusters() => cluster is null ? [] : [cluster];
    }
}
