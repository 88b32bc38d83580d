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
    [InlineData("http://host/a%2F..%2Fb")]
    [InlineData("HTTPS://host:8443/a/%2e%2e/b")]
    public void IsAmbiguous_DotSegmentsThatDependOnDecoding(string target) => Assert.True(RequestTarget.IsAmbiguous(target));

    [Theory]
    [InlineData("/files/a%2Fb")]
    [InlineData("/a/..b%2Fc")]
    [InlineData("/%2e%2e%2e/x")]
    [InlineData("/.well-known/x%20y")]
    [InlineData("/a/../b")] // no escapes: Kestrel's normalized path is forwarded, the same for everyone
    [InlineData("/plain?q=..%2F..")] // the query is not a path
    [InlineData("*")]
    public void IsAmbiguous_NotWhenEveryReadingAgrees(string target) => Assert.False(RequestTarget.IsAmbiguous(target));

    [Theory]
    [InlineData("/files/a%2Fb", true)]
    [InlineData("/a\\b", true)]
    [InlineData("/plain/path?q=%20", false)]
    [InlineData("*", false)]
    [InlineData("http://host/files/a%2Fb", true)]
    [InlineData("http://host?q=%20", false)]
    public void NeedsRawForwarding_OnlyForEscapesOrBackslashesInThePath(string target, bool raw) => Assert.Equal(raw, RequestTarget.NeedsRawForwarding(target));

    [Theory]
    [InlineData("/a/../b", true)]
    [InlineData("/a/./b", true)]
    [InlineData("/a/..", true)]
    [InlineData("/.", true)]
    [InlineData("/a/.well-known", false)]
    [InlineData("/a/..b/c", false)]
    [InlineData("/a...", false)]
    public void HasDotSegments_FindsWhatKestrelLeftInAPath(string path, bool found) => Assert.Equal(found, RequestTarget.HasDotSegments(path));

    [Theory]
    [InlineData("/a?b", "/a?b")]
    [InlineData("http://host/a?b", "/a?b")]
    [InlineData("http://host", "/")]
    [InlineData("http://host?q", "/?q")]
    [InlineData("*", "")]
    [InlineData("host:443", "")]
    public void PathAndQuery_OfEveryTargetForm(string target, string expected) => Assert.Equal(expected, RequestTarget.PathAndQuery(target).ToString());
}
