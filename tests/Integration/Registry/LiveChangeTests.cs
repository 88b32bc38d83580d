using System.Net;
using System.Net.Http.Json;
using Balancer.ControlPlane;
using Balancer.Tests.Kit;
using Xunit.Abstractions;
using static Balancer.Tests.Kit.Registrations;

namespace Balancer.Tests.Integration.Registry;

/// <summary>
/// A success answer means the change is live: the very next request sees it, for every kind of change, whether it
/// touches the backend set or only a backend's paths and clients.
/// </summary>
public sealed class LiveChangeTests(ITestOutputHelper output)
{
    private static readonly IPAddress Client2 = IPAddress.Parse("127.0.0.2");
    private static readonly IPAddress Client3 = IPAddress.Parse("127.0.0.3");
    private static readonly IPAddress Client4 = IPAddress.Parse("127.0.0.4");

    [Fact]
    public async Task RevokingAClient_TheNextRequestFromIt_Is403()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        Assert.True((await control.SendAsync(Add(backends[0].Port, paths: ["/shop"], clients: ["127.0.0.2", "127.0.0.3"]))).Succeeded);
        Assert.Equal((HttpStatusCode.OK, "b1"), await lb.GetFromAsync(Client3, "/shop"));

        var revoked = await control.SendAsync(Remove(backends[0].Port, clients: ["127.0.0.3"]));

