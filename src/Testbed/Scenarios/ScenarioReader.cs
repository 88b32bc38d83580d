using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Balancer.Configuration;
using FakeBackends.Behaviors;
using Testbed.Load;

namespace Testbed.Scenarios;

/// <summary>
/// Reads a scenario file: every problem at once, each with its key path and line, before anything is started.
/// The embedded balancer configuration is checked as the balancer itself would check it.
/// </summary>
public static partial class ScenarioReader
{
    private static readonly Dictionary<string, LoadModel> Models = new() { ["open"] = LoadModel.Open, ["closed"] = LoadModel.Closed };
    private static readonly Dictionary<string, Registration> Registrations = new() { ["none"] = Registration.None, ["control-plane"] = Registration.ControlPlane };
    private static readonly Dictionary<string, BackendAction> BackendActions = Enum.GetValues<BackendAction>().ToDictionary(a => a.ToString().ToLowerInvariant());
    private static readonly string[] OtherActions = ["set-behavior", "set-weight", "restart-balancer", "reload", "stop-redis", "start-redis"];
    private static readonly Dictionary<string, string> CacheResults = new(StringComparer.OrdinalIgnoreCase) { ["HIT"] = "HIT", ["MISS"] = "MISS", ["BYPASS"] = "BYPASS" };

    private static readonly string[] Filters = ["from", "to", "client", "path", "method", "status-is"];
    private static readonly string[] Kinds = ["error-rate", "no-requests-to", "share", "latency", "status", "sticky", "moved-clients", "requests", "retries", "detected-within", "recovered-within", "cache"];
    private static readonly Dictionary<string, double> Percentiles = new() { ["p50"] = 50, ["p90"] = 90, ["p99"] = 99, ["p99.9"] = 99.9, ["max"] = 100 };

    public static (Scenario? Scenario, IReadOnlyList<string> Errors) ReadFile(string path)
    {
        var fullPath = System.IO.Path.GetFullPath(path);
        if (!File.Exists(fullPath))
        {
            return (null, [$"{path}: file not found"]);
        }

        return YamlConfigProvider.ReadFile(fullPath, path, out var tooLarge) is { } text ? Read(text, fullPath) : (null, [tooLarge]);
    }

    public static (Scenario? Scenario, IReadOnlyList<string> Errors) Read(string yaml, string path)
    {
        var fileName = System.IO.Path.GetFileName(path);
        var teaches = string.Join(' ', yaml.Split('\n').TakeWhile(l => l.TrimStart().StartsWith('#')).Select(l => l.Trim().TrimStart('#').Trim())).Trim();
        var (scenario, errors) = YamlSchema.Read(yaml, fileName, root => ReadScenario(root, yaml, path, teaches));
        var all = errors.ToList();
        if (teaches.Length == 0)
        {
            all.Insert(0, "(line 1): a scenario file starts with a comment saying what it teaches");
        }

        if (scenario is not null && all.Count == 0)
        {
            all.AddRange(CheckBalancerConfig(scenario));
        }

        return all.Count > 0 ? (null, [.. all.Select(e => $"{fileName}: {e}")]) : (scenario, []);
    }

