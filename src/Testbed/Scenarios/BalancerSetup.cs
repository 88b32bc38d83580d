using System.Globalization;
using System.Text.RegularExpressions;
using Balancer.Configuration;

namespace Testbed.Scenarios;

/// <summary>
/// A scenario's balancer configuration made concrete: <c>${name}</c> replaced by each backend's address, listeners
/// on the ports the runner chose (loopback), the database and access log in the run's directory. Errors point at
/// scenario lines, not lines of the embedded config.
/// </summary>
internal static partial class BalancerSetup
{
    /// <summary>The placeholders in <paramref name="config"/>, in order of appearance.</summary>
    public static IReadOnlyList<string> Placeholders(string config) => [.. Placeholder().Matches(config).Select(m => m.Groups[1].Value).Distinct(StringComparer.Ordinal)];

    /// <summary><paramref name="config"/> with its placeholders filled from <paramref name="addresses"/>.</summary>
    public static string Fill(string config, IReadOnlyDictionary<string, string> addresses) =>
        Placeholder().Replace(config, m => addresses.TryGetValue(m.Groups[1].Value, out var address) ? address : m.Value);

    /// <param name="addresses">Backend name to address, for every placeholder.</param>
    /// <param name="ports">Proxy, admin and control-plane ports (0 lets the OS choose: for validation only).</param>
    public static ConfigLoadResult Load(Scenario scenario, IReadOnlyDictionary<string, string> addresses, string directory, (int Proxy, int Admin, int ControlPlane) ports)
    {
        var text = Fill(scenario.BalancerConfig, addresses);
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, "config.yaml");
        File.WriteAllText(path, text);
        string[] args =
        [
            "--port", ports.Proxy.ToString(CultureInfo.InvariantCulture),
            "--admin-port", ports.Admin.ToString(CultureInfo.InvariantCulture),
            "--control-port", ports.ControlPlane.ToString(CultureInfo.InvariantCulture),
            "--set", "proxy.bind=127.0.0.1",
            "--set", "admin.bind=127.0.0.1",
            "--set", "control-plane.bind=127.0.0.1",
            "--set", "BalanceHub.db-path=./data/balancer.db",
            "--set", "BalanceHub.access-logs-path=./logs", // the runner reads retries from it
        ];
        var loaded = ConfigLoader.Load(path, args, new Dictionary<string, string>());
        return loaded with { Errors = [.. loaded.Errors.Select(e => "balancer config: " + (scenario.ConfigFirstLine > 0 ? ScenarioLine(e, scenario.ConfigFirstLine) : e))] };
    }

    private static string ScenarioLine(string error, int firstLine) =>
        LineMark().Replace(error, m => $"(scenario line {firstLine - 1 + int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)}");

    [GeneratedRegex(@"\$\{([A-Za-z0-9_.-]+)\}")]
    private static partial Regex Placeholder();

    [GeneratedRegex(@"\(line (\d+)")]
    private static partial Regex LineMark();
}
