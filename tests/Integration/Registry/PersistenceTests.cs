using System.Text.Json;
using Balancer.Tests.Kit;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;
using static Balancer.Tests.Kit.Registrations;

namespace Balancer.Tests.Integration.Registry;

public sealed class PersistenceTests(ITestOutputHelper output)
{
    [Fact]
    public async Task KilledBalancer_RestartedFromTheSameDatabase_RestoresEveryRegistration()
    {
        await using var backends = await Backends.StartAsync(2);
        var directory = Directory.CreateTempSubdirectory("lb-kill-").FullName;
        await File.WriteAllTextAsync(Path.Combine(directory, "config.yaml"), "proxy: { bind: 127.0.0.1 }\nBalanceHub: { algorithm: round-robin }");
        string[] freePorts = ["--port", "0", "--admin-port", "0", "--control-port", "0"];

        await using (var first = BalancerProcess.Start(directory, freePorts))
        {
            var controlPort = await first.WaitForListenerAsync("Control plane");
            await using var control = await Balancer.ControlPlane.ControlPlaneClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, controlPort));
            Assert.True((await control.SendAsync(Add(backends[0].Port, paths: ["/one"]))).Succeeded);
            Assert.True((await control.SendAsync(Add(backends[1].Port, clients: ["127.0.0.0/8"]))).Succeeded);
            // SIGKILL: no shutdown, no flush; what was acknowledged must already be on disk.
        }

        await using var second = BalancerProcess.Start(directory, freePorts);
        var proxyPort = await second.WaitForListenerAsync("Proxy");
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{proxyPort}") };

        Assert.Contains("\"server\":\"b1\"", await client.GetStringAsync("/one/x"), StringComparison.Ordinal);
        Assert.Contains("\"server\":\"b2\"", await client.GetStringAsync("/other"), StringComparison.Ordinal);
        Assert.Contains("2 registered backend(s)", second.StandardOutput, StringComparison.Ordinal);
        await second.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task DatabaseFailure_AnswersFailure_AndRoutingStaysAsItWas()
    {
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync("", output);
        await using var control = await lb.ConnectControlPlaneAsync();
        Assert.True((await control.SendAsync(Add(backends[0].Port))).Succeeded);
        SqliteFile.Execute(lb.Options.DbPath, "CREATE TRIGGER fail BEFORE INSERT ON backends BEGIN SELECT RAISE(ABORT, 'disk is full'); END;");

        var answer = await control.SendAsync(Add(backends[1].Port));

        Assert.False(answer.Succeeded);
        Assert.Equal("database refused the change, nothing was stored: SQLite Error 19: 'disk is full'.", answer.Message);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("b1", (await lb.GetEchoAsync()).Server);
        }

        Assert.Equal(0, backends[1].RequestCount);
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        Assert.Equal(1, json.RootElement.GetArrayLength());

        SqliteFile.Execute(lb.Options.DbPath, "DROP TRIGGER fail;");
        Assert.True((await control.SendAsync(Add(backends[1].Port))).Succeeded);
    }

    [Fact]
    public async Task UnopenableDatabase_FailsStartWithTheReason()
    {
        var directory = Directory.CreateTempSubdirectory("lb-db-").FullName;
        await File.WriteAllTextAsync(Path.Combine(directory, "not-a-db"), "this is not SQLite, and it is long enough to be read as a header......................");
        await File.WriteAllTextAsync(Path.Combine(directory, "config.yaml"), "BalanceHub: { db-path: ./not-a-db }\nproxy: { bind: 127.0.0.1 }");

        await using var process = BalancerProcess.Start(directory, "--port", "0", "--admin-port", "0", "--control-port", "0");

        Assert.Equal(1, await process.WaitForExitAsync());
        Assert.Contains("cannot open the registration database", process.StandardError, StringComparison.Ordinal);
        Directory.Delete(directory, recursive: true);
    }
}
