// Registration storm, against a balancer in this process (real sockets, a real SQLite file with full fsync):
//   1. warm-up: a smaller storm, registered and removed (JIT, connection pools);
//   2. storm: N registrations over C pipelined control connections; every S-th is a real listener with a path
//      of its own, and the moment its 0xFF is read a GET for that path goes through the proxy, timed until the
//      listener sees it (the machine is saturated by the storm meanwhile);
//   3. paced: with the N still registered, 200 more registrations one at a time, each timed the same way;
//   4. removal of everything, pipelined.
//
//   dotnet run -c Release --project bench/RegistrationStorm -- [registrations=10000] [connections=4] [sample-every=50] [health-checks=on|off]
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Balancer.Configuration;
using Balancer.ControlPlane;
using Balancer.Hosting;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

var total = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10_000;
var connections = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 4;
var sampleEvery = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 50;
var checks = args.Length <= 3 || args[3] != "off"; // active health checks, on by default as in the shipped config
const int Paced = 200;

var directory = Directory.CreateTempSubdirectory("lb-storm-").FullName;
await File.WriteAllTextAsync(Path.Combine(directory, "config.yaml"), "proxy: { bind: 127.0.0.1 }\nBalanceHub: { algorithm: round-robin }\n" + (checks ? "" : "health-checks: { enabled: false }\n"));
var loaded = ConfigLoader.Load(Path.Combine(directory, "config.yaml"), ["--port", "0", "--admin-port", "0", "--control-port", "0"], new Dictionary<string, string>());
var balancer = await BalancerApp.StartAsync(loaded.Options!, logging => logging.SetMinimumLevel(LogLevel.Warning));
using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = balancer.ProxyUri };
var failures = 0;

// Filler ports lie below Linux's ephemeral range (32768+), where the listeners' own ports are.
var warmup = Plan(Math.Min(1000, total), firstPort: 10000, "warm");
await RegisterAsync(warmup);
await Task.WhenAll(warmup.Probes);
await RemoveAsync(warmup);

var storm = Plan(total, firstPort: 20000, "storm");
var registerSeconds = await RegisterAsync(storm);
var stormLatencies = await Task.WhenAll(storm.Probes);
var stored = CountStored();

var paced = new List<double>();
await using (var client = await ControlPlaneClient.ConnectAsync(balancer.ControlPlaneEndpoint))
{
    for (var i = 0; i < Paced; i++)
    {
        using var sink = Sink.Start();
        var answer = await client.SendAsync(new RegistrationRequest(ControlAction.Add, sink.Port, [$"/paced/{i}"], [], null));
        paced.Add(await ProbeAsync(sink, $"/paced/{i}", Stopwatch.GetTimestamp(), answer.Succeeded));
        await client.SendAsync(new RegistrationRequest(ControlAction.Remove, sink.Port, [], [], null));
    }
}

var removeSeconds = await RemoveAsync(storm);

var c = CultureInfo.InvariantCulture;
Console.WriteLine(string.Create(c, $"""
    {total} registrations over {connections} pipelined connections after a {warmup.Requests.Length}-registration warm-up; {Environment.ProcessorCount} cores; SQLite synchronous=FULL; active health checks {(checks ? "on" : "off")}

    | measure | value |
    |---|---:|
    | registrations/s, each answered 0xFF only once stored and live | {total / registerSeconds:F0} |
    | removals/s | {total / removeSeconds:F0} |
    | rows in SQLite after the storm | {stored} |
    | failed answers | {failures} |
    | 0xFF to traffic at the backend, during the storm ({stormLatencies.Length} samples): p50 / p99 / max ms | {P(stormLatencies, 0.50):F2} / {P(stormLatencies, 0.99):F2} / {P(stormLatencies, 1):F2} |
    | 0xFF to traffic at the backend, one at a time beside {total} registered ({paced.Count} samples): p50 / p99 / max ms | {P(paced, 0.50):F2} / {P(paced, 0.99):F2} / {P(paced, 1):F2} |
    """));

await balancer.DisposeAsync();
SqliteConnection.ClearAllPools();
Directory.Delete(directory, recursive: true);
return failures == 0 && stored == total ? 0 : 1;

static double P(IReadOnlyCollection<double> values, double p)
{
    var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray(); // NaN: a sample that failed, counted in "failed answers"
    return sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}

