using System.CommandLine;
using System.Globalization;
using System.Net;
using Balancer.Configuration;

namespace FakeBackends;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var port = new Option<int>("--port") { Description = "Port to listen on (0 = any free port).", DefaultValueFactory = _ => 3001 };
        var name = new Option<string>("--name") { Description = "Name reported in every response.", DefaultValueFactory = _ => "b1" };
        var bind = new Option<string>("--bind") { Description = "Address to listen on.", DefaultValueFactory = _ => "127.0.0.1" };
        var latency = new Option<string>("--latency") { Description = "Delay before every answer but /health (e.g. 200ms, 2s).", HelpName = "DURATION" };
        var failStatus = new Option<int?>("--fail-status") { Description = "Answer requests (but /health) with this status.", HelpName = "STATUS" };
        var failRate = new Option<double>("--fail-rate") { Description = "Share of requests that fail with --fail-status, 0..1.", DefaultValueFactory = _ => 1.0 };
        var unhealthy = new Option<bool>("--unhealthy") { Description = "Answer /health with 503." };
        var hang = new Option<bool>("--hang") { Description = "Read requests (but /health) and never answer them." };
        var register = new Option<string>("--register") { Description = "Register with a balancer's control plane on start, leave on stop.", HelpName = "HOST:PORT" };
        var paths = new Option<string[]>("--paths") { Description = "With --register: only these path prefixes are routed here.", AllowMultipleArgumentsPerToken = true };
        var clients = new Option<string[]>("--clients") { Description = "With --register: only these client IPs/CIDRs are routed here.", AllowMultipleArgumentsPerToken = true };
        var weight = new Option<int?>("--weight") { Description = "With --register: this backend's weight." };
        var root = new RootCommand("A fake backend: answers JSON {server, method, path, query, headers} and GET /health.")
        {
            port, name, bind, latency, failStatus, failRate, unhealthy, hang, register, paths, clients, weight,
        };

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0 || parsed.Action is not null)
        {
            return parsed.Invoke();
        }

        var problems = new List<string>();
        if (!IPAddress.TryParse(parsed.GetValue(bind), out var bindAddress))
        {
            problems.Add($"--bind: {parsed.GetValue(bind)} is not an IP address");
        }

        var delay = TimeSpan.Zero;
        if (parsed.GetValue(latency) is { } latencyText && !ValueParsers.Duration(latencyText, out delay, out var latencyError))
        {
            problems.Add($"--latency: {latencyError}");
        }

        if (parsed.GetValue(failStatus) is { } status && status is < 100 or > 599)
        {
            problems.Add($"--fail-status: {status} is not an HTTP status");
        }

        if (parsed.GetValue(failRate) is < 0 or > 1)
        {
            problems.Add($"--fail-rate: {parsed.GetValue(failRate).ToString(CultureInfo.InvariantCulture)} is not between 0 and 1");
        }

        IPEndPoint? balancer = null;
        if (parsed.GetValue(register) is { } target && !IPEndPoint.TryParse(target, out balancer))
        {
            problems.Add($"--register: {target} is not HOST:PORT (an IP address and a port)");
        }

        var pathList = new List<string>();
        foreach (var path in (parsed.GetValue(paths) ?? []).SelectMany(p => p.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (ValueParsers.PathPrefix(path, out var prefix, out var error))
            {
                pathList.Add(prefix);
            }
            else
            {
                problems.Add($"--paths: {error}");
            }
        }

        var clientList = new List<IPNetwork>();
        foreach (var client in (parsed.GetValue(clients) ?? []).SelectMany(c => c.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (ValueParsers.Network(client, out var network, out var error))
            {
                clientList.Add(network);
            }
            else
            {
                problems.Add($"--clients: {error}");
            }
        }

        if (problems.Count > 0)
        {
            foreach (var problem in problems)
            {
                await Console.Error.WriteLineAsync(problem).ConfigureAwait(false);
            }

            return 2;
        }

        var options = new FakeBackendOptions
        {
            Name = parsed.GetValue(name)!,
            Port = parsed.GetValue(port),
            Bind = bindAddress!,
            Latency = delay,
            FailStatus = parsed.GetValue(failStatus),
            FailRate = parsed.GetValue(failRate),
            Unhealthy = parsed.GetValue(unhealthy),
            Hang = parsed.GetValue(hang),
            Register = balancer,
            Paths = pathList,
            Clients = clientList,
            Weight = parsed.GetValue(weight),
        };

        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });

        FakeBackend backend;
        try
        {
            backend = await FakeBackend.StartAsync(options, cancellationToken: stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or System.Net.Sockets.SocketException)
        {
            await Console.Error.WriteLineAsync($"{options.Name}: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        await using var running = backend;
        Console.WriteLine($"{options.Name} listening on {backend.Address}{(balancer is null ? "" : $", registered with {balancer}")}");
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        return 0;
    }
}
