using System.Net;
using Balancer.Networking;

namespace Balancer.Tests.Unit.Networking;

public sealed class OwnListenersTests
{
    private static readonly IPAddress HostAddress = IPAddress.Parse("10.1.2.3");

    private static OwnListeners Listeners(string proxyBind)
    {
        var own = new OwnListeners([HostAddress, IPAddress.Parse("fd00::3")], ["localhost", "lb-host"]);
        own.Set([
            new OwnListeners.Listener("proxy listener (BalanceHub.listen)", new IPEndPoint(IPAddress.Parse(proxyBind), 5000)),
            new OwnListeners.Listener("admin API (admin.port)", new IPEndPoint(IPAddress.Loopback, 8081)),
            new OwnListeners.Listener("control plane (BalanceHub.tcpListener)", new IPEndPoint(IPAddress.Loopback, 5050)),
        ]);
        return own;
    }

    [Theory]
    [InlineData("::", "http://127.0.0.1:5000")]
    [InlineData("::", "http://127.9.9.9:5000")]
    [InlineData("::", "http://[::1]:5000")]
    [InlineData("::", "http://0.0.0.0:5000")]
    [InlineData("::", "http://[::]:5000")]
    [InlineData("::", "http://10.1.2.3:5000")]
    [InlineData("::", "http://[fd00::3]:5000")]
    [InlineData("::", "http://[::ffff:10.1.2.3]:5000")]
    [InlineData("::", "http://localhost:5000")]
    [InlineData("::", "https://LB-HOST:5000")]
    [InlineData("0.0.0.0", "http://10.1.2.3:5000")]
    [InlineData("127.0.0.1", "http://127.0.0.1:5000")]
    [InlineData("127.0.0.1", "http://0.0.0.0:5000")]
    [InlineData("127.0.0.1", "http://localhost:5000")]
    [InlineData("10.1.2.3", "http://10.1.2.3:5000")]
    public void AnAddressThatReachesAListener_IsRefused(string proxyBind, string address)
    {
        var refusal = Listeners(proxyBind).Refusal(address);

        Assert.NotNull(refusal);
        Assert.StartsWith($"{address} is this balancer's own proxy listener (BalanceHub.listen)", refusal, StringComparison.Ordinal);
        Assert.EndsWith("it would send every request back to the balancer", refusal, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("::", "http://127.0.0.1:5001")] // another port
    [InlineData("::", "http://10.9.9.9:5000")] // another host
    [InlineData("::", "http://backend.internal:5000")] // a name: caught at request time
    [InlineData("0.0.0.0", "http://[::1]:5000")] // an IPv4-only socket
    [InlineData("127.0.0.1", "http://127.0.0.2:5000")] // bound to one loopback address only
    [InlineData("127.0.0.1", "http://10.1.2.3:5000")]
    [InlineData("10.1.2.3", "http://127.0.0.1:5000")]
    public void AnAddressThatReachesNoListener_IsFine(string proxyBind, string address) =>
        Assert.Null(Listeners(proxyBind).Refusal(address));

    [Fact]
    public void TheAdminAndControlPlaneListeners_AreOwnToo()
    {
        var own = Listeners("127.0.0.1");

        Assert.StartsWith("http://127.0.0.1:8081 is this balancer's own admin API (admin.port)", own.Refusal("http://127.0.0.1:8081"), StringComparison.Ordinal);
        Assert.StartsWith("http://localhost:5050 is this balancer's own control plane (BalanceHub.tcpListener)", own.Refusal("http://localhost:5050"), StringComparison.Ordinal);
    }

    [Fact]
    public void ForThisHost_KnowsLoopbackAndTheMachineName()
    {
        var own = OwnListeners.ForThisHost();
        own.Set([new OwnListeners.Listener("proxy listener", new IPEndPoint(IPAddress.IPv6Any, 5000))]);

        Assert.NotNull(own.Refusal("http://127.0.0.1:5000"));
        Assert.NotNull(own.Refusal($"http://{Environment.MachineName}:5000"));
    }
}
