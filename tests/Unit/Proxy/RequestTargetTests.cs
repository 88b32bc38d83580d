using Balancer.Proxy;

namespace Balancer.Tests.Unit.Proxy;

public sealed class RequestTargetTests
{
    [Theory]
    [InlineData("/public/..%2Fadmin")]
    [InlineData("/public/..%2fadmin")]
    [InlineData("/public/%2e%2E/admin")]
    [InlineData("/public/.%2e%5Cadmin")]
    [InlineData("/public\\..\\admin")]
    [InlineData("/a/./b%20c")]
    [InlineData("/a/%2e")]
    [InlineData("/a%2F..%2Fb?x=1")]
    public void IsAmbiguous_DotSegmentsThatDependOnDecoding(string target) => Assert.True(RequestTarget.IsAmbiguous(target));

    [Theory]
    [InlineData("/files/a%2Fb")]
    [InlineData("/a/..b%2Fc")]
    [InlineData("/%2e%2e%2e/x")]
    [InlineData("/.well-known/x%20y")]
    [InlineData("/a/../b")] // no escapes: Kestrel's normalized path is forwarded, the same for everyone
    [InlineData("/plain?q=..%2F..")] // the query is not a path
    [InlineData("*")]
    [InlineData("http://host/a%2F..%2Fb")] // absolute form: forwarded as YARP does
    public void IsAmbiguous_NotWhenEveryReadingAgrees(string target) => Assert.False(RequestTarget.IsAmbiguous(target));

    [Theory]
    [InlineData("/files/a%2Fb", true)]
    [InlineData("/a\\b", true)]
    [InlineData("/plain/path?q=%20", false)]
    [InlineData("*", false)]
    public void NeedsRawForwarding_OnlyForEscapesOrBackslashesInThePath(string target, bool raw) => Assert.Equal(raw, RequestTarget.NeedsRawForwarding(target));
}
