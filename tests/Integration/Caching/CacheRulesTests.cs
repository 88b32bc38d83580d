using System.Net;

namespace Balancer.Tests.Integration.Caching;

/// <summary>
/// RFC 9111 as a shared cache applies it, against a real redis-server: for each case, the backend's status and fields
/// decide whether the second request for the URL is answered from the cache (HIT, the backend asked once) or not
/// (MISS, asked twice). Request fields are tested below the table.
/// </summary>
public sealed class CacheRulesTests(CacheFixture fixture) : IClassFixture<CacheFixture>
{
    private const string Bearer = "Authorization: Bearer user-token";

    public static TheoryData<string, string, int, string, bool> Table => new()
    {
        // case, request fields, status, response fields, stored
        { "plain", "", 200, "", true },
        { "max-age", "", 200, "Cache-Control: max-age=60", true },
        { "s-maxage", "", 200, "Cache-Control: s-maxage=60", true },
        { "s-maxage-over-max-age", "", 200, "Cache-Control: max-age=60, s-maxage=0", false },
        { "max-age-zero", "", 200, "Cache-Control: max-age=0", false },
        { "max-age-invalid", "", 200, "Cache-Control: max-age=soon", false },
        { "no-store", "", 200, "Cache-Control: no-store", false },
        { "no-store-among-others", "", 200, "Cache-Control: public, max-age=60, no-store", false },
        { "private", "", 200, "Cache-Control: private, max-age=60", false },
        { "no-cache", "", 200, "Cache-Control: no-cache", false },
        { "directive-case", "", 200, "Cache-Control: NO-STORE", false },
        { "two-field-lines", "", 200, "Cache-Control: max-age=60\nCache-Control: private", false },
        { "must-revalidate", "", 200, "Cache-Control: must-revalidate, max-age=60", true },
        { "expires-future", "", 200, "Expires: {+60}", true },
        { "expires-past", "", 200, "Expires: {-60}", false },
        { "expires-invalid", "", 200, "Expires: 0", false },
        { "max-age-over-expires", "", 200, "Cache-Control: max-age=60\nExpires: {-60}", true },
        { "age-used-up", "", 200, "Cache-Control: max-age=60\nAge: 120", false },
        { "age-left", "", 200, "Cache-Control: max-age=60\nAge: 10", true },
        { "set-cookie", "", 200, "Cache-Control: max-age=60\nSet-Cookie: id=1", false },
        { "set-cookie-withheld", "", 200, "Cache-Control: max-age=60, no-cache=\"Set-Cookie\"\nSet-Cookie: id=1", true },
        { "set-cookie-private-field", "", 200, "Cache-Control: max-age=60, private=\"Set-Cookie\"\nSet-Cookie: id=1", true },
        { "vary-star", "", 200, "Vary: *", false },
        { "vary-accept", "", 200, "Vary: Accept", true },
        { "status-204", "", 204, "", true },
        { "status-301", "", 301, "Location: /elsewhere", true },
        { "status-302", "", 302, "Location: /elsewhere", false },
        { "status-302-max-age", "", 302, "Location: /elsewhere\nCache-Control: max-age=60", true },
        { "status-404", "", 404, "", true },
        { "status-410", "", 410, "", true },
        { "status-500", "", 500, "", false },
        { "status-503", "", 503, "", false },
        { "status-500-max-age", "", 500, "Cache-Control: max-age=60", true },
        { "authorization", Bearer, 200, "Cache-Control: max-age=60", false },
        { "authorization-public", Bearer, 200, "Cache-Control: public, max-age=60", true },
        { "authorization-s-maxage", Bearer, 200, "Cache-Control: s-maxage=60", true },
        { "authorization-must-revalidate", Bearer, 200, "Cache-Control: must-revalidate, max-age=60", true },
        { "request-no-store", "Cache-Control: no-store", 200, "Cache-Control: max-age=60", false },
        { "cookie-silent", "Cookie: session=alice", 200, "", false },
        { "cookie-max-age", "Cookie: session=alice", 200, "Cache-Control: max-age=60", true },
        { "cookie-public", "Cookie: session=alice", 200, "Cache-Control: public", true },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public async Task Response_IsStored_OnlyWhenTheRulesAllow(string name, string requestFields, int status, string responseFields, bool stored)
    {
        CacheFixture.Cases[name] = (status, responseFields);
        var path = $"/c/{name}";
        using var first = await SendAsync(HttpMethod.Get, path, requestFields);
        Assert.Equal(status, (int)first.StatusCode);
        await fixture.StoredAsync();
        using var second = await SendAsync(HttpMethod.Get, path, requestFields);

        Assert.Equal(status, (int)second.StatusCode);
        Assert.Equal(stored ? 1 : 2, fixture.Backend.Seen(path));
        Assert.Equal(requestFields.Contains("no-store", StringComparison.Ordinal) ? "BYPASS" : "MISS", XCache(first));
        Assert.Equal(stored ? "HIT" : requestFields.Contains("no-store", StringComparison.Ordinal) ? "BYPASS" : "MISS", XCache(second));
        if (stored)
        {
            Assert.True(second.Headers.Age is { } age && age >= (responseFields.Contains("Age: 10", StringComparison.Ordinal) ? TimeSpan.FromSeconds(10) : TimeSpan.Zero));
            Assert.Equal(await first.Content.ReadAsStringAsync(), await second.Content.ReadAsStringAsync());
            Assert.False(second.Headers.Contains("Set-Cookie")); // withheld, when it was stored at all
        }
        else if (!responseFields.Contains("Age:", StringComparison.Ordinal))
        {
            Assert.Null(second.Headers.Age); // a backend's answer, passed on as it came
        }
    }

    [Fact]
    public async Task QueryAndHost_AreInTheKey()
    {
        CacheFixture.Cases["keyed"] = (200, "Cache-Control: max-age=60");
        foreach (var target in (string[])["/c/keyed?a=1", "/c/keyed?a=2", "/c/keyed"])
        {
            using var response = await SendAsync(HttpMethod.Get, target, "");
            Assert.Equal("MISS", XCache(response));
        }

        await fixture.StoredAsync();
        using var other = await SendAsync(HttpMethod.Get, "/c/keyed?a=1", "Host: other.test");
        Assert.Equal("MISS", XCache(other));
        using var again = await SendAsync(HttpMethod.Get, "/c/keyed?a=1", "");
        Assert.Equal("HIT", XCache(again));
        Assert.Equal("keyed #1", await again.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Vary_KeepsOneEntryPerValueOfTheNamedFields()
    {
        CacheFixture.Cases["by-accept"] = (200, "Cache-Control: max-age=60\nVary: Accept");
        foreach (var accept in (string[])["text/a", "text/b"])
        {
            using var response = await SendAsync(HttpMethod.Get, "/c/by-accept", $"Accept: {accept}");
            Assert.Equal("MISS", XCache(response));
        }

        await fixture.StoredAsync();
        using var a = await SendAsync(HttpMethod.Get, "/c/by-accept", "Accept: text/a");
        using var b = await SendAsync(HttpMethod.Get, "/c/by-accept", "Accept: text/b");
        using var c = await SendAsync(HttpMethod.Get, "/c/by-accept", "Accept: text/c");
        Assert.Equal(("HIT", "by-accept #1 for text/a"), (XCache(a), await a.Content.ReadAsStringAsync()));
        Assert.Equal(("HIT", "by-accept #2 for text/b"), (XCache(b), await b.Content.ReadAsStringAsync()));
        Assert.Equal("MISS", XCache(c));
    }

    [Fact]
    public async Task RequestNoCache_SkipsTheLookup_ButStoresTheAnswer()
    {
        CacheFixture.Cases["refresh"] = (200, "Cache-Control: max-age=60");
        using (var first = await SendAsync(HttpMethod.Get, "/c/refresh", ""))
        {
            Assert.Equal("MISS", XCache(first));
        }

        await fixture.StoredAsync();
        foreach (var fields in (string[])["Cache-Control: no-cache", "Pragma: no-cache", "Cache-Control: max-age=0"])
        {
            using var refreshed = await SendAsync(HttpMethod.Get, "/c/refresh", fields);
            Assert.Equal("BYPASS", XCache(refreshed));
            await fixture.StoredAsync();
        }

        using var plain = await SendAsync(HttpMethod.Get, "/c/refresh", "");
        Assert.Equal(("HIT", "refresh #4"), (XCache(plain), await plain.Content.ReadAsStringAsync())); // the last refresh's answer
    }

    [Fact]
    public async Task RequestMinFreshAndOnlyIfCached_AreHonoured()
    {
        CacheFixture.Cases["fresh"] = (200, "Cache-Control: max-age=60");
        using (var uncached = await SendAsync(HttpMethod.Get, "/c/fresh", "Cache-Control: only-if-cached"))
        {
            Assert.Equal(HttpStatusCode.GatewayTimeout, uncached.StatusCode);
            Assert.Equal(0, fixture.Backend.Seen("/c/fresh"));
        }

        using (await SendAsync(HttpMethod.Get, "/c/fresh", ""))
        {
        }

        await fixture.StoredAsync();
        using var cached = await SendAsync(HttpMethod.Get, "/c/fresh", "Cache-Control: only-if-cached");
        Assert.Equal("HIT", XCache(cached));
        using var tooOld = await SendAsync(HttpMethod.Get, "/c/fresh", "Cache-Control: min-fresh=120");
        Assert.Equal("MISS", XCache(tooOld));
        using var fresh = await SendAsync(HttpMethod.Get, "/c/fresh", "Cache-Control: min-fresh=30");
        Assert.Equal("HIT", XCache(fresh));
    }

    [Fact]
    public async Task HeadAndGet_AreKeptApart_AndHeadHitsHaveNoBody()
    {
        CacheFixture.Cases["head"] = (200, "Cache-Control: max-age=60");
        using (var head = await SendAsync(HttpMethod.Head, "/c/head", ""))
        {
            Assert.Equal("MISS", XCache(head));
        }

        using (var get = await SendAsync(HttpMethod.Get, "/c/head", ""))
        {
            Assert.Equal("MISS", XCache(get));
        }

        await fixture.StoredAsync();
        using var headHit = await SendAsync(HttpMethod.Head, "/c/head", "");
        using var getHit = await SendAsync(HttpMethod.Get, "/c/head", "");
        Assert.Equal(("HIT", ""), (XCache(headHit), await headHit.Content.ReadAsStringAsync()));
        Assert.Equal(("HIT", "head #2"), (XCache(getHit), await getHit.Content.ReadAsStringAsync()));
    }

    [Fact]
    public async Task UnsafeRequest_InvalidatesTheUrl_AndIsNeverCached()
    {
        CacheFixture.Cases["changing"] = (200, "Cache-Control: max-age=60\nVary: Accept");
        using (await SendAsync(HttpMethod.Get, "/c/changing", "Accept: text/a"))
        {
        }

        await fixture.StoredAsync();
        using (var hit = await SendAsync(HttpMethod.Get, "/c/changing", "Accept: text/a"))
        {
            Assert.Equal("HIT", XCache(hit));
        }

        using (var post = await SendAsync(HttpMethod.Post, "/c/changing", ""))
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
            Assert.False(post.Headers.Contains("X-Cache"));
        }

        using var after = await SendAsync(HttpMethod.Get, "/c/changing", "Accept: text/a");
        Assert.Equal(("MISS", "changing #3 for text/a"), (XCache(after), await after.Content.ReadAsStringAsync()));
    }

    [Fact]
    public async Task Lifetime_IsWhatTheBackendSays_AndThePoolTtlOnlyWhenItSaysNothing()
    {
        CacheFixture.Cases["ttl-silent"] = (200, "");
        CacheFixture.Cases["ttl-short"] = (200, "Cache-Control: max-age=5");
        CacheFixture.Cases["ttl-long"] = (200, "Cache-Control: max-age=600");
        foreach (var name in (string[])["ttl-silent", "ttl-short", "ttl-long"])
        {
            using (await SendAsync(HttpMethod.Get, $"/c/{name}", ""))
            {
            }
        }

        await fixture.StoredAsync();
        Assert.InRange(await TtlAsync("ttl-silent"), 5_001, 30_000);
        Assert.InRange(await TtlAsync("ttl-short"), 1, 5_000);
        Assert.InRange(await TtlAsync("ttl-long"), 30_001, 600_000);
    }

    [Fact]
    public async Task Hit_ReplacesTheBackendsXCache_AndAnswersConditionalRequests()
    {
        CacheFixture.Cases["etagged"] = (200, "Cache-Control: max-age=60\nETag: \"v1\"\nX-Cache: HIT from some other cache\nLast-Modified: {-60}");
        using (var miss = await SendAsync(HttpMethod.Get, "/c/etagged", ""))
        {
            Assert.Equal(["MISS"], miss.Headers.GetValues("X-Cache"));
        }

        await fixture.StoredAsync();
        using var matching = await SendAsync(HttpMethod.Get, "/c/etagged", "If-None-Match: W/\"v1\"");
        Assert.Equal(HttpStatusCode.NotModified, matching.StatusCode);
        Assert.Equal("\"v1\"", matching.Headers.ETag?.ToString());
        using var other = await SendAsync(HttpMethod.Get, "/c/etagged", "If-None-Match: \"v0\"");
        Assert.Equal((HttpStatusCode.OK, "etagged #1"), (other.StatusCode, await other.Content.ReadAsStringAsync()));
        Assert.Equal(["HIT"], other.Headers.GetValues("X-Cache"));
        using var since = await SendAsync(HttpMethod.Get, "/c/etagged", $"If-Modified-Since: {DateTimeOffset.UtcNow:R}");
        Assert.Equal(HttpStatusCode.NotModified, since.StatusCode);
        Assert.Equal(1, fixture.Backend.Seen("/c/etagged"));
    }

    [Fact]
    public async Task ResponsesOverTheMaximumObjectSize_PassThroughWhole_AndAreNotStored()
    {
        CacheFixture.Cases["big"] = (200, "Cache-Control: max-age=60");
        foreach (var expected in (string[])["MISS", "MISS"])
        {
            using var response = await SendAsync(HttpMethod.Get, "/c/big?size=5000", "");
            Assert.Equal(expected, XCache(response));
            Assert.Equal(5000, (await response.Content.ReadAsByteArrayAsync()).Length);
            await fixture.StoredAsync();
        }

        using var small = await SendAsync(HttpMethod.Get, "/c/big?size=4000", "");
        await fixture.StoredAsync();
        using var smallHit = await SendAsync(HttpMethod.Get, "/c/big?size=4000", "");
        Assert.Equal(("HIT", 4000), (XCache(smallHit), (await smallHit.Content.ReadAsByteArrayAsync()).Length));
    }

    [Fact]
    public async Task DamagedEntry_IsAMiss_AndIsReplaced()
    {
        CacheFixture.Cases["damaged"] = (200, "Cache-Control: max-age=60");
        var key = $"{CacheFixture.Prefix}cache:/c/damaged GET {fixture.Balancer.Client.BaseAddress!.Scheme}://{fixture.Balancer.Client.BaseAddress.Authority}";
        Assert.Equal("+OK", await fixture.Redis.CommandAsync($"SET \"{key}\" not-an-entry"));
        using (var damaged = await SendAsync(HttpMethod.Get, "/c/damaged", ""))
        {
            Assert.Equal((HttpStatusCode.OK, "MISS"), (damaged.StatusCode, XCache(damaged)));
        }

        await fixture.StoredAsync();
        using var hit = await SendAsync(HttpMethod.Get, "/c/damaged", "");
        Assert.Equal("HIT", XCache(hit));
    }

    private async Task<long> TtlAsync(string name)
    {
        var key = $"{CacheFixture.Prefix}cache:/c/{name} GET {fixture.Balancer.Client.BaseAddress!.Scheme}://{fixture.Balancer.Client.BaseAddress.Authority}";
        return long.Parse((await fixture.Redis.CommandAsync($"PTTL \"{key}\"")).TrimStart(':'), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string target, string fields)
    {
        var request = new HttpRequestMessage(method, target);
        foreach (var line in fields.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            var (name, value) = (line[..colon].Trim(), line[(colon + 1)..].Trim());
            if (name == "Host")
            {
                request.Headers.Host = value;
            }
            else
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        return await fixture.Client.SendAsync(request);
    }

    private static string? XCache(HttpResponseMessage response) => response.Headers.TryGetValues("X-Cache", out var values) ? string.Join(",", values) : null;
}
