using System.Net;
using System.Net.Http.Json;
using Balancer.Tests.Kit;
using FakeBackends;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Persistence;

/// <summary>Session persistence per pool: signed cookies and headers with failover, and the hash modes.</summary>
public sealed class PersistenceTests(ITestOutputHelper output)
{
    private static HttpClient NoCookies(TestBalancer lb) =>
        new(new SocketsHttpHandler { UseCookies = false }, disposeHandler: true) { BaseAddress = lb.Running.ProxyUri, Timeout = TimeSpan.FromSeconds(60) };

    private static async Task<(HttpStatusCode Status, string? Server, string? SetCookie, HttpResponseMessage Response)> GetAsync(HttpClient client, string? cookie = null, (string Name, string Value)? header = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }

        if (header is { } h)
        {
            request.Headers.Add(h.Name, h.Value);
        }

        var response = await client.SendAsync(request);
        var server = response.IsSuccessStatusCode ? (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server : null;
        var setCookie = response.Headers.TryGetValues("Set-Cookie", out var values) ? values.Single() : null;
        return (response.StatusCode, server, setCookie, response);
    }

    /// <summary>The <c>name=value</c> part of a Set-Cookie, to send back.</summary>
    private static string Pair(string setCookie) => setCookie.Split(';')[0];

    private static string Yaml(Backends backends, string algorithm, string persistence, string extra = "") => $$"""
        BalanceHub: { algorithm: {{algorithm}} }
        persistence: {{persistence}}
        {{extra}}
        {{TestBalancer.BackendsYaml(backends.All)}}
        """;

    public static TheoryData<string> Algorithms => [.. Balancer.LoadBalancing.AlgorithmNames.All];

    [Theory]
    [MemberData(nameof(Algorithms))]
    public async Task ACookie_KeepsAClientOnItsBackend_WhateverTheAlgorithm(string algorithm)
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync(Yaml(backends, algorithm, "cookie"), output);
        using var client = NoCookies(lb);

