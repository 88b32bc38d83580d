using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Balancer.Tests.Kit;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Admin;

public sealed class BackendsApiTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Post_Get_Put_Delete_ABackend()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("", output);
        var address = backends[0].Origin;

        using var created = await lb.Admin.PostAsync("/backends", Json(new { address, weight = 2, paths = new[] { "/api" }, clients = new[] { "127.0.0.0/8" } }));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using (var body = JsonDocument.Parse(await created.Content.ReadAsStringAsync()))
        {
            Assert.Equal(address, body.RootElement.GetProperty("address").GetString());
            Assert.Equal("api", body.RootElement.GetProperty("source").GetString());
            Assert.Equal(["/api"], body.RootElement.GetProperty("paths").EnumerateArray().Select(p => p.GetString()));
            Assert.Equal(["127.0.0.0/8"], body.RootElement.GetProperty("clients").EnumerateArray().Select(p => p.GetString()));
        }

        Assert.Equal("b1", (await lb.GetEchoAsync("/api/x")).Server);

        var path = "/backends/" + Uri.EscapeDataString(address);
        using (var one = JsonDocument.Parse(await lb.Admin.GetStringAsync(path)))
        {
            Assert.Equal(2, one.RootElement.GetProperty("weight").GetInt32());
        }

        using var bare = await lb.Admin.GetAsync($"/backends/127.0.0.1:{backends[0].Port}");
        Assert.Equal(HttpStatusCode.OK, bare.StatusCode);

        using var updated = await lb.Admin.PutAsync(path, Json(new { weight = 5 }));
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        Assert.Equal(5, (await updated.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("weight").GetInt32());

        using var deleted = await lb.Admin.DeleteAsync(path);
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await lb.Admin.GetAsync(path)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await lb.Admin.DeleteAsync(path)).StatusCode);
    }

    [Fact]
    public async Task Post_Duplicate_Is409_AndStaticBackendsAre409()
    {
        await using var lb = await TestBalancer.StartAsync("backends: [ { address: \"http://127.0.0.1:3001\" } ]", output);

        Assert.Equal(HttpStatusCode.Created, (await lb.Admin.PostAsync("/backends", Json(new { address = "http://127.0.0.1:9001" }))).StatusCode);
        using var duplicate = await lb.Admin.PostAsync("/backends", Json(new { address = "127.0.0.1:9001" }));
        using var staticOne = await lb.Admin.DeleteAsync("/backends/127.0.0.1:3001");

        Assert.Equal(HttpStatusCode.Conflict, duplicate.StatusCode);
        Assert.Contains("http://127.0.0.1:9001 is already registered", await duplicate.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, staticOne.StatusCode);
        Assert.Contains("configured in config.yaml", await staticOne.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "expected a JSON object with address, weight, paths, clients, pool")]
    [InlineData("{\"address\":", "the body is not JSON")]
    [InlineData("[]", "the body must be a JSON object")]
    [InlineData("{}", "address is required")]
    [InlineData("{\"address\":\"ftp://x:1\"}", "address: ftp://x:1 is not an http:// or https:// address")]
    [InlineData("{\"address\":\"http://127.0.0.1:1\",\"weight\":-1}", "weight: -1 is not a weight (0-1000000)")]
    [InlineData("{\"address\":\"http://127.0.0.1:1\",\"weight\":\"3\"}", "weight: \\\"3\\\" is not a weight (0-1000000)")]
    [InlineData("{\"address\":\"http://127.0.0.1:1\",\"clients\":[\"1.2.3.4/40\"]}", "clients[0]: 1.2.3.4/40 is not an IP address or CIDR")]
    [InlineData("{\"address\":\"http://127.0.0.1:1\",\"paths\":\"/a\"}", "paths: expected a list of strings")]
    [InlineData("{\"address\":\"http://127.0.0.1:1\",\"pool\":\"nope\"}", "no pool named nope (pools: default)")]
    [InlineData("{\"adress\":\"http://127.0.0.1:1\"}", "unknown field adress (fields: address, weight, paths, clients, pool)")]
    [InlineData("{\"address\":\"http://127.0.0.1:1\",\"address\":\"http://127.0.0.1:2\"}", "address is given twice")]
    [InlineData("{\"address\":\"http://127.0.0.1:1\",\"Weight\":1,\"weight\":2}", "weight is given twice")]
    [InlineData("{\"address\":\"127.0.0.1:0\"}", "address: 127.0.0.1:0 has port 0; give the port the backend listens on")]
    [InlineData("{\"address\":\"http://127.0.0.1:0\"}", "address: http://127.0.0.1:0 has port 0; give the port the backend listens on")]
    public async Task Post_BadInput_Is400WithAMessage_AndChangesNothing(string body, string message)
    {
        await using var lb = await TestBalancer.StartAsync("", output);

        using var response = await lb.Admin.PostAsync("/backends", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(message, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var list = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        Assert.Equal(0, list.RootElement.GetArrayLength());
    }

    [Fact]
    public async Task Post_InvalidUtf8_Is400_NotA500()
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        byte[] body = [.. "{\"address\":\"http://127.0.0.1:1\",\"pool\":\"d"u8, 0xFF, .. "\"}"u8];

        using var response = await lb.Admin.PostAsync("/backends", new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("the body is not valid UTF-8 (at byte 41)", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Post_BodyOverTheLimit_Is413_ChunkedOrNot_AndRegistersNothing(bool chunked)
    {
        await using var lb = await TestBalancer.StartAsync("", output);
        var paths = string.Join(",", Enumerable.Range(0, 100_000).Select(i => $"\"/p{i}\""));
        var body = Encoding.UTF8.GetBytes($"{{\"address\":\"http://127.0.0.1:9\",\"paths\":[{paths}]}}"); // about 1 MB
        HttpContent content = chunked ? new StreamContent(new MemoryStream(body)) : new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json");
        if (chunked)
        {
            content.Headers.ContentLength = null;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, "/backends") { Content = content };
        request.Headers.TransferEncodingChunked = chunked;
        using var response = await lb.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("the body is over 65536 bytes", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var list = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        Assert.Equal(0, list.RootElement.GetArrayLength());
    }

    [Fact]
    public async Task Put_WithNothingToChange_Is400_UnknownBackend_Is404()
    {
        await using var lb = await TestBalancer.StartAsync("", output);

        using var missing = await lb.Admin.PutAsync("/backends/127.0.0.1:1", Json(new { }));
        using var unknown = await lb.Admin.PutAsync("/backends/127.0.0.1:1", Json(new { weight = 1 }));
        using var badAddress = await lb.Admin.GetAsync("/backends/not%20an%20address");

        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("give at least one of weight, paths, clients", await missing.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badAddress.StatusCode);
    }

    [Fact]
    public async Task ControlPlaneAndApiAndConfig_AreAllListed_WithTheirSource()
    {
        await using var lb = await TestBalancer.StartAsync("backends: [ { address: \"http://127.0.0.1:3001\" } ]", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        await control.SendAsync(Registrations.Add(9100));
        await lb.Admin.PostAsync("/backends", Json(new { address = "http://127.0.0.1:9200" }));

        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));

        Assert.Equal(
            [("http://127.0.0.1:3001", "config"), ("http://127.0.0.1:9100", "control-plane"), ("http://127.0.0.1:9200", "api")],
            json.RootElement.EnumerateArray().Select(b => (b.GetProperty("address").GetString(), b.GetProperty("source").GetString())));
    }

    private static StringContent Json(object value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");
}
