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
}
