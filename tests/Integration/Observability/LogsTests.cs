using System.Net;
using System.Text.Json;
using Balancer.Tests.Kit;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Observability;

public sealed class LogsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AFailedTry_IsOneLineWithItsReason_NeverAStackTrace_RetriedOrNot()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync(
            "BalanceHub: { algorithm: round-robin }\nhealth-checks: { enabled: false }\noutlier-detection: { enabled: false }\n" + TestBalancer.BackendsYaml(backends.All), output);
        await backends[1].KillAsync();

        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await lb.Client.GetAsync("/retried")).StatusCode); // the dead one's tries go to the live one
        }

        await backends[0].KillAsync();
        using var failed = await lb.Client.GetAsync("/failed");

        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        var line = Assert.Single(lb.Log.Lines, l => l.Contains("answered 502", StringComparison.Ordinal));
        Assert.Contains("GET /failed", line, StringComparison.Ordinal);
        Assert.Contains("Connection refused", line, StringComparison.Ordinal);
        Assert.DoesNotContain(lb.Log.Lines, l => l.Contains("   at ", StringComparison.Ordinal) || l.Contains("Yarp.ReverseProxy.Forwarder", StringComparison.Ordinal));
    }

    [Fact]
    public async Task JsonFormat_WritesOneJsonObjectPerLine_AndLevelsPerCategoryApply()
    {
        await using var backends = await Backends.StartAsync(1);
        var directory = Directory.CreateTempSubdirectory("lb-json-logs-").FullName;
        // Without the level, the backend's first passing probe is an Information line of Balancer.Health.ActiveHealthChecker.
        await File.WriteAllTextAsync(Path.Combine(directory, "config.yaml"),
            "observability: { logs: { format: json, levels: { Balancer.Health: warning } } }\nproxy: { bind: 127.0.0.1 }\n" + TestBalancer.BackendsYaml(backends.All));
        await using (var process = BalancerProcess.Start(directory, "--port", "0", "--admin-port", "0", "--control-port", "0"))
        {
            await Eventually.TrueAsync(() => process.StandardOutput.Contains("Balancer started", StringComparison.Ordinal), "the started line");
            var lines = process.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.NotEmpty(lines);
            foreach (var line in lines)
            {
                using var json = JsonDocument.Parse(line);
                Assert.True(json.RootElement.TryGetProperty("Timestamp", out _), line);
                Assert.True(json.RootElement.TryGetProperty("Category", out _), line);
            }

            var started = lines.Select(l => JsonDocument.Parse(l).RootElement).First(e => e.GetProperty("Message").GetString()!.StartsWith("Balancer started", StringComparison.Ordinal));
            Assert.Equal("Information", started.GetProperty("LogLevel").GetString());
            Assert.Contains("1 static and 0 registered backend(s)", started.GetProperty("Message").GetString(), StringComparison.Ordinal);
            Assert.DoesNotContain(lines, l => l.Contains("\"Category\":\"Balancer.Health", StringComparison.Ordinal));
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(directory, recursive: true);
    }
}
