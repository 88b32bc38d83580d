using System.Text.Json;
using Balancer.ControlPlane;
using Balancer.Tests.Kit;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;
using static Balancer.Tests.Kit.Registrations;

namespace Balancer.Tests.Integration.Registry;

/// <summary>A full disk, for real: a registration is refused saying so, routing stays as stored, and space coming back is enough.</summary>
public sealed class DiskFullTests(ITestOutputHelper output)
{
    [Fact]
    public async Task DiskFull_IsAnsweredAsSuch_AndTheRegistryRecoversOnceSpaceReturns()
    {
        using var disk = Tmpfs.Mount("1m");
        var directory = Directory.CreateTempSubdirectory("lb-full-").FullName;
        var db = Path.Combine(disk.Path, "balancer.db");
        var lb = await TestBalancer.StartInAsync(directory, $"BalanceHub: {{ db-path: '{db}' }}", output);
        var acknowledged = new List<int> { 9001 };
        try
        {
            await using var control = await lb.ConnectControlPlaneAsync();
            Assert.True((await control.SendAsync(Add(9001))).Succeeded);
            var filler = disk.Fill();

            // Registrations with many paths, until the database cannot grow.
            ControlResponse answer = default;
            for (var port = 9002; port < 9400; port++)
            {
                answer = await control.SendAsync(Add(port, paths: [.. Enumerable.Range(0, 8).Select(i => $"/{port}/path-{i}")]));
                if (!answer.Succeeded)
                {
                    break;
                }

                acknowledged.Add(port);
            }

            Assert.False(answer.Succeeded, "the disk never filled up");
            Assert.Contains("database or disk is full", answer.Message, StringComparison.Ordinal);
            var again = await control.SendAsync(Add(9500));
            Assert.False(again.Succeeded);
            Assert.Contains("database or disk is full", again.Message, StringComparison.Ordinal);
            Assert.Equal(acknowledged.Count, await CountAsync(lb)); // routing holds what was acknowledged, nothing more

            File.Delete(filler);

            var recovered = await control.SendAsync(Add(9501));
            Assert.True(recovered.Succeeded, recovered.Message);
            acknowledged.Add(9501);
            Assert.Equal(acknowledged.Count, await CountAsync(lb));
        }
        finally
        {
            await lb.DisposeAsync();
        }

        // What was acknowledged is what is stored: no more, no less.
        SqliteConnection.ClearAllPools();
        Assert.Equal(acknowledged.Count, SqliteFile.Count(db, "backends"));
    }

    private static async Task<int> CountAsync(TestBalancer lb)
    {
        using var list = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        return list.RootElement.GetArrayLength();
    }
}
