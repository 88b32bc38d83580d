using System.CommandLine;
using System.Net;
using Balancer.Configuration;
using FakeBackends.Behaviors;

namespace FakeBackends;

internal static class Program
{
    /// <summary>Exit codes: 0 after a clean stop, 1 when a backend could not start, 2 for bad options.</summary>
    public static async Task<int> Main(string[] args)
    {
        var port = new Option<int>("--port") { Description = "Port to listen on (0 = any free port); with --count, the first of consecutive ports.", DefaultValueFactory = _ => 3001 };
        var name = new Option<string>("--name") { Description = "Name reported in every response; with --count, names are NAME1, NAME2, ...", DefaultValueFactory = _ => "b1" };
        var count = new Option<int>("--count") { Description = "How many backends to host in this process.", DefaultValueFactory = _ => 1 };
        var bind = new Option<string>("--bind") { Description = "Address to listen on.", DefaultValueFactory = _ => "127.0.0.1" };
        var behavior = new Option<string[]>("--behavior") { Description = $"A behavior, in order (repeatable), e.g. 'latency: 200ms', 'fail: {{ status: 500, rate: 0.1 }}', hang. Names: {string.Join(", ", BehaviorCatalog.Names)}.", HelpName = "YAML" };
        var control = new Option<int?>("--control-port") { Description = "Serve the control endpoint (loopback) on this port: change behaviors, kill, restart.", HelpName = "PORT" };
        var register = new Option<string>("--register") { Description = "Register with a balancer's control plane on start, leave on stop.", HelpName = "HOST:PORT" };
        var paths = new Option<string[]>("--paths") { Description = "With --register: only these path prefixes are routed here.", AllowMultipleArgumentsPerToken = true };
        var clients = new Option<string[]>("--clients") { Description = "With --register: only these client IPs/CIDRs are routed here.", AllowMultipleArgumentsPerToken = true };
        var weight = new Option<int?>("--weight") { Description = "With --register: this backend's weight." };
        var root = new RootCommand("Fake backends: each answers JSON {server, method, path, query, headers} through its behaviors, GET /health, and a WebSocket echo on /ws.")
        {
            port, name, count, bind, behavior, control, register, paths, clients, weight,
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

        var behaviors = new List<IBehavior>();
        foreach (var text in parsed.GetValue(behavior) ?? [])
        {
            var (read, errors) = BehaviorCatalog.Parse(text, BehaviorEnvironment.System);
            behaviors.AddRange(read ?? []);
            problems.AddRange(errors.Select(e => $"--behavior '{text}': {e}"));
        }

        IPEndPoint? balancer = null;
        if (parsed.GetValue(register) is { } target && !IPEndPoint.TryParse(target, out balancer))
        {
            problems.Add($"--register: {target} is not HOST:PORT (an IP address and a port)");
        }

        var pathList = Split<string>(parsed.GetValue(paths), "--paths", ValueParsers.PathPrefix, problems);
        var clientList = Split<IPNetwork>(parsed.GetValue(clients), "--clients", ValueParsers.Network, problems);
        var howMany = parsed.GetValue(count);
        var firstPort = parsed.GetValue(port);
        if (howMany is < 1 or > 1000)
        {
            problems.Add($"--count: {howMany} is not between 1 and 1000");
        }
        else if (firstPort != 0 && firstPort + howMany - 1 > 65535)
        {
            problems.Add($"--port: {firstPort} + {howMany} backends runs past port 65535");
        }

        if (problems.Count > 0)
        {
            foreach (var problem in problems)
            {
                await Console.Error.WriteLineAsync(problem).ConfigureAwait(false);
            }

            return 2;
        }

        var baseName = parsed.GetValue(name)!;
        var all = Enumerable.Range(0, howMany).Select(i => new FakeBackendOptions
        {
            Name = howMany == 1 ? baseName : $"{baseName}{i + 1}",
            Port = firstPort == 0 ? 0 : firstPort + i,
            Bind = bindAddress!,
            Behaviors = behaviors,
            Register = balancer,
            Paths = pathList,
            Clients = clientList,
            Weight = parsed.GetValue(weight),
        }).ToList();

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

        FakeBackendHost host;
        try
        {
            host = await FakeBackendHost.StartAsync(all, parsed.GetValue(control), cancellationToken: stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or System.Net.Sockets.SocketException)
        {
            await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
            return 1;
        }

        await using var running = host;
        foreach (var backend in host.Backends)
        {
            Console.WriteLine($"{backend.Name} listening on {backend.Address} ({BehaviorCatalog.Describe(backend.Options.Behaviors)}){(balancer is null ? "" : $", registered with {balancer}")}");
        }

        if (host.ControlAddress is { } controlAddress)
        {
            Console.WriteLine($"control endpoint on {controlAddress}");
        }

        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        return 0;
    }

    private static List<T> Split<T>(string[]? values, string option, ValueParser<T> parse, List<string> problems)
    {
        var list = new List<T>();
        foreach (var value in (values ?? []).SelectMany(p => p.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (parse(value, out var parsedValue, out var error))
            {
                list.Add(parsedValue);
            }
            else
            {
                problems.Add($"{option}: {error}");
            }
        }

        return list;
    }
}
