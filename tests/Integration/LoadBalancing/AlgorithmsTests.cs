using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Balancer.Tests.Kit;
using FakeBackends;
using FakeBackends.Behaviors;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.LoadBalancing;

public sealed class AlgorithmsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task WeightedRoundRobin_5_1_1_GivesNginxsSequence_ThroughTheProxy()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync($$"""
            BalanceHub: { algorithm: weighted-round-robin }
            backends:
              - { address: "{{backends[0].Address}}", weight: 5 }
              - { address: "{{backends[1].Address}}", weight: 1 }
              - { address: "{{backends[2].Address}}", weight: 1 }
            """, output);

        var servers = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            servers.Add((await lb.GetEchoAsync()).Server);
        }

        Assert.Equal(["b1", "b1", "b2", "b1", "b3", "b1", "b1"], servers);
    }

    [Fact]
    public async Task IpHash_EachClientSticksToOneBackend_AndClientsSpread()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { algorithm: ip_hash }\n" + TestBalancer.BackendsYaml(backends.All), output);
        var seen = new Dictionary<string, HashSet<string>>();

        for (var client = 1; client <= 12; client++)
        {
            var address = IPAddress.Parse($"127.0.0.{client}");
            for (var i = 0; i < 3; i++)
            {
                var (status, server) = await lb.GetFromAsync(address, "/sticky");
                Assert.Equal(HttpStatusCode.OK, status);
                (seen.TryGetValue(address.ToString(), out var set) ? set : seen[address.ToString()] = []).Add(server!);
            }
        }

        Assert.All(seen.Values, servers => Assert.Single(servers));
        Assert.True(seen.Values.Select(s => s.Single()).Distinct().Count() >= 2, "twelve clients all landed on one backend");
    }

    [Fact]
    public async Task ConsistentHash_ByHeader_SameUserSameBackend()
    {
        await using var backends = await Backends.StartAsync(4);
        await using var lb = await TestBalancer.StartAsync(
            "BalanceHub: { algorithm: consistent-hash }\nload-balancing: { hash-key: header:X-User }\n" + TestBalancer.BackendsYaml(backends.All), output);

        async Task<string> AsUser(string user, string path)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Add("X-User", user);
            using var response = await lb.Client.SendAsync(request);
            return (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server;
        }

        var homes = new HashSet<string>();
        for (var u = 0; u < 20; u++)
        {
            var home = await AsUser($"user-{u}", "/a");
            Assert.Equal(home, await AsUser($"user-{u}", "/b/c"));
            homes.Add(home);
        }

        Assert.True(homes.Count >= 2, "twenty users all landed on one backend");
    }

    [Theory]
    [InlineData("random")]
    [InlineData("power-of-two")]
    [InlineData("weighted-least-connections")]
    public async Task OtherAlgorithms_ServeThroughTheProxy_AndReachEveryBackend(string algorithm)
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync($"BalanceHub: {{ algorithm: {algorithm} }}\n" + TestBalancer.BackendsYaml(backends.All), output);

        var servers = new HashSet<string>();
        for (var i = 0; i < 60 && servers.Count < 3; i++)
        {
            servers.Add((await lb.GetEchoAsync()).Server);
        }

        Assert.Equal(["b1", "b2", "b3"], servers.Order());
    }

    [Fact]
    public async Task LeastConnections_CountsRequestsEvenWhileOnlyOneBackendExists()
    {
        // With one backend YARP does not consult the policy at all; the request must be counted regardless.
        await using var backends = await Backends.StartAsync(2, (i, o) => i == 0 ? o with { Behaviors = BehaviorCatalog.From("latency: 1m") } : o);
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { algorithm: least-connections }\n" + TestBalancer.BackendsYaml([backends[0]]), output);
        using var abandon = new CancellationTokenSource();
        var held = lb.Client.GetAsync("/held", abandon.Token);
        await Eventually.TrueAsync(() => backends[0].RequestCount == 1, "the request to reach the only backend");

        await using var control = await lb.ConnectControlPlaneAsync();
        Assert.True((await control.SendAsync(Registrations.Add(backends[1].Port))).Succeeded);
        for (var i = 0; i < 6; i++)
        {
            var request = lb.Client.GetAsync($"/next/{i}", abandon.Token);
            await Eventually.TrueAsync(() => request.IsCompleted || backends[0].RequestCount > 1, $"request {i} to be answered or to reach the busy backend");
            Assert.True(request.IsCompleted, $"request {i} went to the backend that already has one in flight");
            Assert.Equal("b2", (await (await request).Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server);
        }

        await abandon.CancelAsync();
        _ = held;
    }

    [Fact]
    public async Task OnlyBackendHasWeightZero_Answers503_NotTheBackend()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync($"backends: [ {{ address: \"{backends[0].Address}\", weight: 0 }} ]", output);

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(0, backends[0].RequestCount);
    }

    [Fact]
    public async Task AllUnhealthy_Reject_Answers503_Panic_UsesThemAll()
    {
        await using var backends = await Backends.StartAsync(2, (_, o) => o with { Behaviors = BehaviorCatalog.From("unhealthy") });
        const string Health = "health-checks: { enabled: true, path: /health, interval: 200ms }\n";
        await using var reject = await TestBalancer.StartAsync(Health + "load-balancing: { when-all-unhealthy: reject }\n" + TestBalancer.BackendsYaml(backends.All), output);
        await using var panic = await TestBalancer.StartAsync(Health + "load-balancing: { when-all-unhealthy: panic }\n" + TestBalancer.BackendsYaml(backends.All), output);

        await Eventually.TrueAsync(async () => await AllUnhealthyAsync(reject) && await AllUnhealthyAsync(panic), "both balancers to mark both backends unhealthy");

        using var rejected = await reject.Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, rejected.StatusCode);
        using var panicked = await panic.Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, panicked.StatusCode);
    }

    [Fact]
    public async Task PanicThreshold_BelowItAllAreUsed_AboveItOnlyTheHealthy()
    {
        // Two of four unhealthy: 50% healthy. A threshold of 60% panics; the healthy half alone is not enough.
        await using var backends = await Backends.StartAsync(4, (i, o) => i < 2 ? o with { Behaviors = BehaviorCatalog.From("unhealthy") } : o);
        await using var lb = await TestBalancer.StartAsync(
            "health-checks: { enabled: true, path: /health, interval: 200ms }\nload-balancing: { when-all-unhealthy: panic, panic-threshold: 60 }\nBalanceHub: { algorithm: round-robin }\n" + TestBalancer.BackendsYaml(backends.All), output);
        await Eventually.TrueAsync(async () => (await HealthAsync(lb)).Count(h => h == "unhealthy") == 2, "two backends to be marked unhealthy");

        var servers = new HashSet<string>();
        for (var i = 0; i < 8; i++)
        {
            servers.Add((await lb.GetEchoAsync()).Server);
        }

        Assert.Equal(["b1", "b2", "b3", "b4"], servers.Order());
    }

    private static async Task<bool> AllUnhealthyAsync(TestBalancer lb) => (await HealthAsync(lb)).All(h => h == "unhealthy");

    private static async Task<List<string>> HealthAsync(TestBalancer lb)
    {
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        return [.. json.RootElement.EnumerateArray().Select(b => b.GetProperty("health").GetString()!)];
    }
}
