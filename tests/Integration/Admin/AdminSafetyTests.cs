using System.Net;
using System.Text;
using System.Text.Json;
using Balancer.Tests.Kit;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Admin;

/// <summary>The admin API, safe by default: no cross-site request and no DNS rebinding can change what it routes.</summary>
public sealed class AdminSafetyTests(ITestOutputHelper output)
{
    private const string Body = "{\"address\":\"http://127.0.0.1:9001\"}";

    [Fact]
    public async Task ATextPlainPost_FromARebindingHost_ChangesNothing()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/backends") { Content = new StringContent(Body, Encoding.UTF8, "text/plain") };
        request.Headers.Host = "evil.example";

        using var response = await lb.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("Host evil.example does not name this admin API", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync(lb));
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("multipart/form-data; boundary=x")]
    [InlineData(null)]
    public async Task ABodyThatIsNotDeclaredJson_Is415(string? contentType)
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(Body));
        if (contentType is not null)
        {
            content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }

        using var response = await lb.Admin.PostAsync("/backends", content);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Contains("Content-Type: application/json", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync(lb));
    }

    [Theory]
    [InlineData("localhost", HttpStatusCode.OK)]
    [InlineData("LOCALHOST:1234", HttpStatusCode.OK)]
    [InlineData("127.0.0.1", HttpStatusCode.OK)]
    [InlineData("[::1]:8081", HttpStatusCode.OK)]
    [InlineData("lb.internal", HttpStatusCode.OK)] // configured under admin.hosts
    [InlineData("evil.example", HttpStatusCode.Forbidden)]
    [InlineData("localhost.evil.example", HttpStatusCode.Forbidden)]
    [InlineData("10.9.9.9", HttpStatusCode.Forbidden)]
    public async Task OnlyHostsThatNameTheListener_AreServed(string host, HttpStatusCode expected)
    {
        await using var lb = await TestBalancer.StartAsync("admin: { hosts: [lb.internal] }", output);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/backends");
        request.Headers.Host = host;

        using var response = await lb.Admin.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
    }

    [Theory]
    [InlineData("Origin", "http://evil.example")]
    [InlineData("Origin", "null")]
    [InlineData("Origin", "http://127.0.0.1:1234")] // another port on the same host is another site
    [InlineData("Sec-Fetch-Site", "cross-site")]
    [InlineData("Sec-Fetch-Site", "same-site")]
    public async Task AChangeFromAnotherSite_IsRefused_EvenWithoutABody(string header, string value)
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("", output);
        using (var add = await lb.Admin.PostAsync("/backends", new StringContent($"{{\"address\":\"{backends[0].Address}\"}}", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Created, add.StatusCode);
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/backends/127.0.0.1:{backends[0].Port}/drain");
        request.Headers.TryAddWithoutValidation(header, value);
        using var response = await lb.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("cross-site", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var list = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        Assert.False(list.RootElement[0].GetProperty("draining").GetBoolean());
    }

    [Fact]
    public async Task AChangeFromTheSameOrigin_IsServed()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/backends") { Content = new StringContent(Body, Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("Origin", lb.Running.AdminUri.ToString().TrimEnd('/'));
        request.Headers.TryAddWithoutValidation("Sec-Fetch-Site", "same-origin");

        using var response = await lb.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    private static async Task<int> CountAsync(TestBalancer lb)
    {
        using var list = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        return list.RootElement.GetArrayLength();
    }
}
