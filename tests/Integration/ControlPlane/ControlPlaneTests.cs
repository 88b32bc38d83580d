using System.Net;
using System.Text;
using System.Text.Json;
using Balancer.ControlPlane;
using Balancer.Tests.Kit;
using FakeBackends;
using Xunit.Abstractions;
using static Balancer.Tests.Kit.Registrations;

namespace Balancer.Tests.Integration.ControlPlane;

public sealed class ControlPlaneTests(ITestOutputHelper output)
{
    private static readonly IPAddress Client2 = IPAddress.Parse("127.0.0.2");
    private static readonly IPAddress Client3 = IPAddress.Parse("127.0.0.3");
    private static readonly IPAddress Client4 = IPAddress.Parse("127.0.0.4");

    [Fact]
    public async Task Register_ThreeBackends_TrafficReachesThem_RemoveOne_TrafficStops()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { algorithm: round-robin }", output);
        await using var control = await lb.ConnectControlPlaneAsync();

        foreach (var backend in backends.All)
        {
            var answer = await control.SendAsync(Add(backend.Port));
            Assert.True(answer.Succeeded, answer.Message);
            Assert.Equal($"registered http://127.0.0.1:{backend.Port}; healthy (TCP connect: accepted)", answer.Message); // probed before the answer
        }

