using System.Net;
using System.Net.Http.Json;
using System.Net.NetworkInformation;
using System.Text.Json;
using Balancer.Tests.Kit;
using Xunit.Abstractions;
using static Balancer.Tests.Kit.Registrations;

namespace Balancer.Tests.Integration.Registry;

/// <summary>A backend that is the balancer itself would send every request back into it: it is refused, whatever the spelling.</summary>
public sealed class SelfRegistrationTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ControlPlane_RegisteringAnyOfTheBalancersOwnPorts_IsRefusedWithAReason()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();

        foreach (var (port, name) in new[] { (lb.Running.ProxyEndpoint.Port, "proxy listener"), (lb.Running.AdminEndpoint.Port, "admin API"), (lb.ControlPlane.Port, "control plane") })
        {
            var answer = await control.SendAsync(Add(port, paths: ["/admin-through-the-proxy"]));

            Assert.False(answer.Succeeded);
            Assert.StartsWith($"http://127.0.0.1:{port} is this balancer's own {name}", answer.Message, StringComparison.Ordinal);
        }

        Assert.Equal(0, await CountAsync(lb));
        using var proxied = await lb.Client.GetAsync("/admin-through-the-proxy/backends");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, proxied.StatusCode); // nothing registered: the admin API is not behind the proxy
    }

    [Fact]
    public async Task Rest_RegisteringTheProxyUnderAnyLocalSpelling_Is400WithAReason()
    {
        // Bound to every interface, as the shipped config is: every local address reaches it.
        await using var lb = await TestBalancer.StartAsync("", output, false, "--set", "proxy.bind=*");
        var port = lb.Running.ProxyEndpoint.Port;
        var spellings = new List<string> { $"127.0.0.1:{port}", $"127.0.0.7:{port}", $"localhost:{port}", $"[::1]:{port}", $"0.0.0.0:{port}", $"http://{Environment.MachineName}:{port}" };
        spellings.AddRange(HostAddresses().Select(a => new IPEndPoint(a, port).ToString()));

        foreach (var address in spellings)
        {
            using var response = await lb.Admin.PostAsJsonAsync("/backends", new { address });

            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("is this balancer's own proxy listener (BalanceHub.listen)", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(0, await CountAsync(lb));
    }

    private static IEnumerable<IPAddress> HostAddresses() =>
        NetworkInterface.GetAllNetworkInterfaces().SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(a => a.Address)
            .Where(a => !IPAddress.IsLoopback(a) && !a.IsIPv6LinkLocal);

    private static async Task<int> CountAsync(TestBalancer lb)
    {
        using var list = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        return list.RootElement.GetArrayLength();
    }
}
