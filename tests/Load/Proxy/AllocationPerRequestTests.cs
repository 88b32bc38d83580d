using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Balancer.LoadBalancing;
using Balancer.Tests.Kit;
using Xunit.Abstractions;

namespace Balancer.Tests.Load.Proxy;

/// <summary>
/// Issue 14's target 2: the bytes allocated per proxied request are at most plain YARP's (same YARP, same process,
/// same backend and client) plus 256, for every algorithm, with the shipped defaults on (active health checks, outlier
/// detection, three tries, metrics, the access log in the default format) and restricted registrations (a path and a
/// client network) answering. Client and backend allocate nothing per request and speak keep-alive, as real ones do.
/// </summary>
/// <remarks>
/// Not measured here: the retry path (the backends are healthy), and the costs of features that are off by default
/// (bench/Allocations prices each one). Plain YARP is measured before and after the balancer, and the lower of the two is
/// its figure, so that a first measurement with code not yet fully optimized by the JIT cannot flatter the balancer.
/// </remarks>
[Collection(CountsEveryThread.Name)]
public sealed class AllocationPerRequestTests(ITestOutputHelper output)
{
    private const int WarmUp = 5000;
    private static readonly TimeSpan WarmUpTime = TimeSpan.FromSeconds(2);
    private const int Measured = 5000;
    private const double Allowance = 256;

    public static TheoryData<string> Algorithms => [.. AlgorithmNames.All];

    [Theory]
    [MemberData(nameof(Algorithms))]
    public async Task A_request_allocates_at_most_256_bytes_more_than_plain_yarp(string algorithm)
    {
        // Debug builds compile async methods to classes, and YARP's package is a Release build: the comparison would be unfair.
        Assert.False(typeof(Balancer.Hosting.BalancerApp).Assembly.GetCustomAttribute<DebuggableAttribute>()?.IsJITOptimizerDisabled == true,
            "the allocation tests compare Release builds: run them with -c Release (./test.sh does)");
        await using var first = new CannedBackend();
        await using var second = new CannedBackend();
        var yarp = await PlainYarpBytesAsync(first);

        await using var lb = await TestBalancer.StartAsync($"BalanceHub: {{ algorithm: {algorithm}, access-logs-path: ./logs }}\n", output);
        await using (var control = await lb.ConnectControlPlaneAsync())
        {
            foreach (var backend in new[] { first, second })
            {
                var answer = await control.SendAsync(Registrations.Add(backend.Port, paths: ["/bench"], clients: ["127.0.0.0/8"]));
                Assert.True(answer.Succeeded, answer.Message);
            }
        }

        var balancer = await BytesPerRequestAsync(lb.Running.ProxyEndpoint);
        yarp = Math.Min(yarp, await PlainYarpBytesAsync(first));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{algorithm}: plain YARP {yarp:0} bytes per request, balancer {balancer:0} ({balancer - yarp:+0;-0})"));
        Assert.True(balancer <= yarp + Allowance, string.Create(CultureInfo.InvariantCulture, $"{algorithm}: {balancer:0} bytes per request, plain YARP {yarp:0}: {balancer - yarp:+0} over, allowed +{Allowance}"));
    }

    private static async Task<double> PlainYarpBytesAsync(CannedBackend backend)
    {
        await using var plain = await PlainYarp.StartAsync(backend.Address);
        return await BytesPerRequestAsync(plain.Endpoint);
    }

    private static async Task<double> BytesPerRequestAsync(System.Net.IPEndPoint proxy)
    {
        using var client = new KeepAliveClient(proxy, header: "Connection: keep-alive");
        var failed = 0;
        var warming = Stopwatch.StartNew(); // long enough for tiered compilation to have optimized the hot code
        for (var i = 0; i < WarmUp || warming.Elapsed < WarmUpTime; i++)
        {
            await client.GetAsync();
            failed += client.Status == 200 ? 0 : 1;
        }

        GC.Collect();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < Measured; i++)
        {
            await client.GetAsync();
            failed += client.Status == 200 ? 0 : 1;
        }

        var bytes = (GC.GetTotalAllocatedBytes(precise: true) - before) / (double)Measured;
        Assert.Equal(0, failed);
        return bytes;
    }
}