        var servers = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            servers.Add((await lb.GetEchoAsync()).Server);
        }

        Assert.Equal(["b1", "b2", "b3", "b1", "b2", "b3"], servers);

        var removed = await control.SendAsync(Remove(backends[1].Port));
        Assert.True(removed.Succeeded, removed.Message);
        var before = backends[1].RequestCount;
        for (var i = 0; i < 6; i++)
        {
            Assert.NotEqual("b2", (await lb.GetEchoAsync()).Server);
        }

        Assert.Equal(before, backends[1].RequestCount);
    }

    [Fact]
    public async Task SuccessMeansLive_TheFirstRequestAfterTheAnswerReachesTheNewBackend()
    {
        await using var backends = await Backends.StartAsync(5);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();

        foreach (var backend in backends.All)
        {
            Assert.True((await control.SendAsync(Add(backend.Port, paths: [$"/only/{backend.Name}"]))).Succeeded);

            // Only this backend serves this path, and the answer promised it is live: no 503 window.
            Assert.Equal(backend.Name, (await lb.GetEchoAsync($"/only/{backend.Name}/x")).Server);
        }
    }

    [Fact]
    public async Task PathRestrictions_LongestRegisteredPrefixWins_OnSegmentBoundaries()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        await control.SendAsync(Add(backends[0].Port, paths: ["/api"]));
        await control.SendAsync(Add(backends[1].Port, paths: ["/api/v2"]));
        await control.SendAsync(Add(backends[2].Port));

        Assert.Equal("b2", (await lb.GetEchoAsync("/api/v2")).Server);
        Assert.Equal("b2", (await lb.GetEchoAsync("/API/v2/users")).Server);
        Assert.Equal("b1", (await lb.GetEchoAsync("/api/v2x")).Server);
        Assert.Equal("b1", (await lb.GetEchoAsync("/api")).Server);
        Assert.Equal("b3", (await lb.GetEchoAsync("/apix")).Server);
        Assert.Equal("b3", (await lb.GetEchoAsync("/")).Server);
    }

    [Fact]
    public async Task PathClaimedOnlyByAnUnavailableBackend_Is503_NotAnotherBackend()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        await control.SendAsync(Add(backends[0].Port, paths: ["/public"]));

        using var response = await lb.Client.GetAsync("/private");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task ClientRestrictions_OnlyAdmittedClientsReachTheBackend_OthersGet403()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        await control.SendAsync(Add(backends[0].Port, paths: ["/shop"], clients: ["127.0.0.2"]));
        await control.SendAsync(Add(backends[1].Port, paths: ["/shop"], clients: ["127.0.0.3/32", "10.0.0.0/8"]));

        Assert.Equal((HttpStatusCode.OK, "b1"), await lb.GetFromAsync(Client2, "/shop/cart"));
        Assert.Equal((HttpStatusCode.OK, "b2"), await lb.GetFromAsync(Client3, "/shop/cart"));
        Assert.Equal(HttpStatusCode.Forbidden, (await lb.GetFromAsync(Client4, "/shop/cart")).Status);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await lb.GetFromAsync(Client4, "/elsewhere")).Status);
    }

    [Fact]
    public async Task SourceOutsideTheAllowList_IsClosedWithoutAReply_AndChangesNothing()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("Original-Server: { allow: [127.0.0.1/32] }", output);
        await using var refused = await lb.ConnectControlPlaneAsync(from: Client2);

        await refused.WriteAsync(ControlPlaneCodec.EncodeRequest(Add(backends[0].Port)));

        Assert.Null(await refused.ReadResponseAsync());
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        Assert.Equal(0, json.RootElement.GetArrayLength());
        await using var allowed = await lb.ConnectControlPlaneAsync(from: IPAddress.Loopback);
        Assert.True((await allowed.SendAsync(Add(backends[0].Port))).Succeeded);
    }

    [Fact]
    public async Task PipelinedPackets_InOneWrite_AreAnsweredInOrder()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();

        await control.WriteAsync((byte[])[
            .. ControlPlaneCodec.EncodeRequest(Add(9001)),
            .. ControlPlaneCodec.EncodeRequest(Add(9002, paths: ["/a"])),
            .. ControlPlaneCodec.EncodeRequest(Remove(9003)),
            .. ControlPlaneCodec.EncodeRequest(Remove(9001)),
        ]);

        // The first may be answered without its probe: when the fourth lands in the same batch, the backend is gone again.
        Assert.StartsWith("registered http://127.0.0.1:9001", (await control.ReadResponseAsync())?.Message, StringComparison.Ordinal);
        Assert.Equal(new ControlResponse(true, "registered http://127.0.0.1:9002; no traffic until a probe passes (connection refused)"), await control.ReadResponseAsync());
        Assert.Equal(new ControlResponse(false, "http://127.0.0.1:9003 is not registered"), await control.ReadResponseAsync());
        Assert.Equal(new ControlResponse(true, "removed http://127.0.0.1:9001"), await control.ReadResponseAsync());
    }

    [Fact]
    public async Task PacketSplitAcrossManyWrites_IsReassembled()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();

        foreach (var b in ControlPlaneCodec.EncodeRequest(Add(9005, paths: ["/split/into/bytes"])))
        {
            await control.WriteAsync(new[] { b });
        }

        Assert.Equal(new ControlResponse(true, "registered http://127.0.0.1:9005; no traffic until a probe passes (connection refused)"), await control.ReadResponseAsync());
    }

    [Fact]
    public async Task PayloadErrors_AreAnsweredAndTheConnectionKeepsServing()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();

        await control.WriteAsync(Raw(0xF0, "{\"Port\":\"abc\"}"));
        Assert.Equal(new ControlResponse(false, "Port: abc is not a port (1-65535)"), await control.ReadResponseAsync());
        await control.WriteAsync(Raw(0x77, "{\"Port\":1}"));
        Assert.Equal(new ControlResponse(false, "unknown action 0x77 (0xF0 adds, 0x0F removes)"), await control.ReadResponseAsync());
        await control.WriteAsync(Raw(0xF0, "{\"Port\":1,\"Clients\":[\"300.1.1.1\"]}"));
        Assert.Equal(new ControlResponse(false, "Clients[0]: 300.1.1.1 is not an IP address or CIDR"), await control.ReadResponseAsync());
        byte[] overlong = [(byte)'L', (byte)'B', 0xF0, 13, .. "{\"Port\":\""u8, 0xC0, 0x80, .. "\"}"u8]; // an overlong NUL
        await control.WriteAsync(overlong);
        Assert.Equal(new ControlResponse(false, "payload is not valid UTF-8 (at byte 9)"), await control.ReadResponseAsync());
        await control.WriteAsync(Raw(0xF0, "{\"Port\":0}"));
        Assert.Equal(new ControlResponse(false, "Port: 0 is not a port (1-65535)"), await control.ReadResponseAsync());
        await control.WriteAsync(Raw(0xF0, "{\"Port\":1,\"port\":2}"));
        Assert.Equal(new ControlResponse(false, "Port is given twice"), await control.ReadResponseAsync());

        Assert.True((await control.SendAsync(Add(9010))).Succeeded);
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        Assert.Equal(["http://127.0.0.1:9010"], json.RootElement.EnumerateArray().Select(b => b.GetProperty("address").GetString()));
    }

    [Fact]
    public async Task Port80_IsStoredInTheSameNormalFormAsTheRestApiWrites()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();

        Assert.StartsWith("registered http://127.0.0.1;", (await control.SendAsync(Add(80))).Message, StringComparison.Ordinal);
        using var viaRest = await lb.Admin.DeleteAsync("/backends/127.0.0.1:80");
        Assert.Equal(HttpStatusCode.NoContent, viaRest.StatusCode); // one backend, whichever way it is named
    }

    [Fact]
    public async Task BadMagic_IsAnsweredThenTheConnectionIsClosed()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();

        await control.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\n\r\n"));

        var answer = await control.ReadResponseAsync();
        Assert.Equal(new ControlResponse(false, "bad magic 0x47 0x45 (expected 'L' 'B'): not a control-plane packet"), answer);
        Assert.Null(await control.ReadResponseAsync());
    }

    [Fact]
    public async Task IdleConnection_IsClosedAfterTheIdleTimeout_NotBefore()
    {
        await using var lb = await TestBalancer.StartAsync("control-plane: { idle-timeout: 1s }", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        Assert.True((await control.SendAsync(Add(9020))).Succeeded); // activity: the connection serves

        var started = DateTime.UtcNow;
        Assert.Null(await control.ReadResponseAsync()); // then, left idle, it is closed
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(0.9), "closed before the idle timeout");
    }

    [Fact]
    public async Task FakeBackend_RegistersItselfOnStart_AndLeavesOnStop()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        var backend = await FakeBackend.StartAsync(new FakeBackendOptions { Name = "self", Register = lb.ControlPlane, Paths = ["/self"] });

        Assert.Equal("self", (await lb.GetEchoAsync("/self/x")).Server);

        await backend.DisposeAsync();
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        Assert.Equal(0, json.RootElement.GetArrayLength());
    }

    private static byte[] Raw(byte action, string json)
    {
        var payload = Encoding.UTF8.GetBytes(json);
        return [(byte)'L', (byte)'B', action, (byte)payload.Length, .. payload];
    }
}