    private static Scenario ReadScenario(ConfigSection root, string yaml, string path, string teaches)
    {
        var name = root.String("name") is { Length: > 0 } given ? given.Trim() : System.IO.Path.GetFileNameWithoutExtension(path);
        var (config, firstLine) = ReadBalancer(root.Section("balancer"), yaml, path);
        var backends = ReadBackends(root);
        var names = backends.Select(b => b.Name).ToList();
        var load = ReadLoad(root.Section("load"));
        var redis = root.Value("redis", false, ValueParsers.Bool);
        var timeline = ReadTimeline(root, names, load.Duration, redis);
        var expectations = ReadExpectations(root, names);
        // The tag (a query parameter joining the access log) only when an expectation reads retries: it makes every
        // URL unique, which a response cache would see.
        load = load with { TagRequests = expectations.Any(e => e is RetriesExpectation) };
        if (expectations.Count == 0)
        {
            root.Error("expect", "a scenario needs at least one expectation: what should clients have seen?");
        }

        foreach (var placeholder in BalancerSetup.Placeholders(config))
        {
            var backend = backends.FirstOrDefault(b => b.Name == placeholder);
            if (placeholder == Scenario.RedisPort)
            {
                if (!redis)
                {
                    root.Section("balancer").Error("config", $"${{{placeholder}}}: this scenario has no redis-server: add redis: true at the top level");
                }
            }
            else if (backend is null)
            {
                root.Section("balancer").Error("config", $"${{{placeholder}}} names no backend (backends: {TimelineEvent.Names(names)})");
            }
            else if (!backend.Start)
            {
                root.Section("balancer").Error("config", $"${{{placeholder}}}: {placeholder} has start: false, so it has no address when the balancer starts");
            }
        }

        return new Scenario(name, teaches, path, config, firstLine, backends, load, timeline, expectations, redis);
    }

    private static (string Config, int FirstLine) ReadBalancer(ConfigSection balancer, string yaml, string path)
    {
        var inline = balancer.String("config");
        var file = balancer.String("file");
        if (inline is not null && file is not null)
        {
            balancer.Error("give config (inline) or file, not both");
        }

        if (file is { Length: > 0 })
        {
            var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!, file));
            if (!File.Exists(full))
            {
                balancer.Error("file", $"{file}: file not found (relative to the scenario file)");
                return ("", 0);
            }

            if (YamlConfigProvider.ReadFile(full, file, out var tooLarge) is not { } text)
            {
                balancer.Error("file", tooLarge);
                return ("", 0);
            }

