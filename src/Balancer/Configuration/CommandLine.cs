using System.CommandLine;

namespace Balancer.Configuration;

/// <summary>The balancer's command line: a few named options, each an override of one configuration key.</summary>
internal sealed class CommandLine
{
    private static readonly Option<string> ConfigOption = new("--config") { Description = "Configuration file (default config.yaml, or LB_CONFIG).", HelpName = "PATH" };
    private static readonly Option<string> AlgorithmOption = new("--algorithm") { Description = "Default algorithm (BalanceHub.algorithm; also LB_ALGORITHM).", HelpName = "NAME" };
    private static readonly Option<string> PortOption = new("--port") { Description = "Proxy port (BalanceHub.listen).", HelpName = "PORT" };
    private static readonly Option<string> AdminPortOption = new("--admin-port") { Description = "Admin API port (admin.port).", HelpName = "PORT" };
    private static readonly Option<string> ControlPortOption = new("--control-port") { Description = "Control-plane port (BalanceHub.tcpListener).", HelpName = "PORT" };
    private static readonly Option<string[]> SetOption = new("--set") { Description = "Override any key, e.g. --set proxy.drain-timeout=5s (repeatable; also LB_proxy__drain-timeout=5s).", HelpName = "KEY=VALUE" };
    private static readonly Option<bool> DebugOption = new("--debug") { Description = "Debug logging (also LB_DEBUG=1)." };
    private static readonly Option<string> PersistenceOption = new("--persistence") { Description = "Session persistence in every pool that does not set its own: none, cookie, header:NAME, ip-hash, consistent-hash (go-load-balancer's flag).", HelpName = "MODE" };
    private static readonly Option<bool> PathRoutingOption = new("--path-routing") { Description = "Accepted for go-load-balancer's users: routes are always on." };

    private static readonly (Option<string> Option, string Key)[] KeyOptions =
    [
        (AlgorithmOption, "BalanceHub:algorithm"),
        (PortOption, "BalanceHub:listen"),
        (AdminPortOption, "admin:port"),
        (ControlPortOption, "BalanceHub:tcpListener"),
    ];

    private CommandLine()
    {
    }

    public string? ConfigPath { get; private init; }
    public bool Debug { get; private init; }

    /// <summary><c>--persistence</c>: the top-level persistence mode, over the file's.</summary>
    public string? Persistence { get; private init; }
    public string? Help { get; private init; }
    public List<(string Key, string Value, string Origin)> Overrides { get; } = [];
    public List<string> Errors { get; } = [];

    public static CommandLine Parse(string[] args)
    {
        var root = new RootCommand("Balancer: an HTTP load balancer on YARP, with a TCP control plane for live registration.")
        {
            ConfigOption, AlgorithmOption, PortOption, AdminPortOption, ControlPortOption, SetOption, DebugOption, PersistenceOption, PathRoutingOption,
        };
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            var failed = new CommandLine();
            failed.Errors.AddRange(result.Errors.Select(e => $"command line: {e.Message}"));
            return failed;
        }

        // --help and --version print their text (System.CommandLine's own) and nothing starts.
        string? help = null;
        if (result.Action is System.CommandLine.Help.HelpAction || root.Options.OfType<VersionOption>().Any(o => result.GetResult(o) is not null))
        {
            using var output = new StringWriter();
            result.Invoke(new InvocationConfiguration { Output = output });
            help = output.ToString();
        }

        var parsed = new CommandLine { ConfigPath = result.GetValue(ConfigOption), Debug = result.GetValue(DebugOption), Persistence = result.GetValue(PersistenceOption), Help = help };
        foreach (var (option, key) in KeyOptions)
        {
            if (result.GetValue(option) is { } value)
            {
                parsed.Overrides.Add((key, value, option.Name));
            }
        }

        foreach (var assignment in result.GetValue(SetOption) ?? [])
        {
            var eq = assignment.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                parsed.Errors.Add($"--set {assignment}: expected KEY=VALUE");
                continue;
            }

            var key = assignment[..eq].Trim().Replace('.', ':');
            parsed.Overrides.Add((key, assignment[(eq + 1)..], "--set"));
        }

        return parsed;
    }
}
