using System.Net;
using System.Net.Http.Json;
using Balancer.Tests.Kit;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Proxy;

/// <summary>Loops that form anyway (two balancers pointing at each other) end at the first repeat, with 508.</summary>
public sealed class LoopDetectionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TwoBalancersPointingAtEachOther_Answer508_InsteadOfRecursing()
    {
        await using var a = await TestBalancer.StartAsync("retries: { attempts: 1 }", output);
        await using var b = await TestBalancer.StartAsync("retries: { attempts: 1 }", output);
        Assert.Equal(HttpStatusCode.Created, (await a.Admin.PostAsJsonAsync("/backends", new { address = b.Running.ProxyUri.ToString().TrimEnd('/') })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await b.Admin.PostAsJsonAsync("/backends", new { address = a.Running.ProxyUri.ToString().TrimEnd('/') })).StatusCode);

        using var response = await a.Client.GetAsync("/anything");

        Assert.Equal(HttpStatusCode.LoopDetected, response.StatusCode);
        Assert.StartsWith("508 loop detected", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ForwardedRequests_CarryOurViaEntry_AfterTheClientsOwn()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(TestBalancer.BackendsYaml(backends.All), output);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Add("Via", "1.1 upstream-cache");

        using var response = await lb.Client.SendAsync(request);
        var echo = await response.Content.ReadFromJsonAsync(global::FakeBackends.FakeBackendJson.Default.EchoBody);

        var via = echo!.Headers["Via"];
        Assert.Matches(@"^1\.1 upstream-cache, 1\.1 balancer-[0-9a-f]{12}$", via);
    }

    [Fact]
    public async Task TheAdminApi_RefusesARequestThatCameThroughThisBalancersProxy()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var sniff = await Backends.StartAsync(1);
        var via = await ViaOf(lb, sniff); // what this balancer's proxy stamps on what it forwards
        using var request = new HttpRequestMessage(HttpMethod.Get, "/backends");
        request.Headers.Add("Via", via);

        using var response = await lb.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.LoopDetected, response.StatusCode);
    }

    private static async Task<string> ViaOf(TestBalancer lb, Backends sniff)
    {
        Assert.Equal(HttpStatusCode.Created, (await lb.Admin.PostAsJsonAsync("/backends", new { address = sniff[0].Address.ToString().TrimEnd('/') })).StatusCode);
        return (await lb.GetEchoAsync("/")).Headers["Via"];
    }
}
