using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Balancer.Tests.Integration.Caching;

/// <summary>Purges through the admin API (with its token): one URL with its variants, a path prefix, everything.</summary>
public sealed class CachePurgeTests(CacheFixture fixture) : IClassFixture<CacheFixture>
{
    [Fact]
    public async Task Purge_ByUrl_ByPrefix_AndAll()
    {
        CacheFixture.Cases["purged"] = (200, "Cache-Control: max-age=60\nVary: Accept");
        string[] targets = ["/c/purge/a/purged?x=1", "/c/purge/a/purged?x=2", "/c/purge/b/purged", "/c/purge/b/purged?x=3"];
        await FillAsync(targets, "text/a", "text/b");

        var authority = fixture.Client.BaseAddress!.Authority;
        Assert.Equal(3, await PurgeAsync($$"""{"url": "http://{{authority}}/c/purge/a/purged?x=1"}""")); // the marker and two variants
        Assert.Equal(["MISS", "HIT", "HIT", "HIT"], await XCachesAsync(targets, "text/a"));

        await FillAsync(targets, "text/a");
        Assert.Equal(5, await PurgeAsync("""{"prefix": "/c/purge/a/"}""")); // x=1: marker and text/a; x=2: marker, text/a and text/b
        Assert.Equal(["MISS", "MISS", "HIT", "HIT"], await XCachesAsync(targets, "text/b"));

        Assert.Equal(3, await PurgeAsync("""{"url": "/c/purge/b/purged"}""")); // any host
        Assert.True(await PurgeAsync("""{"all": true}""") >= 3);
        Assert.Equal(["MISS", "MISS", "MISS", "MISS"], await XCachesAsync(targets, "text/a"));
    }

    [Theory]
    [InlineData("", HttpStatusCode.BadRequest, "url, prefix, all")]
    [InlineData("[1]", HttpStatusCode.BadRequest, "JSON object")]
    [InlineData("{\"url\": \"/a\", \"all\": true}", HttpStatusCode.BadRequest, "only one")]
    [InlineData("{\"prefix\": \"static\"}", HttpStatusCode.BadRequest, "starting with /")]
    [InlineData("{\"url\": \"ftp://host/x\"}", HttpStatusCode.BadRequest, "http://host/path")]
    [InlineData("{\"all\": false}", HttpStatusCode.BadRequest, "expected true")]
    [InlineData("{\"keys\": \"*\"}", HttpStatusCode.BadRequest, "unknown field keys")]
    [InlineData("{\"all\": tru", HttpStatusCode.BadRequest, "not JSON")]
    public async Task BadPurges_AreRefused_WithWhatIsWrong(string body, HttpStatusCode status, string detail)
    {
        using var response = await SendPurgeAsync(body, "purge-secret");
        Assert.Equal(status, response.StatusCode);
        Assert.Contains(detail, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Purge_NeedsTheToken()
    {
        using var response = await SendPurgeAsync("""{"all": true}""", token: null);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var wrong = await SendPurgeAsync("""{"all": true}""", token: "guess");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
    }

    private async Task FillAsync(string[] targets, params string[] accepts)
    {
        foreach (var target in targets)
        {
            foreach (var accept in accepts)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, target);
                request.Headers.TryAddWithoutValidation("Accept", accept);
                using var response = await fixture.Client.SendAsync(request);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }

        await fixture.StoredAsync();
    }

    private async Task<List<string>> XCachesAsync(string[] targets, string accept)
    {
        var results = new List<string>();
        foreach (var target in targets)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, target);
            request.Headers.TryAddWithoutValidation("Accept", accept);
            using var response = await fixture.Client.SendAsync(request);
            results.Add(string.Join(",", response.Headers.GetValues("X-Cache")));
        }

        await fixture.StoredAsync();
        return results;
    }

    private async Task<long> PurgeAsync(string body)
    {
        using var response = await SendPurgeAsync(body, "purge-secret");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("purged").GetInt64();
    }

    private Task<HttpResponseMessage> SendPurgeAsync(string body, string? token)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/cache/purge") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return fixture.Balancer.Admin.SendAsync(request);
    }
}