        var first = await GetAsync(client);
        Assert.NotNull(first.SetCookie);
        Assert.StartsWith("lb_session=", first.SetCookie, StringComparison.Ordinal);
        Assert.DoesNotContain("127.0.0.1", first.SetCookie, StringComparison.Ordinal); // opaque: the address is not in it
        for (var i = 0; i < 12; i++)
        {
            var next = await GetAsync(client, Pair(first.SetCookie!));
            Assert.Equal((HttpStatusCode.OK, first.Server), (next.Status, next.Server));
            Assert.Null(next.SetCookie); // already pinned there: nothing to re-issue
        }
    }

    [Fact]
    public async Task WithoutACookie_TheAlgorithmPlacesEachRequest_AndEveryBackendGetsItsOwnCookie()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync(Yaml(backends, "round-robin", "cookie"), output);
        using var client = NoCookies(lb);

        var answers = new List<(string? Server, string? Cookie)>();
        for (var i = 0; i < 6; i++)
        {
            var (_, server, cookie, _) = await GetAsync(client);
            answers.Add((server, cookie));
        }

        Assert.Equal(3, answers.Select(a => a.Server).Distinct().Count());
        Assert.Equal(3, answers.Select(a => a.Cookie).Distinct().Count()); // one token per backend, the same each time
        Assert.All(answers.GroupBy(a => a.Server), g => Assert.Single(g.Select(a => a.Cookie).Distinct()));
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA")]
    public async Task ATamperedCookie_IsIgnored_NeverA500_AndANewOneIsIssued(string value)
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync(Yaml(backends, "round-robin", "{ mode: cookie, when-unavailable: reject }"), output);
        using var client = NoCookies(lb);
        var good = await GetAsync(client);
        var token = Pair(good.SetCookie!)["lb_session=".Length..];
        var flipped = token[..^1] + (token[^1] == 'A' ? 'B' : 'A');

        foreach (var bad in new[] { value, flipped, token + "x", "." + token })
        {
            var answer = await GetAsync(client, "lb_session=" + bad);
            Assert.Equal(HttpStatusCode.OK, answer.Status); // even with reject: a token not made here is no pin at all
            Assert.NotNull(answer.SetCookie);
        }
    }

    [Fact]
    public async Task ThePinnedBackendGone_TheClientIsPlacedAgain_AndGetsANewCookie_ThenStaysThere()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync(Yaml(backends, "round-robin", "cookie", "health-checks: { enabled: false }"), output);
        using var client = NoCookies(lb);
        var first = await GetAsync(client);
        var pinned = backends.All.Single(b => b.Name == first.Server);

        await pinned.DisposeAsync(); // gone: the try fails, the retry goes elsewhere and the cookie follows it
        var moved = await GetAsync(client, Pair(first.SetCookie!));
        Assert.Equal(HttpStatusCode.OK, moved.Status);
        Assert.NotEqual(first.Server, moved.Server);
        Assert.NotNull(moved.SetCookie);
        Assert.NotEqual(first.SetCookie, moved.SetCookie);
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(moved.Server, (await GetAsync(client, Pair(moved.SetCookie!))).Server);
        }
    }

    [Fact]
    public async Task ThePinnedBackendDraining_WithReject_Is503_AndWithRepick_AnotherBackend()
    {
        await using var backends = await Backends.StartAsync(2);
        foreach (var mode in new[] { "reject", "repick" })
        {
            await using var lb = await TestBalancer.StartAsync($$"""
                persistence: { mode: cookie, when-unavailable: {{mode}} }
                health-checks: { enabled: false }
                drain: { timeout: 60s }
                """, output);
            foreach (var backend in backends.All)
            {
                (await lb.Admin.PostAsJsonAsync("/backends", new { address = backend.Origin })).EnsureSuccessStatusCode();
            }

            using var client = NoCookies(lb);
            var first = await GetAsync(client);
            var pinned = backends.All.Single(b => b.Name == first.Server);
            (await lb.Admin.PostAsync($"/backends/{Uri.EscapeDataString(pinned.Origin)}/drain", null)).EnsureSuccessStatusCode();

            var after = await GetAsync(client, Pair(first.SetCookie!));
            if (mode == "reject")
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, after.Status);
            }
            else
            {
                Assert.Equal(HttpStatusCode.OK, after.Status);
                Assert.NotEqual(first.Server, after.Server);
                Assert.NotNull(after.SetCookie);
            }
        }
    }

    [Fact]
    public async Task CookieAttributes_AreAsConfigured()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(
            Yaml(backends, "round-robin", "{ mode: cookie, name: SRV, path: /app, max-age: 1h, secure: true, http-only: false, same-site: strict }"), output);
        using var client = NoCookies(lb);

        var cookie = (await GetAsync(client)).SetCookie!;
        Assert.StartsWith("SRV=", cookie, StringComparison.Ordinal);
        var attributes = cookie.Split(';', StringSplitOptions.TrimEntries).Skip(1).Select(a => a.ToLowerInvariant()).ToList();
        Assert.Contains("path=/app", attributes);
        Assert.Contains("max-age=3600", attributes);
        Assert.Contains("secure", attributes);
        Assert.Contains("samesite=strict", attributes);
        Assert.DoesNotContain("httponly", attributes);
    }

    [Fact]
    public async Task HeaderPersistence_CarriesTheTokenInAHeaderTheClientEchoes()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync(Yaml(backends, "round-robin", "header:X-Session"), output);
        using var client = NoCookies(lb);

        var first = await GetAsync(client);
        Assert.Null(first.SetCookie);
        var token = first.Response.Headers.GetValues("X-Session").Single();
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(first.Server, (await GetAsync(client, header: ("X-Session", token))).Server);
        }
    }

    [Fact]
    public async Task HeaderPersistence_ThePinnedBackendGone_MovesTheClient_WithANewToken()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync(Yaml(backends, "round-robin", "header:X-Session", "health-checks: { enabled: false }"), output);
        using var client = NoCookies(lb);
        var first = await GetAsync(client);
        var token = first.Response.Headers.GetValues("X-Session").Single();

        await backends.All.Single(b => b.Name == first.Server).DisposeAsync();
        var moved = await GetAsync(client, header: ("X-Session", token));
        Assert.Equal(HttpStatusCode.OK, moved.Status);
        Assert.NotEqual(first.Server, moved.Server);
        var renewed = moved.Response.Headers.GetValues("X-Session").Single();
        Assert.NotEqual(token, renewed);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(moved.Server, (await GetAsync(client, header: ("X-Session", renewed))).Server);
        }
    }

    [Fact]
    public async Task ConsistentHashPersistence_KeepsAKeyOnOneBackend_AndMovesItWhenThatBackendGoes()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync(
            Yaml(backends, "least-connections", "consistent-hash", "health-checks: { interval: 200ms, fall: 1 }\nload-balancing: { hash-key: \"header:X-User\" }"), output);
        using var client = NoCookies(lb);
        async Task<string?> Of(string user) => (await GetAsync(client, header: ("X-User", user))).Server;

        var homes = new Dictionary<string, string?>();
        for (var user = 0; user < 12; user++)
        {
            homes[$"u{user}"] = await Of($"u{user}");
            Assert.Equal(homes[$"u{user}"], await Of($"u{user}"));
        }

        var lost = homes.Values.GroupBy(s => s).OrderByDescending(g => g.Count()).First().Key;
        await backends.All.Single(b => b.Name == lost).DisposeAsync();
        await Eventually.TrueAsync(async () =>
        {
            foreach (var (user, home) in homes)
            {
                var now = await Of(user);
                if (now is null || (home == lost ? now == lost : now != home))
                {
                    return false;
                }
            }

            return true;
        }, "the lost backend's users, and only they, to move");
    }

    [Fact]
    public async Task IpHashPersistence_MovesTheLostBackendsClients_WhenItGoes_AndTheyStayWhereTheyWent()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync(Yaml(backends, "round-robin", "ip-hash", "health-checks: { interval: 200ms, fall: 1 }"), output);
        var homes = new Dictionary<IPAddress, string?>();
        for (var client = 2; client < 14; client++)
        {
            var from = IPAddress.Parse($"127.0.0.{client}");
            homes[from] = (await lb.GetFromAsync(from, "/")).Server;
        }

        var lost = homes.Values.GroupBy(s => s).OrderByDescending(g => g.Count()).First().Key;
        await backends.All.Single(b => b.Name == lost).DisposeAsync();
        await Eventually.TrueAsync(async () =>
        {
            foreach (var (from, home) in homes)
            {
                var (status, now) = await lb.GetFromAsync(from, "/");
                if (status != HttpStatusCode.OK || now == lost)
                {
                    return false;
                }
            }

            return true;
        }, "the lost backend's clients to move");

        // Wherever each went (Maglev moves the lost backend's clients and a few others), it stays.
        foreach (var from in homes.Keys)
        {
            var now = (await lb.GetFromAsync(from, "/")).Server;
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(now, (await lb.GetFromAsync(from, "/")).Server);
            }
        }
    }

    [Fact]
    public async Task TheSigningKey_IsKeptInTheDataDirectory_SoCookiesOutliveARestart()
    {
        await using var backends = await Backends.StartAsync(3);
        var yaml = Yaml(backends, "round-robin", "cookie");
        string cookie, server, directory;
        await using (var lb = await TestBalancer.StartAsync(yaml, output))
        {
            lb.KeepDirectory = true;
            directory = lb.Directory;
            using var client = NoCookies(lb);
            _ = await GetAsync(client); // move the rotation on: the pinned one is not simply the first
            var answer = await GetAsync(client);
            (cookie, server) = (Pair(answer.SetCookie!), answer.Server!);
            var key = Path.Combine(Path.GetDirectoryName(lb.Options.DbPath)!, "affinity.key");
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
            }
        }

        await using (var lb = await TestBalancer.StartInAsync(directory, yaml, output))
        {
            using var client = NoCookies(lb);
            for (var i = 0; i < 4; i++)
            {
                Assert.Equal(server, (await GetAsync(client, cookie)).Server);
            }
        }
    }

    [Fact]
    public async Task IpHashPersistence_KeepsEachClientAddressOnOneBackend_WhateverTheAlgorithmSays()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync(Yaml(backends, "round-robin", "ip-hash"), output);

        var seen = new HashSet<string?>();
        for (var client = 2; client < 12; client++)
        {
            var from = IPAddress.Parse($"127.0.0.{client}");
            var servers = new HashSet<string?>();
            for (var i = 0; i < 4; i++)
            {
                servers.Add((await lb.GetFromAsync(from, "/")).Server);
            }

            seen.Add(Assert.Single(servers));
        }

        Assert.True(seen.Count > 1, "ten client addresses all hashed to one backend");
        Assert.Equal("ip-hash", lb.Options.Pools[0].Algorithm);
    }
}
