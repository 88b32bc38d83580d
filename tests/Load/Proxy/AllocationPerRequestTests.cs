using System.Globalization;
using Balancer.LoadBalancing;
using Balancer.Tests.Kit;
using Xunit.Abstractions;

namespace Balancer.Tests.Load.Proxy;

/// <summary>
/// Issue 14's target 2: the bytes allocated per proxied request are at most plain YARP's (same YARP, same process,
/// same backend and client) plus 256, for every algorithm, with the defaults on (health checks, outlier detection,
/// retries, metrics, the access log) and a restricted registration (path and client network) answering.
/// </summary>
[Collection(CountsEveryThread.Name)]
public sealed class AllocationPerRequestTests(ITestOutputHelper output)
{
    private const int WarmUp = 4000;
    private const int Measured = 4000;
    private const double Allowance = 256;

    public static TheoryData<string> Algorithms => [.. AlgorithmNames.All];

    [Theory]
    [MemberData(nameof(Algorithms))]
    public async Task A_request_allocates_at_most_256_bytes_more_than_plain_yarp(string algorithm)
    {
        await using var first = new CannedBackend();
        await using var second = new CannedBackend();
        double yarp;
        await using (var plain = await PlainYarp.StartAsync(first.Address))
        {
            yarp = await BytesPerRequestAsync(plain.Endpoint);
        }

        await using var lb = await TestBalancer.StartAsync($"BalanceHub: {{ algorithm: {algorithm} }}\n", output);
        await using (var control = await lb.ConnectControlPlaneAsync())
        {
            foreach (var backend in new[] { first, second })
            {
                var answer = await control.SendAsync(Registrations.Add(backend.Port, paths: ["/bench"], clients: ["127.0.0.0/8"]));
                Assert.True(answer.Succeeded, answer.Message);
            }
        }

        var balancer = await BytesPerRequestAsync(lb.Running.ProxyEndpoint);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{algorithm}: plain YARP {yarp:0} bytes per request, balancer {balancer:0} ({balancer - yarp:+0;-0})"));
        Assert.True(balancer <= yarp + Allowance, string.Create(CultureInfo.InvariantCulture, $"{algorithm}: {balancer:0} bytes per request, plain YARP {yarp:0}: {balancer - yarp:+0} over, allowed +{Allowance}"));
    }

    private static async Task<double> BytesPerRequestAsync(System.Net.IPEndPoint proxy)
    {
        using var client = new KeepAliveClient(proxy);
        for (var i = 0; i < WarmUp; i++)
        {
            await client.GetAsync();
            Assert.Equal(200, client.Status);
        }

        GC.Collect();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < Measured; i++)
        {
            await client.GetAsync();
        }

        var bytes = (GC.GetTotalAllocatedBytes(precise: true) - before) / (double)Measured;
        Assert.Equal(200, client.Status);
        return bytes;
    }
}