        Assert.True(revoked.Succeeded, revoked.Message);
        Assert.Equal(HttpStatusCode.Forbidden, (await lb.GetFromAsync(Client3, "/shop")).Status);
        Assert.Equal((HttpStatusCode.OK, "b1"), await lb.GetFromAsync(Client2, "/shop"));
    }

    [Fact]
    public async Task TighteningAnOpenBackend_ToAClientList_ShutsOutEveryoneElse_AtOnce()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        Assert.True((await control.SendAsync(Add(backends[0].Port, paths: ["/shop"]))).Succeeded);
        Assert.Equal((HttpStatusCode.OK, "b1"), await lb.GetFromAsync(Client4, "/shop"));

        Assert.True((await control.SendAsync(Add(backends[0].Port, clients: ["127.0.0.2"]))).Succeeded);

        Assert.Equal(HttpStatusCode.Forbidden, (await lb.GetFromAsync(Client4, "/shop")).Status);
        Assert.Equal((HttpStatusCode.OK, "b1"), await lb.GetFromAsync(Client2, "/shop"));
    }

    [Fact]
    public async Task AddingAPathClaim_ToARegisteredBackend_SendsThatPathToIt_AtOnce()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        Assert.True((await control.SendAsync(Add(backends[0].Port))).Succeeded);
        Assert.True((await control.SendAsync(Add(backends[1].Port))).Succeeded);
        Assert.True((await control.SendAsync(Add(backends[2].Port, paths: ["/elsewhere"]))).Succeeded); // the pool has restrictions already

        Assert.True((await control.SendAsync(Add(backends[1].Port, paths: ["/only"]))).Succeeded);

        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("b2", (await lb.GetEchoAsync("/only/x")).Server);
        }

        Assert.True((await control.SendAsync(Remove(backends[1].Port, paths: ["/only"]))).Succeeded);
        var servers = new HashSet<string>();
        for (var i = 0; i < 4; i++)
        {
            servers.Add((await lb.GetEchoAsync("/only/x")).Server);
        }

        Assert.Equal(["b1", "b2"], servers.Order());
    }

    [Fact]
    public async Task Registrations_AmidTheHealthChangesOfManyOthers_AreLiveWhenAnswered()
    {
        // Thousands of registrations, each found up or down by its first probe while the live ones join: a health change
        // that read the destination list before a registration was applied must not write that old list back after it.
        // The up ones are bare listeners (a TCP check needs only the connect); each of their first probes rebuilds the
        // pool's lists, concurrently with the config applies of the registrations behind it.
        const int Up = 1500, Down = 1500, Live = 25;
        var listeners = Enumerable.Range(0, Up).Select(_ => new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0)).ToList();
        try
        {
            listeners.ForEach(l => l.Start());
            await using var backends = await Backends.StartAsync(Live);
            await using var lb = await TestBalancer.StartAsync("", output);
            var others = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).Concat(Enumerable.Range(20000, Down)).ToList();
            var live = Enumerable.Range(0, Live).ToDictionary(i => (i + 1) * (others.Count / Live), i => i);
            var requests = new List<RegistrationRequest>();
            for (int i = 0, other = 0; i < others.Count + Live; i++)
            {
                requests.Add(live.TryGetValue(i, out var b) ? Add(backends[b].Port, paths: [$"/live/{b}"]) : Add(others[other++]));
            }

            await using var control = await lb.ConnectControlPlaneAsync();
            var writer = control.WriteAsync(requests.SelectMany(ControlPlaneCodec.EncodeRequest).ToArray());
            var failures = new List<string>();
            for (var i = 0; i < requests.Count; i++)
            {
                var answer = await control.ReadResponseAsync();
                Assert.True(answer?.Succeeded, answer?.Message);
                if (answer is not null && live.TryGetValue(i, out var b))
                {
                    var (status, server) = await lb.GetFromAsync(IPAddress.Loopback, $"/live/{b}");
                    if (status != HttpStatusCode.OK || server != $"b{b + 1}")
                    {
                        failures.Add($"/live/{b} right after its 0xFF ({answer.Value.Message}): {(int)status} {server}");
                    }
                }
            }

            await writer;
            Assert.True(failures.Count == 0, string.Join("\n", failures));
        }
        finally
        {
            listeners.ForEach(l => l.Stop());
        }
    }

    [Fact]
    public async Task TenThousandPaths_OnOneBackend_AllRoute()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        Assert.True((await control.SendAsync(Add(backends[0].Port))).Succeeded);

        // Adds are cumulative and a packet holds 255 bytes: many packets, pipelined, answered in order.
        const int Paths = 10_000;
        var packets = Enumerable.Range(0, Paths).Select(i => $"/p/{i}").Chunk(20).Select(chunk => ControlPlaneCodec.EncodeRequest(Add(backends[1].Port, paths: chunk))).ToList();
        await control.WriteAsync(packets.SelectMany(p => p).ToArray());
        for (var i = 0; i < packets.Count; i++)
        {
            var answer = await control.ReadResponseAsync();
            Assert.True(answer?.Succeeded, answer?.Message);
        }

        foreach (var i in Enumerable.Range(0, Paths).Where(i => i % 97 == 0).Append(Paths - 1))
        {
            Assert.Equal("b2", (await lb.GetEchoAsync($"/p/{i}/x")).Server);
        }

        Assert.Equal("b1", (await lb.GetEchoAsync($"/p/{Paths}")).Server);
        using var view = await lb.Admin.GetAsync(new Uri($"/backends/127.0.0.1:{backends[1].Port}", UriKind.Relative));
        var backend = await view.Content.ReadFromJsonAsync<BackendJson>();
        Assert.Equal(Paths, backend!.Paths.Count);
    }

    [Fact]
    public async Task RestChanges_PathsClientsWeightDrainAndRemoval_AreLiveWhenAnswered()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync("", output);
        var b1 = $"127.0.0.1:{backends[0].Port}";
        var b2 = $"127.0.0.1:{backends[1].Port}";
        Assert.Equal(HttpStatusCode.Created, (await lb.Admin.PostAsJsonAsync("/backends", new { address = b1 })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await lb.Admin.PostAsJsonAsync("/backends", new { address = b2 })).StatusCode);

        // Paths and clients, replaced by PUT.
        Assert.Equal(HttpStatusCode.OK, (await lb.Admin.PutAsJsonAsync($"/backends/{b2}", new { paths = new[] { "/vip" }, clients = new[] { "127.0.0.2" } })).StatusCode);
        Assert.Equal((HttpStatusCode.OK, "b2"), await lb.GetFromAsync(Client2, "/vip"));
        Assert.Equal(HttpStatusCode.Forbidden, (await lb.GetFromAsync(Client3, "/vip")).Status);
        Assert.Equal((HttpStatusCode.OK, "b1"), await lb.GetFromAsync(Client3, "/"));

        Assert.Equal(HttpStatusCode.OK, (await lb.Admin.PutAsJsonAsync($"/backends/{b2}", new { clients = Array.Empty<string>() })).StatusCode);
        Assert.Equal((HttpStatusCode.OK, "b2"), await lb.GetFromAsync(Client3, "/vip"));

        Assert.Equal(HttpStatusCode.OK, (await lb.Admin.PutAsJsonAsync($"/backends/{b2}", new { paths = Array.Empty<string>() })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await lb.Admin.PutAsJsonAsync($"/backends/{b1}", new { weight = 0 })).StatusCode);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("b2", (await lb.GetEchoAsync("/vip")).Server);
        }

        Assert.Equal(HttpStatusCode.OK, (await lb.Admin.PutAsJsonAsync($"/backends/{b1}", new { weight = 1 })).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await lb.Admin.PostAsync($"/backends/{b2}/drain", null)).StatusCode);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("b1", (await lb.GetEchoAsync("/")).Server);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await lb.Admin.DeleteAsync($"/backends/{b1}")).StatusCode);
        using var none = await lb.Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, none.StatusCode);
    }

    private sealed record BackendJson(string Address, IReadOnlyList<string> Paths, IReadOnlyList<string> Clients);
}
