using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Balancer.Tests.Kit;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Hosting;

/// <summary>The process as a user starts it: every way start-up can fail ends with a clear message and the right exit code, never a stack trace.</summary>
public sealed class StartupTests(ITestOutputHelper output) : IDisposable
{
    private static readonly string[] FreePorts = ["--port", "0", "--admin-port", "0", "--control-port", "0"];
    private readonly string _directory = Directory.CreateTempSubdirectory("lb-start-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task AStoredRowThatDoesNotParse_ExitsWith1_NamingTheRowAndWhatToDo()
    {
        await File.WriteAllTextAsync(Path.Combine(_directory, "config.yaml"), "proxy: { bind: 127.0.0.1 }");
        await using (var first = BalancerProcess.Start(_directory, FreePorts))
        {
            await first.WaitForListenerAsync("Proxy");
        }

        SqliteFile.Execute(Path.Combine(_directory, "data", "balancer.db"), "INSERT INTO backends VALUES ('http://10.0.0.1:81', 'default', 1, 'Martian', 7, 'x', 'x', NULL)");

        var (code, _, error) = await RunAsync(FreePorts);

        Assert.Equal(1, code);
        Assert.Contains("backends row address='http://10.0.0.1:81': source 'Martian' is not ControlPlane or Api", error, StringComparison.Ordinal);
        Assert.Contains("Correct or delete those rows", error, StringComparison.Ordinal);
        AssertNoStackTrace(error);
    }

    [Fact]
    public async Task APortInUse_ExitsWith1_NamingTheKeyAndTheAddress()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await File.WriteAllTextAsync(Path.Combine(_directory, "config.yaml"), "proxy: { bind: 127.0.0.1 }");

        var (code, _, error) = await RunAsync("--port", "0", "--admin-port", port, "--control-port", "0");

        Assert.Equal(1, code);
        Assert.Contains($"admin.port: cannot listen on 127.0.0.1:{port}: address already in use", error, StringComparison.Ordinal);
        AssertNoStackTrace(error);
    }

    [Fact]
    public async Task ACertificateThatIsNotPem_ExitsWith2_NamingTheKeyAndLine()
    {
        await File.WriteAllTextAsync(Path.Combine(_directory, "lb.crt"), "this is not a certificate");
        await File.WriteAllTextAsync(Path.Combine(_directory, "lb.key"), "nor is this a key");
        await File.WriteAllTextAsync(Path.Combine(_directory, "config.yaml"), """
            proxy: { bind: 127.0.0.1 }
            BalanceHub:
              protocol: HTTPS
              ssl_certificate: ./lb.crt
              ssl_certificate_key: ./lb.key
            """);

        var (code, _, error) = await RunAsync(FreePorts);

        Assert.Equal(2, code);
        Assert.Contains("BalanceHub.ssl_certificate (line 4): ", error, StringComparison.Ordinal);
        Assert.Contains("is not a PEM certificate with a matching PEM private key", error, StringComparison.Ordinal);
        AssertNoStackTrace(error);
    }

    [Theory]
    [InlineData("proxy: { limits: { request-headers-timeout: 0s } }", "proxy.limits.request-headers-timeout")]
    [InlineData("proxy: { limits: { keep-alive-timeout: 0s } }", "proxy.limits.keep-alive-timeout")]
    [InlineData("proxy: { connect-timeout: 0s }", "proxy.connect-timeout")]
    [InlineData("proxy: { limits: { max-request-headers-size: 0 } }", "proxy.limits.max-request-headers-size")]
    [InlineData("proxy: { limits: { max-request-headers-size: 9GB } }", "proxy.limits.max-request-headers-size")]
    [InlineData("proxy: { limits: { max-request-headers-size: 2MB } }", null)]
    [InlineData("proxy: { drain-timeout: 0 }", null)]
    [InlineData("drain: { timeout: 0 }", null)]
    [InlineData("observability: { logs: { format: yaml } }", "observability.logs.format")]
    [InlineData("observability: { logs: { levels: { Balancer: loud } } }", "observability.logs.levels.Balancer")]
    [InlineData("observability: { metrics: maybe }", "observability.metrics")]
    [InlineData("observability: { metrics: false, logs: { format: text, levels: { Yarp: error } } }", null)]
    public async Task ValuesValidationAccepts_StartAndServe_OrAreRejectedWithKeyAndLine(string yaml, string? rejectedKey)
    {
        await File.WriteAllTextAsync(Path.Combine(_directory, "config.yaml"), "admin: { bind: 127.0.0.1 }\n" + yaml.Replace("proxy: {", "proxy: { bind: 127.0.0.1,", StringComparison.Ordinal));
        await using var process = BalancerProcess.Start(_directory, FreePorts);
        if (rejectedKey is null)
        {
            var port = await process.WaitForListenerAsync("Proxy");
            using var client = new HttpClient();
            using var response = await client.GetAsync($"http://127.0.0.1:{port}/");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode); // served: no backend configured
            process.Terminate();
            Assert.Equal(0, await process.WaitForExitAsync());
        }
        else
        {
            Assert.Equal(2, await process.WaitForExitAsync());
            Assert.Contains($"{rejectedKey} (line 2): ", process.StandardError, StringComparison.Ordinal);
        }

