// Bytes the balancer allocates per proxied request, each feature on the request path against the configuration
// without it, side by side in one process:
//
//   dotnet run -c Release --project bench/Allocations -- BACKEND_URL [REQUESTS]
//
// BACKEND_URL is a backend in another process (bench/run.sh starts FakeBackends), so that nothing but the balancer
// allocates here; the client is the test kit's KeepAliveClient (a raw keep-alive socket that reuses one buffer). Each configuration is started alone,
// warmed up, and measured over REQUESTS sequential requests with GC.GetTotalAllocatedBytes(precise: true), which
// counts every thread's allocations (the access log's writer task too).
using System.Globalization;
using Balancer.Configuration;
using Balancer.Hosting;
using Balancer.Tests.Kit;
using Microsoft.Extensions.Logging;

var backend = args.Length > 0 ? args[0] : throw new ArgumentException("usage: Allocations BACKEND_URL [REQUESTS]");
var requests = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20_000;
var configurations = new (string Name, string Yaml, string? Header, string? Baseline)[]
{
    ("metrics off", "observability: { metrics: false }", null, null),
    ("metrics on", "observability: { metrics: true }", null, "metrics off"),
    ("explain enabled, not asked", "observability: { explain: { enabled: true } }", null, "metrics on"),
    ("explain asked (X-Balancer-Explain: 1)", "observability: { explain: { enabled: true } }", "X-Balancer-Explain: 1", "metrics on"),
    ("access log, balancer format", "observability: { access-log: { format: balancer } }", null, "metrics on"),
    ("access log, combined format", "observability: { access-log: { format: combined } }", null, "metrics on"),
    ("access log, json format", "observability: { access-log: { format: json } }", null, "metrics on"),
    ("rate limit, local", "rate-limit: { rate: 1000000/s, burst: 1000000 }", null, "metrics on"),
    ("a regex route", "routes: [ { pool: default, path: { regex: \"^/bench$\" } } ]", null, "metrics on"),
    ("persistence: cookie, the cookie sent", "persistence: { mode: cookie, key: bench-key-bench-key-bench-key-bench }", CookieHeader, "metrics on"),
    ("persistence: cookie, none sent (each answer sets one)", "persistence: { mode: cookie, key: bench-key-bench-key-bench-key-bench }", null, "metrics on"),
};
var bytesOf = new Dictionary<string, double>();
foreach (var (name, extra, header, _) in configurations)
{
    var directory = Directory.CreateTempSubdirectory("alloc-").FullName;
    var logs = extra.Contains("access-log", StringComparison.Ordinal) ? Path.Combine(directory, "logs") : "";
    var yaml = $$"""
        BalanceHub: { listen: 0, tcpListener: 0, algorithm: round-robin, access-logs-path: '{{logs}}' }
        admin: { port: 0 }
        proxy: { bind: 127.0.0.1, trusted-proxies: [127.0.0.1] }
        health-checks: { enabled: false }
        {{extra}}
        backends: [ { address: "{{backend}}" } ]
        """;
    await File.WriteAllTextAsync(Path.Combine(directory, "config.yaml"), yaml);
    var loaded = ConfigLoader.Load(Path.Combine(directory, "config.yaml"), [], new Dictionary<string, string>());
    await using (var lb = await BalancerApp.StartAsync(loaded.Options ?? throw new InvalidOperationException(string.Join("\n", loaded.Errors)), logging => logging.ClearProviders()))
    {
        // The cookie a first answer sets, sent with every measured request.
        var sent = header;
        if (header == CookieHeader)
        {
            using var first = new HttpClient(new SocketsHttpHandler { UseCookies = false });
            using var answer = await first.GetAsync(new Uri($"http://127.0.0.1:{lb.ProxyEndpoint.Port}/bench?x=1"));
            sent = "Cookie: " + answer.Headers.GetValues("Set-Cookie").Single().Split(';')[0];
        }

        using var client = new KeepAliveClient(lb.ProxyEndpoint, header: sent);
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

        bytesOf[name] = (GC.GetTotalAllocatedBytes(precise: true) - before) / (double)requests;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: {bytesOf[name]:0} bytes per request ({requests} requests)"));
    }

    Directory.Delete(directory, recursive: true);
}

Console.WriteLine();
Console.WriteLine("| configuration | bytes allocated per request | difference |");
Console.WriteLine("|---|---:|---|");
foreach (var (name, _, _, baseline) in configurations)
{
    var difference = baseline is null ? "" : string.Create(CultureInfo.InvariantCulture, $"{bytesOf[name] - bytesOf[baseline]:+0;-0;0} vs {baseline}");
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {bytesOf[name]:0} | {difference} |"));
}

internal static partial class Program
{
    /// <summary>Stands for "the cookie the balancer sets", filled in once it has set one.</summary>
    public const string CookieHeader = "Cookie: (set by the first answer)";
}
