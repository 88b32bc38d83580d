// Bytes the balancer allocates per proxied request, with metrics on and off, side by side in one process:
//
//   dotnet run -c Release --project bench/Allocations -- BACKEND_URL [REQUESTS]
//
// BACKEND_URL is a backend in another process (bench/run.sh starts FakeBackends), so that nothing but the balancer
// allocates here; the client is a raw keep-alive socket that reuses one buffer. Each configuration is started alone,
// warmed up, and measured over REQUESTS sequential requests with GC.GetTotalAllocatedBytes(precise: true).
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Balancer.Configuration;
using Balancer.Hosting;
using Microsoft.Extensions.Logging;

var backend = args.Length > 0 ? args[0] : throw new ArgumentException("usage: Allocations BACKEND_URL [REQUESTS]");
var requests = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20_000;
var rows = new List<(string Name, double Bytes)>();
foreach (var (name, extra) in new[] { ("metrics off", "observability: { metrics: false }"), ("metrics on", "observability: { metrics: true }") })
{
    var yaml = $$"""
        BalanceHub: { listen: 0, tcpListener: 0, algorithm: round-robin, access-logs-path: '' }
        admin: { port: 0 }
        proxy: { bind: 127.0.0.1 }
        health-checks: { enabled: false }
        {{extra}}
        backends: [ { address: "{{backend}}" } ]
        """;
    var directory = Directory.CreateTempSubdirectory("alloc-").FullName;
    await File.WriteAllTextAsync(Path.Combine(directory, "config.yaml"), yaml);
    var loaded = ConfigLoader.Load(Path.Combine(directory, "config.yaml"), [], new Dictionary<string, string>());
    await using var lb = await BalancerApp.StartAsync(loaded.Options ?? throw new InvalidOperationException(string.Join("\n", loaded.Errors)), logging => logging.ClearProviders());
    using var client = new RawClient(lb.ProxyEndpoint);
    for (var i = 0; i < 20_000; i++)
    {
        await client.GetAsync();
    }

    GC.Collect();
    var before = GC.GetTotalAllocatedBytes(precise: true);
    for (var i = 0; i < requests; i++)
    {
        await client.GetAsync();
    }

    var bytes = (GC.GetTotalAllocatedBytes(precise: true) - before) / (double)requests;
    rows.Add((name, bytes));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: {bytes:0} bytes per request ({requests} requests)"));
}

Console.WriteLine();
Console.WriteLine("| configuration | bytes allocated per request | vs metrics off |");
Console.WriteLine("|---|---:|---:|");
foreach (var (name, bytes) in rows)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {bytes:0} | {bytes - rows[0].Bytes:+0;-0;0} |"));
}

/// <summary>GET / over one keep-alive connection, reading each response by its Content-Length into one buffer.</summary>
internal sealed class RawClient : IDisposable
{
    private static readonly byte[] Request = Encoding.ASCII.GetBytes("GET /bench?x=1 HTTP/1.1\r\nHost: bench\r\n\r\n");
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[64 * 1024];

    public RawClient(IPEndPoint target)
    {
        _socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket.Connect(target);
    }

    public async ValueTask GetAsync()
    {
        await _socket.SendAsync(Request, SocketFlags.None);
        var filled = 0;
        while (true)
        {
            var read = await _socket.ReceiveAsync(_buffer.AsMemory(filled), SocketFlags.None);
            if (read == 0)
            {
                throw new IOException("the balancer closed the connection");
            }

            filled += read;
            var text = _buffer.AsSpan(0, filled);
            var end = text.IndexOf("\r\n\r\n"u8);
            if (end < 0)
            {
                continue;
            }

            var header = text[..end];
            var at = header.IndexOf("Content-Length: "u8);
            if (at < 0)
            {
                throw new IOException("the response has no Content-Length");
            }

            var rest = header[(at + 16)..];
            var eol = rest.IndexOf("\r\n"u8);
            var length = int.Parse(eol < 0 ? rest : rest[..eol], CultureInfo.InvariantCulture);
            if (filled >= end + 4 + length)
            {
                return;
            }
        }
    }

    public void Dispose() => _socket.Dispose();
}