// Registration i: port firstPort + i on 127.0.0.1; every sampleEvery-th is a real listener with a path of its own.
Storm Plan(int count, int firstPort, string name)
{
    var requests = new RegistrationRequest[count];
    var sinks = new Sink?[count];
    for (var i = 0; i < count; i++)
    {
        if (i % sampleEvery == sampleEvery - 1)
        {
            sinks[i] = Sink.Start();
            requests[i] = new RegistrationRequest(ControlAction.Add, sinks[i]!.Port, [$"/{name}/{i}"], [], null);
        }
        else
        {
            requests[i] = new RegistrationRequest(ControlAction.Add, firstPort + i, [], [], null);
        }
    }

    return new Storm(name, requests, sinks, []);
}

async Task<double> RegisterAsync(Storm storm)
{
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, connections).Select(async connection =>
    {
        await using var client = await ControlPlaneClient.ConnectAsync(balancer.ControlPlaneEndpoint);
        var mine = Enumerable.Range(0, storm.Requests.Length).Where(i => i % connections == connection).ToArray();
        var writer = Task.Run(async () =>
        {
            foreach (var chunk in mine.Chunk(64))
            {
                await client.WriteAsync(chunk.SelectMany(i => ControlPlaneCodec.EncodeRequest(storm.Requests[i])).ToArray());
            }
        });
        foreach (var i in mine)
        {
            var answer = await client.ReadResponseAsync() ?? throw new IOException("connection closed");
            if (!answer.Succeeded)
            {
                Interlocked.Increment(ref failures);
                await Console.Error.WriteLineAsync($"registration refused: {answer.Message}");
            }
            else if (storm.Sinks[i] is { } sink)
            {
                var probe = ProbeAsync(sink, $"/{storm.Name}/{i}", Stopwatch.GetTimestamp(), true);
                lock (storm.Probes)
                {
                    storm.Probes.Add(probe);
                }
            }
        }

        await writer;
    }));
    return clock.Elapsed.TotalSeconds;
}

async Task<double> RemoveAsync(Storm storm)
{
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, connections).Select(async connection =>
    {
        await using var client = await ControlPlaneClient.ConnectAsync(balancer.ControlPlaneEndpoint);
        var mine = Enumerable.Range(0, storm.Requests.Length).Where(i => i % connections == connection).ToArray();
        var writer = client.WriteAsync(mine.SelectMany(i => ControlPlaneCodec.EncodeRequest(storm.Requests[i] with { Action = ControlAction.Remove, Paths = [] })).ToArray());
        foreach (var _ in mine)
        {
            var answer = await client.ReadResponseAsync() ?? throw new IOException("connection closed");
            if (!answer.Succeeded)
            {
                Interlocked.Increment(ref failures);
                await Console.Error.WriteLineAsync($"removal refused: {answer.Message}");
            }
        }

        await writer;
    }));
    foreach (var sink in storm.Sinks)
    {
        sink?.Dispose();
    }

    return clock.Elapsed.TotalSeconds;
}

// GET the path only this sink serves, right after its 0xFF; the time until the sink sees the request.
async Task<double> ProbeAsync(Sink sink, string path, long answered, bool registered)
{
    if (!registered)
    {
        Interlocked.Increment(ref failures);
        return double.NaN;
    }

    using var response = await http.GetAsync(path);
    if (!response.IsSuccessStatusCode)
    {
        Interlocked.Increment(ref failures);
        await Console.Error.WriteLineAsync($"GET {path} after 0xFF: {(int)response.StatusCode}");
        return double.NaN; // it never reached the sink
    }

    return Stopwatch.GetElapsedTime(answered, await sink.FirstArrival).TotalMilliseconds;
}

long CountStored()
{
    using var db = new SqliteConnection($"Data Source={loaded.Options!.DbPath};Pooling=False");
    db.Open();
    using var query = db.CreateCommand();
    query.CommandText = "SELECT COUNT(*) FROM backends";
    return (long)query.ExecuteScalar()!;
}

internal sealed record Storm(string Name, RegistrationRequest[] Requests, Sink?[] Sinks, List<Task<double>> Probes);

/// <summary>A listener that answers any HTTP request with 200 and remembers when the first one arrived.</summary>
internal sealed class Sink : IDisposable
{
    private static readonly byte[] Ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"u8.ToArray();
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly TaskCompletionSource<long> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private Sink()
    {
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public Task<long> FirstArrival => _first.Task;

    public static Sink Start()
    {
        var sink = new Sink();
        sink._listener.Start();
        _ = sink.AcceptAsync();
        return sink;
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                using var client = await _listener.AcceptTcpClientAsync();
                var buffer = new byte[4096];
                if (await client.GetStream().ReadAsync(buffer) == 0)
                {
                    continue; // a health check's TCP connect, not a request
                }

                _first.TrySetResult(Stopwatch.GetTimestamp());
                await client.GetStream().WriteAsync(Ok);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
        }
    }

    public void Dispose() => _listener.Stop();
}
