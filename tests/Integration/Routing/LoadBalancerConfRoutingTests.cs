using System.Net;
using System.Net.Http.Json;
using Balancer.Tests.Kit;
using FakeBackends;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Routing;

/// <summary>go-load-balancer's README routing sample, its host names replaced by fake backends, routes as the README says.</summary>
public sealed class LoadBalancerConfRoutingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TheReadmesRoutingSample_RoutesAsItDescribes()
    {
        // b1, b2: api_servers; b3, b4: auth_servers; b5, b6: static_servers (weights 3 and 1).
        await using var backends = await Backends.StartAsync(6);
        string At(int i) => backends[i].Origin;
        await using var lb = await TestBalancer.StartConfAsync($"""
            route /api/* backend_pool=api_servers
            route /auth/* backend_pool=auth_servers
            route /static/* backend_pool=static_servers

            pool api_servers method=least_connections
            backend {At(0)} pool=api_servers
            backend {At(1)} pool=api_servers

            pool auth_servers method=ip_hash persistence=cookie
            backend {At(2)} pool=auth_servers
            backend {At(3)} pool=auth_servers

            pool static_servers method=weighted_round_robin
            backend {At(4)} weight=3 pool=static_servers
            backend {At(5)} weight=1 pool=static_servers
            """, output);

        async Task<(HttpStatusCode Status, string? Server)> Get(string path)
        {
            using var response = await lb.Client.GetAsync(path);
            return (response.StatusCode, response.IsSuccessStatusCode ? (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server : null);
        }

        // /api/* to the least-connections pool: sequential requests, equal backends, taking turns.
        var api = new List<string?>();
        for (var i = 0; i < 4; i++)
        {
            api.Add((await Get($"/api/users/{i}")).Server);
        }

        Assert.Equal(["b1", "b2"], api.Distinct().Order());

        // /auth/* to the ip_hash pool: one client, one backend.
        var auth = new HashSet<string?>();
        for (var i = 0; i < 4; i++)
        {
            auth.Add((await Get("/auth/login")).Server);
        }

        Assert.Contains(Assert.Single(auth), new[] { "b3", "b4" });

        // /static/* by weight, 3 to 1.
        var statics = new List<string?>();
        for (var i = 0; i < 8; i++)
        {
            statics.Add((await Get($"/static/app{i}.js")).Server);
        }

        Assert.Equal((6, 2), (statics.Count(s => s == "b5"), statics.Count(s => s == "b6")));

        // Anything else: the default pool, which the sample leaves empty.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await Get("/other")).Status);
    }
}
