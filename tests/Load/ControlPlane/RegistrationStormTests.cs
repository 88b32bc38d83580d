using System.Net;
using System.Text.Json;
using Balancer.ControlPlane;
using Balancer.Tests.Kit;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Balancer.Tests.Load.ControlPlane;

/// <summary>
/// A bounded registration storm over pipelined connections from several source addresses, checked for what
/// matters: every packet answered 0xFF, every registration stored and listed, and all of it gone after removal.
/// Speed is the business of bench/RegistrationStorm, not of this test.
/// </summary>
public sealed class RegistrationStormTests(ITestOutputHelper output)
{
    private const int Ports = 400;
    private static readonly IPAddress[] Sources = [IPAddress.Parse("127.0.0.1"), IPAddress.Parse("127.0.0.2"), IPAddress.Parse("127.0.0.3"), IPAddress.Parse("127.0.0.4")];

    [Fact]
    public async Task PipelinedStorm_FromFourSources_EveryRegistrationStoredListedAndRemoved()
    {
        await using var lb = await TestBalancer.StartAsync("Original-Server: { allow: [127.0.0.0/8] }", output);

        // Every seventh backend registers, then at once adds a path, as a backend announcing its routes does:
        // back-to-back changes to one address, which tend to land in one batch.
        var added = await StormAsync(lb, source => Enumerable.Range(0, Ports).SelectMany(i => i % 7 == 0
            ? new[] { Registrations.Add(30000 + i), Registrations.Add(30000 + i, paths: [$"/p/{i}"]) }
            : [Registrations.Add(30000 + i)]));

        Assert.All(added, a => Assert.True(a.Succeeded, a.Message));
        var expected = Sources.SelectMany(s => Enumerable.Range(30000, Ports).Select(p => $"http://{s}:{p}")).Order().ToList();
        Assert.Equal(expected, await ListedAsync(lb));
        Assert.Equal(expected.Count, Count(lb.Options.DbPath, "SELECT COUNT(*) FROM backends"));
        Assert.Equal(Sources.Length * Enumerable.Range(0, Ports).Count(i => i % 7 == 0), Count(lb.Options.DbPath, "SELECT COUNT(*) FROM backend_paths"));

        var removed = await StormAsync(lb, source => Enumerable.Range(30000, Ports).Select(p => Registrations.Remove(p)));

        Assert.All(removed, r => Assert.True(r.Succeeded, r.Message));
        Assert.Empty(await ListedAsync(lb));
        Assert.Equal(0, Count(lb.Options.DbPath, "SELECT COUNT(*) FROM backends"));
        Assert.Equal(0, Count(lb.Options.DbPath, "SELECT COUNT(*) FROM backend_paths"));
    }

    private static async Task<List<ControlResponse>> StormAsync(TestBalancer lb, Func<IPAddress, IEnumerable<RegistrationRequest>> requests)
    {
        var answers = await Task.WhenAll(Sources.Select(async source =>
        {
            await using var client = await lb.ConnectControlPlaneAsync(source);
            var batch = requests(source).ToList();
            var writing = client.WriteAsync(batch.SelectMany(ControlPlaneCodec.EncodeRequest).ToArray());
            var mine = new List<ControlResponse>();
            foreach (var _ in batch)
            {
                mine.Add(await client.ReadResponseAsync() ?? throw new IOException("closed"));
            }

            await writing;
            return mine;
        }));
        return [.. answers.SelectMany(a => a)];
    }

    private static async Task<List<string>> ListedAsync(TestBalancer lb)
    {
        using var json = JsonDocument.Parse(await lb.Admin.GetStringAsync("/backends"));
        return [.. json.RootElement.EnumerateArray().Select(b => b.GetProperty("address").GetString()!).Order()];
    }

    private static long Count(string database, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={database};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)command.ExecuteScalar()!;
    }
}
