using System.Text.Json;
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
    public async Task JsonFormat_OneObjectPerRequest_WithTheBytesTheClientGot()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { access-logs-path: ./logs }\nobservability: { access-log: { format: json } }\n" + TestBalancer.BackendsYaml(backends.All), output);
        var path = Path.Combine(lb.Directory, "logs", AccessLog.FileName);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/shop?q=\"x\"");
        request.Headers.Referrer = new Uri("https://example.test/from");
        request.Headers.UserAgent.ParseAdd("probe/2.0");
        request.Headers.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01");
        using var response = await lb.Client.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        await lb.Running.StopAsync();

        using var first = JsonDocument.Parse(Assert.Single(await File.ReadAllLinesAsync(path)));
        var o = first.RootElement;
        Assert.Equal("GET", o.GetProperty("method").GetString());
        Assert.Equal("/shop", o.GetProperty("path").GetString());
        Assert.Equal("?q=%22x%22", o.GetProperty("query").GetString());
        Assert.Equal(200, o.GetProperty("status").GetInt32());
        Assert.Equal(body.Length, o.GetProperty("bytes_sent").GetInt64());
        Assert.Equal(backends[0].Origin, o.GetProperty("backend").GetString());
        Assert.Equal("default", o.GetProperty("pool").GetString());
        Assert.Equal("127.0.0.1", o.GetProperty("client").GetString());
        Assert.Equal("https://example.test/from", o.GetProperty("referer").GetString());
        Assert.Equal("probe/2.0", o.GetProperty("user_agent").GetString());
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", o.GetProperty("trace_id").GetString()); // the client's, tracing being off
        Assert.True(o.GetProperty("duration_ms").GetDouble() > 0);
    }

    [Fact]
    public async Task JsonFormat_CountsTheBalancersOwnErrorBody()
    {
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { access-logs-path: ./logs }\nobservability: { access-log: { format: json } }", output);
        using var response = await lb.Client.GetAsync("/nobody-home");
        var body = await response.Content.ReadAsByteArrayAsync();
        await lb.Running.StopAsync();

        using var line = JsonDocument.Parse(Assert.Single(await File.ReadAllLinesAsync(Path.Combine(lb.Directory, "logs", AccessLog.FileName))));
        Assert.Equal(503, line.RootElement.GetProperty("status").GetInt32());
        Assert.NotEmpty(body);
        Assert.Equal(body.Length, line.RootElement.GetProperty("bytes_sent").GetInt64());
        Assert.Equal(JsonValueKind.Null, line.RootElement.GetProperty("backend").ValueKind);
    }

    [Fact]
    public async Task CombinedFormat_IsWhatNginxWrites()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("BalanceHub: { access-logs-path: ./logs }\nobservability: { access-log: { format: combined } }\n" + TestBalancer.BackendsYaml(backends.All), output);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/a/b?c=d");
        request.Headers.UserAgent.ParseAdd("probe/3.0");
        using var response = await lb.Client.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        await lb.Running.StopAsync();

        var line = Assert.Single(await File.ReadAllLinesAsync(Path.Combine(lb.Directory, "logs", AccessLog.FileName)));
        Assert.Matches($@"^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{{2}}/\d{{4}}:\d\d:\d\d:\d\d \+0000\] ""GET /a/b\?c=d HTTP/1\.1"" 200 {body.Length} ""-"" ""probe/3\.0""$", line);
    }

    [Fact]
    public async Task AtMaxSize_TheLogRotates_KeepingOnlyKeepFiles_EachOfWholeLines()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync(
            "BalanceHub: { access-logs-path: ./logs }\nobservability: { access-log: { format: json, max-size: 64KB, keep: 2 } }\n" + TestBalancer.BackendsYaml(backends.All), output);
        var agent = new string('u', 2000);
        for (var i = 0; i < 200; i++) // about 2.2 KB a line: 440 KB, six files' worth
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/r/{i}");
            request.Headers.TryAddWithoutValidation("User-Agent", agent);
            (await lb.Client.SendAsync(request)).Dispose();
        }

        await lb.Running.StopAsync();

        var directory = Path.Combine(lb.Directory, "logs");
        Assert.Equal(["access.log", "access.log.1", "access.log.2"], Directory.GetFiles(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var paths = new List<string>();
        foreach (var file in new[] { "access.log.2", "access.log.1", "access.log" })
        {
            Assert.InRange(new FileInfo(Path.Combine(directory, file)).Length, 1, 64 * 1024);
            paths.AddRange((await File.ReadAllLinesAsync(Path.Combine(directory, file))).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("path").GetString()!));
        }

        // The newest lines, in order, ending with the last request.
        var first = int.Parse(paths[0]["/r/".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(Enumerable.Range(first, 200 - first).Select(i => $"/r/{i}"), paths);
        Assert.InRange(paths.Count, 60, 90);
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
