using Balancer.Tests.Kit;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Proxy;

/// <summary>A request reaches the backend as the client sent it, or, when its framing is not what HTTP allows, not at all.</summary>
public sealed class RequestFidelityTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("/files/a%2Fb", "/files/a%2Fb")]
    [InlineData("/files/a%2fb?q=a%2Fb&x=%20", "/files/a%2fb?q=a%2Fb&x=%20")]
    [InlineData("/caf%C3%A9/%7Euser", "/caf%C3%A9/%7Euser")]
    [InlineData("/plain/path?x=1", "/plain/path?x=1")]
    [InlineData("http://x/files/a%2Fb?q=%20", "/files/a%2Fb?q=%20")]
    public async Task TheRequestTarget_KeepsTheClientsEncoding(string sent, string expected)
    {
        await using var backend = new RawHttp.Server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        await using var lb = await TestBalancer.StartAsync($"backends: [ {{ address: \"{backend.Address}\" }} ]", output);

        var answer = await RawHttp.SendAsync(lb.Running.ProxyEndpoint, $"GET {sent} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
        Assert.StartsWith($"GET {expected} HTTP/1.1\r\n", backend.LastRequest, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://x/public/..%2Fadmin/x")] // the absolute form a client may send a proxy
    [InlineData("http://x/public/%2e%2e/admin/x")]
    [InlineData("/public/..%2Fadmin")]
    [InlineData("/public/%2E%2E%2fadmin")]
    [InlineData("/public/.%2e/admin")]
    [InlineData("/a/%2e%5Cb")]
    public async Task APathWhoseDotSegmentsDependOnDecoding_Is400_NotForwarded(string sent)
    {
        await using var backend = new RawHttp.Server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        await using var lb = await TestBalancer.StartAsync($"backends: [ {{ address: \"{backend.Address}\" }} ]", output);

        var answer = await RawHttp.SendAsync(lb.Running.ProxyEndpoint, $"GET {sent} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400", answer, StringComparison.Ordinal);
        Assert.Contains("ambiguous path", answer, StringComparison.Ordinal);
        Assert.Null(backend.LastRequest);
    }

    [Theory]
    [InlineData("keep-alive, X-Secret")]
    [InlineData("close, X-Secret")]
    [InlineData("X-Secret, keep-alive")]
    [InlineData("keep-alive,X-Secret")]
    [InlineData("keep-alive\r\nConnection: X-Secret")] // two lines: one list (RFC 9110 5.3)
    [InlineData("X-Secret\r\nConnection: close")]
    public async Task AHeaderNamedInConnection_IsNotForwarded_BesideCloseOrKeepAlive(string connection)
    {
        // Our own headers stay, whatever the client names: X-Forwarded-For is the balancer's to set.
        connection = connection.Replace("X-Secret", "X-Secret, X-Forwarded-For, Via", StringComparison.Ordinal);
        await using var backend = new RawHttp.Server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        await using var lb = await TestBalancer.StartAsync($"backends: [ {{ address: \"{backend.Address}\" }} ]", output);

        var answer = await RawHttp.SendAsync(lb.Running.ProxyEndpoint,
            $"GET / HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\nX-Secret: s3cr3t\r\nX-Kept: yes\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
        Assert.Contains("X-Kept: yes", backend.FirstRequest, StringComparison.Ordinal);
        Assert.Contains("X-Forwarded-For: 127.0.0.1", backend.FirstRequest, StringComparison.Ordinal);
        Assert.Contains("Via: 1.1 balancer-", backend.FirstRequest, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t", backend.FirstRequest, StringComparison.Ordinal);
        Assert.DoesNotContain("X-Secret", backend.FirstRequest, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("+53")]
    [InlineData("-0")]
    [InlineData("0x35")]
    [InlineData("53, 53")]
    public async Task AContentLengthThatIsNotDigits_Is400_AndTheConnectionCloses(string length)
    {
        await using var backend = new RawHttp.Server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        await using var lb = await TestBalancer.StartAsync($"backends: [ {{ address: \"{backend.Address}\" }} ]", output);
        var body = new string('x', 53);

        var answer = await RawHttp.SendAsync(lb.Running.ProxyEndpoint,
            $"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{body}GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400", answer, StringComparison.Ordinal);
        Assert.Contains("Connection: close", answer, StringComparison.Ordinal);
        Assert.Null(backend.LastRequest);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(answer, "HTTP/1.1 "));
    }
}