            return (text, 0);
        }

        var lines = yaml.Split('\n');
        var at = Array.FindIndex(lines, l => ConfigBlock().IsMatch(l));
        return (inline ?? "", at < 0 ? 0 : at + 2);
    }

    private static List<BackendSpec> ReadBackends(ConfigSection root)
    {
        var backends = new List<BackendSpec>();
        var items = root.Items("backends");
        if (items.Count == 0)
        {
            root.Error("backends", "a scenario needs at least one backend");
        }

        foreach (var item in items)
        {
            var name = item.Value("name", "", Name);
            if (name.Length == 0)
            {
                item.Error("name", "every backend needs a name");
            }

            var count = item.Value("count", 0, ValueParsers.Int(1, 1000, "a number of backends"));
            var behaviors = BehaviorCatalog.ReadList(item, "behaviors", BehaviorEnvironment.System);
            var register = item.Value("register", Registration.None, ValueParsers.OneOf(Registrations));
            var start = item.Value("start", true, ValueParsers.Bool);
            var paths = item.Values<string>("paths", ValueParsers.PathPrefix) ?? [];
            var clients = item.Values<IPNetwork>("clients", ValueParsers.Network) ?? [];
            var weight = item.Value<int?>("weight", null, (string raw, out int? value, out string error) =>
            {
                var ok = ValueParsers.Int(0, 1_000_000, "a weight")(raw, out var parsed, out error);
                value = parsed;
                return ok;
            });
            if (register == Registration.None && (paths.Count > 0 || clients.Count > 0 || weight is not null))
            {
                item.Error("register", "paths, clients and weight are sent when registering: set register: control-plane (or put them in the balancer's config)");
            }

            foreach (var each in count == 0 ? [name] : Enumerable.Range(1, count).Select(i => $"{name}{i}"))
            {
                if (backends.Any(b => b.Name == each))
                {
                    item.Error("name", $"{each} is declared twice");
                    continue;
                }

                backends.Add(new BackendSpec(each, behaviors, register, start, paths, clients, weight));
            }
        }

        return backends;
    }

    private static LoadOptions ReadLoad(ConfigSection load)
    {
        if (!load.Reader.Root.Has("load"))
        {
            load.Reader.Root.Error("load", "a scenario needs load: how many requests, for how long");
        }

        var model = load.Value("model", LoadModel.Open, ValueParsers.OneOf(Models));
        var options = new LoadOptions
        {
            Target = new Uri("http://127.0.0.1/"), // the runner points it at the balancer
            Model = model,
            Rate = load.Value("rate", 100.0, ValueParsers.Number(0.1, 100_000, "a rate in requests per second")),
            Concurrency = load.Value("concurrency", 8, ValueParsers.Int(1, 10_000, "a number of clients")),
            Duration = load.Value("duration", TimeSpan.FromSeconds(10), ValueParsers.Duration),
            Warmup = load.Value("warmup", TimeSpan.Zero, ValueParsers.Duration),
            Timeout = load.Value("timeout", TimeSpan.FromSeconds(10), ValueParsers.Duration),
            MaxRequests = load.Value("max-requests", 1_000_000, ValueParsers.Int(1, 10_000_000, "a number of requests")),
            Paths = ReadPaths(load),
            Methods = load.Values<string>("methods", ValueParsers.Method) ?? ["GET"],
            Clients = ReadClients(load),
            Cookies = load.Value("cookies", false, ValueParsers.Bool),
        };
        foreach (var problem in options.Validate())
        {
            var cut = problem.IndexOf(':', StringComparison.Ordinal);
            load.Error(problem[..cut], problem[(cut + 2)..]);
        }

        return options;
    }

    private static List<WeightedPath> ReadPaths(ConfigSection load)
    {
        if (!load.Has("paths"))
        {
            return [new("/")];
        }

        var paths = new List<WeightedPath>();
        foreach (var element in load.Elements("paths"))
        {
            if (element.OwnValue is { } plain)
            {
                if (plain.StartsWith('/'))
                {
                    paths.Add(new WeightedPath(plain.Trim()));
                }
                else
                {
                    element.Error($"{plain} must start with /");
                }
            }
            else
            {
                var path = element.String("path") ?? "";
                if (!path.StartsWith('/'))
                {
                    element.Error("path", $"{path} must start with / (items are a path, or {{ path, weight }})");
                }

                paths.Add(new WeightedPath(path, element.Value("weight", 1, ValueParsers.Int(1, 10_000, "a weight"))));
            }
        }

        return paths;
    }

    /// <summary>Addresses, or ranges of them (<c>127.0.0.2-127.0.0.40</c>).</summary>
    private static List<IPAddress> ReadClients(ConfigSection load)
    {
        var clients = new List<IPAddress>();
        foreach (var text in load.Values<string>("clients", ValueParsers.Text) ?? ["127.0.0.1"])
        {
            var dash = text.IndexOf('-', StringComparison.Ordinal);
            if (dash < 0 && IPAddress.TryParse(text, out var single))
            {
                clients.Add(single);
            }
            else if (dash > 0 && IPAddress.TryParse(text[..dash], out var first) && IPAddress.TryParse(text[(dash + 1)..], out var last)
                && first.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && last.AddressFamily == first.AddressFamily)
            {
                var from = ToNumber(first);
                var to = ToNumber(last);
                if (to < from || to - from >= 1024)
                {
                    load.Error("clients", $"{text}: a range runs upwards over at most 1024 addresses");
                    continue;
                }

                for (var n = from; n <= to; n++)
                {
                    clients.Add(new IPAddress([(byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n]));
                }
            }
            else
            {
                load.Error("clients", $"{text} is not an IP address or a range of IPv4 addresses (127.0.0.2-127.0.0.9)");
            }
        }

        return clients;
    }

    private static uint ToNumber(IPAddress address)
    {
        var bytes = address.GetAddressBytes();
        return ((uint)bytes[0] << 24) | ((uint)bytes[1] << 16) | ((uint)bytes[2] << 8) | bytes[3];
    }

    private static List<TimelineEvent> ReadTimeline(ConfigSection root, IReadOnlyList<string> names, TimeSpan duration, bool redis)
    {
        var events = new List<TimelineEvent>();
        foreach (var item in root.Items("timeline"))
        {
            var at = item.Value("at", TimeSpan.MinValue, ValueParsers.Duration);
            if (at == TimeSpan.MinValue)
            {
                item.Error("at", "every event needs a time: at: 2s (from the start of the measured load)");
            }
            else if (at > duration)
            {
                item.Error("at", $"{Window.Seconds(at)} is after the load ends ({Window.Seconds(duration)})");
            }

            foreach (var key in BackendActions.Keys.Concat(OtherActions))
            {
                item.Has(key);
            }

            var actions = item.Keys.Where(k => !k.Equals("at", StringComparison.OrdinalIgnoreCase) && (BackendActions.ContainsKey(k.ToLowerInvariant()) || OtherActions.Contains(k.ToLowerInvariant()))).ToList();
            if (actions.Count != 1)
            {
                if (actions.Count > 1 || item.Keys.All(k => k.Equals("at", StringComparison.OrdinalIgnoreCase)))
                {
                    item.Error(actions.Count > 1
                        ? $"one action per event, found {string.Join(" and ", actions)}: give each its own event"
                        : $"names no action (one of {string.Join(", ", BackendActions.Keys.Concat(OtherActions))})");
                }

                continue;
            }

            var action = actions[0].ToLowerInvariant();
            TimelineEvent? read = action switch
            {
                _ when BackendActions.TryGetValue(action, out var lifecycle) => new BackendEvent(at, lifecycle, Names(item, action, names)),
                "set-behavior" => new SetBehaviorEvent(at, Names(item.Section(action), "backend", names), BehaviorCatalog.ReadList(item.Section(action), "behaviors", BehaviorEnvironment.System)),
                "set-weight" => new SetWeightEvent(at, Names(item.Section(action), "backend", names), item.Section(action).Value("weight", 1, ValueParsers.Int(0, 1_000_000, "a weight"))),
                "restart-balancer" => new RestartBalancerEvent(at),
                "reload" => ReadReload(item.Section(action), at),
                _ when !redis => Refuse(item, action),
                _ => new RedisEvent(at, action == "start-redis"),
            };
            if (read is not null)
            {
                events.Add(read);
            }
        }

        return [.. events.OrderBy(e => e.At)];
    }

    /// <summary><c>reload: { config: | ... }</c>: the whole new config.yaml, with the same placeholders as <c>balancer.config</c>.</summary>
    private static ReloadEvent? ReadReload(ConfigSection reload, TimeSpan at)
    {
        var config = reload.String("config");
        if (string.IsNullOrWhiteSpace(config))
        {
            reload.Error("config", "is required: the whole new config.yaml, as balancer.config gives the first");
            return null;
        }

        return new ReloadEvent(at, config);
    }

    private static TimelineEvent? Refuse(ConfigSection item, string action)
    {
        item.Error(action, "this scenario has no redis-server: add redis: true at the top level");
        return null;
    }

    /// <summary>Backend names: one, a list, or a prefix with <c>*</c> (<c>s*</c>), each checked against the declared ones.</summary>
    private static List<string> Names(ConfigSection at, string key, IReadOnlyList<string> declared)
    {
        var given = at.IsNested(key) ? at.Values<string>(key, ValueParsers.Text) ?? [] : [at.String(key) ?? ""];
        var resolved = new List<string>();
        foreach (var name in given)
        {
            var matches = name.EndsWith('*') ? declared.Where(d => d.StartsWith(name[..^1], StringComparison.Ordinal)).ToList() : declared.Where(d => d == name).ToList();
            if (matches.Count == 0)
            {
                at.Error(key, $"{(name.Length == 0 ? "a backend name is needed" : $"{name} matches no backend")} (backends: {TimelineEvent.Names(declared)})");
            }

            resolved.AddRange(matches.Except(resolved));
        }

        return resolved;
    }

    private static List<Expectation> ReadExpectations(ConfigSection root, IReadOnlyList<string> names)
    {
        var expectations = new List<Expectation>();
        foreach (var item in root.Items("expect"))
        {
            foreach (var known in Kinds)
            {
                item.Has(known);
            }

            var window = new Window(
                item.Has("from") ? item.Value("from", TimeSpan.Zero, ValueParsers.Duration) : null,
                item.Has("to") ? item.Value("to", TimeSpan.Zero, ValueParsers.Duration) : null,
                item.Has("client") ? item.Value("client", new IPNetwork(IPAddress.Loopback, 32), ValueParsers.Network) : null,
                item.Has("path") ? item.Value("path", "/", ValueParsers.PathPrefix) : null,
                item.Has("method") ? item.Value("method", "GET", ValueParsers.Method) : null,
                item.Has("status-is") ? item.Value("status-is", 200, ValueParsers.Int(0, 599, "an HTTP status (0: no answer)")) : null);
            if (window is { From: { } from, To: { } to } && to <= from)
            {
                item.Error("to", $"is not after from ({Window.Seconds(from)})");
            }

            var kinds = item.Keys.Where(k => Kinds.Contains(k.ToLowerInvariant())).ToList();
            if (kinds.Count != 1)
            {
                if (kinds.Count > 1 || item.Keys.All(k => Filters.Contains(k.ToLowerInvariant())))
                {
                    item.Error(kinds.Count > 1
                        ? $"one expectation per item, found {string.Join(" and ", kinds)}: give each its own item"
                        : $"names no expectation (one of {string.Join(", ", Kinds)})");
                }

                continue;
            }

            if (ReadExpectation(item, kinds[0].ToLowerInvariant(), window, names) is { } expectation)
            {
                expectations.Add(expectation);
            }
        }

        return expectations;
    }

    private static Expectation? ReadExpectation(ConfigSection item, string kind, Window where, IReadOnlyList<string> names)
    {
        var spec = item.IsNested(kind) ? item.Section(kind) : default;
        var nested = item.IsNested(kind);
        double Fraction(string key, double fallback) => nested ? spec.Value(key, fallback, ValueParsers.Fraction) : item.Value(kind, fallback, ValueParsers.Fraction);
        string Backend(string key) => Names(nested ? spec : item, nested ? key : kind, names) is [var one] ? one : "";
        switch (kind)
        {
            case "error-rate":
                return new ErrorRateExpectation(where, Fraction("max", 0));
            case "no-requests-to":
                return new NoRequestsToExpectation(where, Backend("backend"));
            case "share":
                if (!nested || (!spec.Has("min") && !spec.Has("max")))
                {
                    item.Error(kind, "give the backend and bounds: share: { backend: b1, min: 0.3, max: 0.4 }");
                    return null;
                }

                return new ShareExpectation(where, Backend("backend"),
                    spec.Has("min") ? spec.Value("min", 0.0, ValueParsers.Fraction) : null,
                    spec.Has("max") ? spec.Value("max", 1.0, ValueParsers.Fraction) : null);
            case "latency":
                if (!nested)
                {
                    item.Error(kind, "give limits: latency: { p99: 200ms } (p50, p90, p99, p99.9, max)");
                    return null;
                }

                var limits = Percentiles.Where(p => spec.Has(p.Key)).Select(p => (p.Key, p.Value, spec.Value(p.Key, TimeSpan.Zero, ValueParsers.Duration))).ToList();
                if (limits.Count == 0)
                {
                    item.Error(kind, "give at least one limit: p50, p90, p99, p99.9 or max");
                    return null;
                }

                return new LatencyExpectation(where, limits);
            case "status":
                var statuses = (nested ? item.Values(kind, ValueParsers.Int(0, 599, "a status (0 for no answer)")) : [item.Value(kind, 200, ValueParsers.Int(0, 599, "a status (0 for no answer)"))]) ?? [];
                return new StatusExpectation(where, statuses.ToHashSet());
            case "sticky":
                return new StickyExpectation(where, Fraction("min", 1.0));
            case "moved-clients":
                if (!nested || !spec.Has("at"))
                {
                    item.Error(kind, "give the moment and the bound: moved-clients: { at: 5s, max: 0.4 }");
                    return null;
                }

                return new MovedClientsExpectation(where, spec.Value("at", TimeSpan.Zero, ValueParsers.Duration), spec.Value("settle", TimeSpan.Zero, ValueParsers.Duration), spec.Value("max", 0.0, ValueParsers.Fraction));
            case "requests":
                if (!nested || (!spec.Has("min") && !spec.Has("max")))
                {
                    item.Error(kind, "give bounds: requests: { min: 100 } (and backend: to count one backend's)");
                    return null;
                }

                var count = ValueParsers.Int(0, int.MaxValue, "a number of requests");
                return new RequestsExpectation(where, spec.Has("backend") ? Backend("backend") : null,
                    spec.Has("min") ? spec.Value("min", 0, count) : null, spec.Has("max") ? spec.Value("max", 0, count) : null);
            case "cache":
                if (!nested || !spec.Has("result") || (!spec.Has("min") && !spec.Has("max")))
                {
                    item.Error(kind, "give the result and a bound: cache: { result: HIT, min: 0.9 }");
                    return null;
                }

                return new CacheExpectation(where, spec.Value("result", "HIT", ValueParsers.OneOf(CacheResults)),
                    spec.Has("min") ? Fraction("min", 0) : null, spec.Has("max") ? Fraction("max", 1) : null);
            case "detected-within" or "recovered-within":
                if (nested)
                {
                    item.Error(kind, $"give the bound as a duration: {kind}: 2s");
                    return null;
                }

                var bound = item.Value(kind, TimeSpan.Zero, ValueParsers.PositiveDuration);
                return kind == "detected-within" ? new DetectedWithinExpectation(where, bound) : new RecoveredWithinExpectation(where, bound);
            default: // retries
                if (!nested || (!spec.Has("max") && !spec.Has("max-share")))
                {
                    item.Error(kind, "give a bound: retries: { max: 0 } or { max-share: 0.05 }");
                    return null;
                }

                return new RetriesExpectation(where, spec.Has("max") ? spec.Value("max", 0, ValueParsers.Int(0, int.MaxValue, "a number of requests")) : null,
                    spec.Has("max-share") ? spec.Value("max-share", 0.0, ValueParsers.Fraction) : null);
        }
    }

    /// <summary>The embedded configuration, checked by the balancer's own loader with stand-in addresses.</summary>
    private static IEnumerable<string> CheckBalancerConfig(Scenario scenario)
    {
        var directory = Directory.CreateTempSubdirectory("scenario-check-").FullName;
        try
        {
            var standIns = scenario.Backends.Select((b, i) => (b.Name, Address: $"http://127.0.0.1:{(10000 + i).ToString(CultureInfo.InvariantCulture)}")).ToDictionary(p => p.Name, p => p.Address);
            standIns[Scenario.RedisPort] = "6379";
            return BalancerSetup.Load(scenario, standIns, directory, (0, 0, 0)).Errors;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static bool Name(string raw, out string name, out string error)
    {
        name = raw.Trim();
        error = "";
        if (NamePattern().IsMatch(name))
        {
            return true;
        }

        error = $"{raw} is not a backend name (letters, digits, - and _)";
        return false;
    }

    [GeneratedRegex(@"^\s*config:\s*[|>]")]
    private static partial Regex ConfigBlock();

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_-]*$")]
    private static partial Regex NamePattern();
}
