using Balancer.Observability;
using Balancer.Tests.Kit;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Observability;

public sealed class AccessLogTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ProxiedRequests_AreWrittenToTheAccessLogUnderAccessLogsPath()
    {
        await using var backends = await Backends.StartAsync(1);
        string path;
        await using (var lb = await TestBalancer.StartAsync("BalanceHub: { access-logs-path: ./logs }\n" + TestBalancer.BackendsYaml(backends.All), output))
        {
            path = Path.Combine(lb.Directory, "logs", AccessLog.FileName);
            using var request = new HttpRequestMessage(HttpMethod.Get, "/shop/cart?id=\"7\"");
            request.Headers.UserAgent.ParseAdd("probe/1.0");
            (await lb.Client.SendAsync(request)).Dispose();
            (await lb.Client.GetAsync("/second")).Dispose();
            await lb.Running.StopAsync(); // flushes
            var lines = await File.ReadAllLinesAsync(path);

            Assert.Equal(2, lines.Length);
            Assert.Matches(
                $@"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z 127\.0\.0\.1 ""GET /shop/cart\?id=%227%22 HTTP/1\.1"" 200 [\d.]+ default {backends[0].Address.ToString().TrimEnd('/')} 0 ""probe/1\.0""$",
                lines[0]);
            Assert.Contains("\"GET /second HTTP/1.1\" 200", lines[1], StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AdminRequests_AreNotInTheAccessLog_AndNoBackendShowsAsDash()
    {
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { access-logs-path: ./logs }", output);
        var path = Path.Combine(lb.Directory, "logs", AccessLog.FileName);

        (await lb.Admin.GetAsync("/health")).Dispose();
        (await lb.Client.GetAsync("/nobody-home")).Dispose();
        await lb.Running.StopAsync();

        var line = Assert.Single(await File.ReadAllLinesAsync(path));
        Assert.Contains("\"GET /nobody-home HTTP/1.1\" 503 ", line, StringComparison.Ordinal);
        Assert.Contains(" default - 0 \"-\"", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFullDisk_IsLoggedOnce_RequestsAreStillServed_AndWritingResumesWhenSpaceReturns()
    {
        using var disk = Tmpfs.Mount("256k");
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync($"BalanceHub: {{ access-logs-path: '{disk.Path}' }}\n" + TestBalancer.BackendsYaml(backends.All), output);
        var path = Path.Combine(disk.Path, AccessLog.FileName);
        (await lb.Client.GetAsync("/before")).Dispose();
        await Eventually.TrueAsync(() => File.Exists(path) && File.ReadAllText(path).Contains("/before", StringComparison.Ordinal), "the first line");
        var filler = disk.Fill();

        for (var i = 0; i < 200; i++)
        {
            using var response = await lb.Client.GetAsync($"/while-full/{i}");
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        }

        await Eventually.TrueAsync(() => lb.Log.Lines.Any(l => l.Contains("Access log: cannot write", StringComparison.Ordinal)), "the failure to be logged");
        File.Delete(filler);
        await Eventually.TrueAsync(
            async () =>
            {
                (await lb.Client.GetAsync("/after")).Dispose();
                return File.ReadAllText(path).Contains("/after", StringComparison.Ordinal);
            },
            "writing to resume");

        Assert.Single(lb.Log.Lines, l => l.Contains("Access log: cannot write", StringComparison.Ordinal));
        Assert.Contains(lb.Log.Lines, l => l.Contains("Access log: writing", StringComparison.Ordinal));
    }
}
