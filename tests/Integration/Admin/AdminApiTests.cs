using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Balancer.Tests.Kit;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Admin;

public sealed class AdminApiTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Backends_ListsStaticBackendsWithPoolWeightAndSource()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync($$"""
            backends:
              - { address: "{{backends[0].Address}}", weight: 3 }
              - { address: "{{backends[1].Address}}" }
            """, output);

        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));

        var list = json.RootElement.EnumerateArray().ToList();
        Assert.Equal(2, list.Count);
        Assert.Equal(backends[0].Origin, list[0].GetProperty("address").GetString());
        Assert.Equal(3, list[0].GetProperty("weight").GetInt32());
        Assert.Equal("default", list[0].GetProperty("pool").GetString());
        Assert.Equal("config", list[0].GetProperty("source").GetString());
        Assert.True(list[0].GetProperty("healthy").GetBoolean());
        Assert.Equal(0, list[1].GetProperty("activeConnections").GetInt32());
    }

    [Fact]
    public async Task AdminApi_IsNotReachableThroughTheProxyPort_NorTheProxyThroughTheAdminPort()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(TestBalancer.BackendsYaml(backends.All), output);

        // /backends on the proxy port is an ordinary path, proxied to the backend.
        Assert.Equal("/backends", (await lb.GetEchoAsync("/backends")).Path);
        // Whatever Host header is sent, the admin port serves only the admin API.
        using var request = new HttpRequestMessage(HttpMethod.Get, "/anything");
        request.Headers.Host = $"127.0.0.1:{lb.Running.ProxyEndpoint.Port}";
        using var response = await lb.Admin.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(0, backends[0].RequestCount - 1);
    }

    [Fact]
    public async Task Token_WhenSet_EveryCallNeedsIt()
    {
        await using var lb = await TestBalancer.StartAsync("admin: { token: s3cret-token }", output);

        using var without = await lb.Admin.GetAsync("/backends");
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/health") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", "guess") } };
        using var wrongResponse = await lb.Admin.SendAsync(wrong);
        using var right = new HttpRequestMessage(HttpMethod.Get, "/backends") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", "s3cret-token") } };
        using var rightResponse = await lb.Admin.SendAsync(right);

        Assert.Equal(HttpStatusCode.Unauthorized, without.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongResponse.StatusCode);
        Assert.Equal(HttpStatusCode.OK, rightResponse.StatusCode);
    }

    [Fact]
    public async Task Health_AnswersOk()
    {
        await using var lb = await TestBalancer.StartAsync("", output);

        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/health"));

        Assert.Equal("ok", json.RootElement.GetProperty("status").GetString());
    }
}