        AssertNoStackTrace(process.StandardError);
    }

    [Theory]
    [InlineData("alias expansion")]
    [InlineData("deep nesting")]
    public async Task YamlBombs_AreRefusedWithAClearError_InBoundedTimeAndMemory(string bomb)
    {
        var yaml = bomb == "alias expansion"
            ? "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + string.Concat(Enumerable.Range(1, 12).Select(i => $"{(char)('a' + i)}: &{(char)('a' + i)} [*{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}]\n"))
            : "x: " + new string('[', 100_000) + new string(']', 100_000) + "\n";
        await File.WriteAllTextAsync(Path.Combine(_directory, "config.yaml"), yaml);
        var clock = Stopwatch.StartNew();

        var (code, _, error) = await RunAsync(FreePorts);

        Assert.Equal(2, code);
        Assert.Contains(bomb == "alias expansion" ? "aliases are not supported" : "nested more than 64 levels deep", error, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
        AssertNoStackTrace(error);
    }

    [Fact]
    public async Task AConfigFileOfMegabytes_IsRefusedBeforeItIsRead()
    {
        await File.WriteAllTextAsync(Path.Combine(_directory, "config.yaml"), "# " + new string('x', 5 * 1024 * 1024) + "\n");

        var (code, _, error) = await RunAsync(FreePorts);

        Assert.Equal(2, code);
        Assert.Contains("is more than a configuration can need (at most 4MB)", error, StringComparison.Ordinal);
        AssertNoStackTrace(error);
    }

    [Fact]
    public async Task Version_PrintsTheVersion_AndExitsZero()
    {
        var (code, standardOutput, _) = await RunAsync("--version");

        Assert.Equal(0, code);
        Assert.Matches(@"^\d+\.\d+\.\d+", standardOutput.Trim());
    }

    [Fact]
    public async Task Sighup_ReloadsTheConfiguration_AndDoesNotStopTheProcess()
    {
        await using var backends = await Backends.StartAsync(1);
        var config = Path.Combine(_directory, "config.yaml");
        await File.WriteAllTextAsync(config, "proxy: { bind: 127.0.0.1 }");
        await using var process = BalancerProcess.Start(_directory, FreePorts);
        var port = await process.WaitForListenerAsync("Proxy");
        using var client = new HttpClient();
        using (var before = await client.GetAsync($"http://127.0.0.1:{port}/"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, before.StatusCode); // no backend yet
        }

        await File.WriteAllTextAsync(config, $"proxy: {{ bind: 127.0.0.1 }}\nbackends: [ {{ address: \"{backends[0].Address}\" }} ]\n");
        process.Signal(1); // SIGHUP
        await Eventually.TrueAsync(() => process.StandardOutput.Contains("Configuration reloaded (SIGHUP)", StringComparison.Ordinal), "the reload to be logged");

        Assert.False(process.HasExited);
        await Eventually.TrueAsync(async () =>
        {
            using var response = await client.GetAsync($"http://127.0.0.1:{port}/");
            return response.StatusCode == HttpStatusCode.OK;
        }, "the reloaded backend to answer");
    }

    private async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        await using var process = BalancerProcess.Start(_directory, args);
        var code = await process.WaitForExitAsync();
        output.WriteLine(process.StandardOutput);
        output.WriteLine(process.StandardError);
        return (code, process.StandardOutput, process.StandardError);
    }

    private static void AssertNoStackTrace(string text)
    {
        Assert.DoesNotContain("Unhandled exception", text, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }
}
