// Pick cost and build time of every load-balancing algorithm, at 10, 1,000, 100,000 and 1,000,000 backends.
//
//   dotnet run -c Release --project bench/Algorithms -- --filter '*'            # everything (~15 min)
//   dotnet run -c Release --project bench/Algorithms -- --filter '*Pick*'        # pick cost only
using System.Globalization;
using System.Net;
using Balancer.Configuration;
using Balancer.LoadBalancing;
using Balancer.Proxy;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.Benchmarks.Algorithms;

public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Pick).Assembly).Run(args);
}

/// <summary>Steady state: many invocations per iteration, in this process (no generated project to build).</summary>
internal sealed class PickConfig : ManualConfig
{
    public PickConfig() => AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(3).WithIterationCount(8).WithId("Pick"));
}

/// <summary>One cold invocation per iteration: a build is measured once each time, not averaged away.</summary>
internal sealed class BuildConfig : ManualConfig
{
    public BuildConfig() => AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithStrategy(RunStrategy.Monitoring)
        .WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(3).WithId("Build"));
}

/// <summary>One pick, with the structures already built: what every request pays.</summary>
[Config(typeof(PickConfig))]
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByParams)]
public class Pick
{
    private Setup _setup = null!;

    [Params(10, 1_000, 100_000, 1_000_000)]
    public int Backends { get; set; }

    [ParamsSource(nameof(Names))]
    public string Algorithm { get; set; } = "";

    public static IEnumerable<string> Names => AlgorithmNames.All;

    [GlobalSetup]
    public void Setup()
    {
        _setup = new Setup(Algorithm, Backends);
        _setup.PickOnce(); // builds the structure
    }

    [Benchmark]
    public DestinationState? PickDestination() => _setup.PickOnce();
}

/// <summary>The first pick after the set of backends changed: building the structure (schedule, table, ring, buckets).</summary>
[Config(typeof(BuildConfig))]
[MemoryDiagnoser]
public class Build
{
    private Setup _setup = null!;

    [Params(10, 1_000, 100_000, 1_000_000)]
    public int Backends { get; set; }

    [ParamsSource(nameof(Names))]
    public string Algorithm { get; set; } = "";

    public static IEnumerable<string> Names => AlgorithmNames.All;

    [GlobalSetup]
    public void Setup() => _setup = new Setup(Algorithm, Backends);

    [IterationSetup]
    public void NewList() => _setup.ReplaceList(); // as YARP does when membership or health changes

    [Benchmark]
    public DestinationState? FirstPickAfterAChange() => _setup.PickOnce();
}

internal sealed class Setup
{
    private readonly ILoadBalancingPolicy _policy;
    private readonly ClusterState _cluster;
    private readonly HttpContext _context;
    private readonly IPAddress[] _clients;
    private readonly InFlightTracker? _tracker;
    private DestinationState[] _destinations;
    private int _next;

    public Setup(string algorithm, int backends)
    {
        var options = ConfigLoader.Load(WriteEmptyConfig(), [], new Dictionary<string, string>()).Options!;
        var random = new Random(42);
        _destinations = [.. Enumerable.Range(0, backends).Select(i => new DestinationState(
            $"http://10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:8080",
            new DestinationModel(new DestinationConfig
            {
                Address = $"http://10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:8080",
                Metadata = new Dictionary<string, string>
                {
                    [DestinationMetadata.Order] = i.ToString(CultureInfo.InvariantCulture),
                    [DestinationMetadata.Weight] = (1 + random.Next(4)).ToString(CultureInfo.InvariantCulture),
                },
            })))];
        // As YARP sets a cluster up: its available destinations are the list the policy is handed.
        _cluster = new ClusterState("bench");
        _cluster.DestinationsState = new ClusterDestinationsState(_destinations, _destinations);
        _context = new DefaultHttpContext();
        _clients = [.. Enumerable.Range(0, 4096).Select(i => new IPAddress(BitConverter.GetBytes(unchecked(0x0A000000u + ((uint)i * 2654435761u)))))];
        _policy = algorithm switch
        {
            AlgorithmNames.RoundRobin => new RoundRobinPolicy(),
            AlgorithmNames.WeightedRoundRobin => new WeightedRoundRobinPolicy(),
            AlgorithmNames.LeastConnections => new LeastConnectionsPolicy(),
            AlgorithmNames.WeightedLeastConnections => new WeightedLeastConnectionsPolicy(),
            AlgorithmNames.PowerOfTwo => new PowerOfTwoPolicy(new Random(1)),
            AlgorithmNames.Random => new RandomPolicy(new Random(1)),
            AlgorithmNames.IpHash => new IpHashPolicy(options),
            _ => new ConsistentHashPolicy(options),
        };
        _tracker = algorithm is AlgorithmNames.LeastConnections or AlgorithmNames.WeightedLeastConnections
            ? InFlightTracker.For(_cluster, algorithm == AlgorithmNames.WeightedLeastConnections)
            : null;
    }

    /// <summary>A pick as a request makes it: a new client each time (for the hashes), counted in and out (for least connections).</summary>
    public DestinationState? PickOnce()
    {
        _context.Connection.RemoteIpAddress = _clients[_next++ & 4095];
        var picked = _policy.PickDestination(_context, _cluster, _destinations);
        if (_tracker is not null && picked is not null)
        {
            _tracker.Acquire(picked);
            _tracker.Release(picked);
        }

        return picked;
    }

    public void ReplaceList()
    {
        _destinations = [.. _destinations];
        _cluster.DestinationsState = new ClusterDestinationsState(_destinations, _destinations);
    }

    private static string WriteEmptyConfig()
    {
        var path = Path.Combine(Path.GetTempPath(), "lb-bench-empty.yaml");
        File.WriteAllText(path, "");
        return path;
    }
}
