using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Testbed.Scenarios;

namespace Balancer.Tests.Kit;

/// <summary>
/// Debian's real <c>prometheus</c> server on a loopback port, scraping one target every second into a throw-away
/// directory; its HTTP API answers queries. The README's test command installs it when it is missing.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    public const string Binary = "/usr/bin/prometheus";

    private readonly Process _process;
    private readonly string _directory;
    private readonly HttpClient _api;

    private PrometheusServer(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        _api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/"), Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>Starts a server that scrapes <paramref name="target"/> (host:port) at <paramref name="path"/>, with a bearer token if given.</summary>
    public static async Task<PrometheusServer> StartAsync(string target, string path = "/metrics", string? token = null)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: run ./test.sh, which installs Debian's prometheus package");
        }

        var directory = Directory.CreateTempSubdirectory("prometheus-").FullName;
        var port = LoopbackPort.Next();
        await File.WriteAllTextAsync(Path.Combine(directory, "prometheus.yml"), $$"""
            global: { scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s }
            scrape_configs:
              - job_name: balancer
                metrics_path: {{path}}
                {{(token is null ? "" : $"authorization: {{ credentials: {token} }}")}}
                static_configs: [{ targets: ["{{target}}"] }]
            """);
        var process = Process.Start(new ProcessStartInfo(Binary)
        {
            ArgumentList =
            {
                $"--config.file={Path.Combine(directory, "prometheus.yml")}",
                $"--storage.tsdb.path={Path.Combine(directory, "data")}",
                $"--web.listen-address=127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}",
                "--log.level=warn",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new PrometheusServer(process, directory, port);
        await Eventually.TrueAsync(server.ReadyAsync, "prometheus to answer /-/ready");
        return server;
    }

    /// <summary>The result vector of an instant query (each element: its labels and value).</summary>
    public async Task<IReadOnlyList<(IReadOnlyDictionary<string, string> Labels, double Value)>> QueryAsync(string promql)
    {
        using var json = JsonDocument.Parse(await _api.GetStringAsync("api/v1/query?query=" + Uri.EscapeDataString(promql)));
        var results = new List<(IReadOnlyDictionary<string, string>, double)>();
        foreach (var item in json.RootElement.GetProperty("data").GetProperty("result").EnumerateArray())
        {
            var labels = item.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "");
            var value = double.Parse(item.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
            results.Add((labels, value));
        }

        return results;
    }

    /// <summary>The health Prometheus gives the target after its last scrape ("up", "down", "unknown") and the error if any.</summary>
    public async Task<(string Health, string Error)> TargetAsync()
    {
        using var json = JsonDocument.Parse(await _api.GetStringAsync("api/v1/targets"));
        var active = json.RootElement.GetProperty("data").GetProperty("activeTargets");
        if (active.GetArrayLength() == 0)
        {
            return ("unknown", "");
        }

        return (active[0].GetProperty("health").GetString()!, active[0].GetProperty("lastError").GetString()!);
    }

    private async Task<bool> ReadyAsync()
    {
        if (_process.HasExited)
        {
            throw new InvalidOperationException($"prometheus exited with {_process.ExitCode}");
        }

        try
        {
            using var response = await _api.GetAsync("-/ready");
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _api.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // Prometheus may still have been closing a file: the temp directory is cleaned up by the system.
        }
    }
}
