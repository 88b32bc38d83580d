using System.Net;
using System.Net.Http.Json;
using System.Text;
using FakeBackends;

namespace Balancer.Tests.Integration.FakeBackends;

/// <summary>Many fake backends in one process, driven through the control endpoint.</summary>
public sealed class FakeBackendHostTests : IAsyncLifetime
{
    private FakeBackendHost _host = null!;
    private HttpClient _control = null!;

    public async Task InitializeAsync()
    {
        _host = await FakeBackendHost.StartAsync([new FakeBackendOptions { Name = "a" }, new FakeBackendOptions { Name = "b" }], controlPort: 0);
        _control = new HttpClient { BaseAddress = _host.ControlAddress };
    }

    public async Task DisposeAsync()
    {
        _control.Dispose();
        await _host.DisposeAsync();
    }

    [Fact]
    public async Task ListsEveryBackend()
    {
        var all = await _control.GetFromJsonAsync<List<BackendInfo>>("/backends");

        Assert.Equal(["a", "b"], all!.Select(b => b.Name));
        Assert.All(all!, b => Assert.Equal(("running", "healthy"), (b.State, b.Behaviors)));
        Assert.NotEqual(all![0].Address, all[1].Address);
    }

    [Fact]
    public async Task PutBehaviors_ChangesAnswersAtOnce()
    {
        using var put = await _control.PutAsync("/backends/a/behaviors", new StringContent("[fail: 503]", Encoding.UTF8, "application/yaml"));
        using var client = new HttpClient { BaseAddress = _host.Backends[0].Address };

        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal("[fail: 503]", (await put.Content.ReadFromJsonAsync<BackendInfo>())!.Behaviors);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.GetAsync("/")).StatusCode);

        using var healthy = await _control.PutAsync("/backends/a/behaviors", new StringContent("healthy"));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/")).StatusCode);
    }

    [Fact]
    public async Task PutBadBehaviors_400NamingTheProblem_AndNothingChanges()
    {
        using var put = await _control.PutAsync("/backends/b/behaviors", new StringContent("[latency: fast]"));

        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        Assert.Contains("fast is not a duration", await put.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("healthy", (await _control.GetFromJsonAsync<BackendInfo>("/backends/b"))!.Behaviors);
    }

    [Fact]
    public async Task KillThenRestart_ThroughTheEndpoint()
    {
        using var client = new HttpClient { BaseAddress = _host.Backends[1].Address };

        using var killed = await _control.PostAsync("/backends/b/kill", null);
        Assert.Equal("killed", (await killed.Content.ReadFromJsonAsync<BackendInfo>())!.State);
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("/"));

        using var restarted = await _control.PostAsync("/backends/b/restart", null);
        Assert.Equal("running", (await restarted.Content.ReadFromJsonAsync<BackendInfo>())!.State);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/")).StatusCode);
    }

    [Theory]
    [InlineData("/backends/zz/kill", HttpStatusCode.NotFound, "no backend named zz (there are: a, b)")]
    [InlineData("/backends/a/explode", HttpStatusCode.BadRequest, "explode is not an action")]
    [InlineData("/backends/a/register", HttpStatusCode.Conflict, "a was started without --register")]
    public async Task BadCalls_SayWhatIsWrong(string path, HttpStatusCode status, string detail)
    {
        using var response = await _control.PostAsync(path, null);

        Assert.Equal(status, response.StatusCode);
        Assert.Contains(detail, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
