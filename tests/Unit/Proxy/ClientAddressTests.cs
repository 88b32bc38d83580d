using System.Net;
using Balancer.Networking;
using Balancer.Proxy;
using Microsoft.Extensions.Primitives;

namespace Balancer.Tests.Unit.Proxy;

public sealed class ClientAddressTests
{
    private static readonly NetworkList Trusted = new([IPNetwork.Parse("10.0.0.0/8")]);

    [Theory]
    [InlineData("203.0.113.9", "1.2.3.4", "203.0.113.9")] // untrusted peer: its header is ignored
    [InlineData("10.0.0.5", "", "10.0.0.5")] // trusted peer without a header: the peer
    [InlineData("10.0.0.5", "1.2.3.4", "1.2.3.4")]
    [InlineData("10.0.0.5", "1.2.3.4, 10.0.0.7", "1.2.3.4")] // through two trusted proxies
    [InlineData("10.0.0.5", "6.6.6.6, 1.2.3.4", "1.2.3.4")] // the left-most entry is the client's word: not believed
    [InlineData("10.0.0.5", "10.0.0.8, 10.0.0.9", "10.0.0.8")] // all trusted: the furthest
    [InlineData("10.0.0.5", "1.2.3.4:5678", "1.2.3.4")] // with a port
    [InlineData("10.0.0.5", "[2001:db8::1]:443", "2001:db8::1")]
    [InlineData("10.0.0.5", "garbage, 10.0.0.7", "10.0.0.7")] // stop at what cannot be vouched for
    [InlineData("::ffff:10.0.0.5", "1.2.3.4", "1.2.3.4")] // a dual-stack peer is still the trusted IPv4 proxy
    [InlineData("10.0.0.5", "::ffff:1.2.3.4", "1.2.3.4")] // a client its proxy wrote IPv4-mapped is the IPv4 client
    [InlineData("10.0.0.5", "1.2.3.4, ::ffff:10.0.0.7", "1.2.3.4")] // and a proxy written so is still trusted
    public void Resolve_WalksXForwardedForFromTheRight_PastTrustedProxiesOnly(string peer, string forwardedFor, string expected)
    {
        var headers = forwardedFor.Length == 0 ? StringValues.Empty : new StringValues(forwardedFor);

        Assert.Equal(IPAddress.Parse(expected), ClientAddress.Resolve(IPAddress.Parse(peer), headers, Trusted));
    }

    [Fact]
    public void Resolve_SeveralHeaderLines_AreOneChain()
    {
        var headers = new StringValues(["1.2.3.4", "10.0.0.7"]);

        Assert.Equal(IPAddress.Parse("1.2.3.4"), ClientAddress.Resolve(IPAddress.Parse("10.0.0.5"), headers, Trusted));
    }
}
