namespace Balancer.Configuration;

/// <summary>
/// go-load-balancer's <c>loadbalancer.conf</c>, read into the keys config.yaml would give, each remembering its line,
/// so that every value is validated (and every mistake named with its line) as in config.yaml. Both of its grammars:
/// <list type="bullet">
/// <item>its README's: <c>method M</c>, <c>persistence P [name=N] [ttl=S]</c>, <c>backend URL [weight=N] [pool=P]</c>,
/// <c>pool P [method=M] [persistence=X]</c>, <c>route PATTERN backend_pool=P</c>;</item>
/// <item>its parser's: <c>upstream NAME {</c> … <c>server URL [weight=N]</c> … <c>}</c>, <c>default_backend NAME</c>,
/// <c>route path PREFIX POOL</c>, <c>route regex RE POOL</c>, <c>route header NAME VALUE POOL</c>.</item>
/// </list>
/// Backends outside any pool, the upstream <c>backend</c> or the one <c>default_backend</c> names form the default pool.
/// </summary>
internal sealed class LoadBalancerConfProvider : ConfigurationProvider, IConfigOrigins
{
    private static readonly string[] Directives = ["method", "persistence", "backend", "pool", "route", "upstream", "server", "default_backend", "}"];

    private readonly Dictionary<string, int> _lines = new(StringComparer.OrdinalIgnoreCase);

    private LoadBalancerConfProvider()
    {
    }

    public IEnumerable<string> AllPaths => _lines.Keys;

    public string? OriginOf(string key) => _lines.TryGetValue(key, out var line) ? $"line {line}" : null;

    public int? LineOf(string key) => _lines.TryGetValue(key, out var line) ? line : null;

    /// <summary>Whether <paramref name="path"/> is read as a loadbalancer.conf rather than YAML.</summary>
    public static bool Handles(string path) => path.EndsWith(".conf", StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses <paramref name="text"/>; lines it cannot read are added to <paramref name="errors"/>, naming the line.</summary>
    public static LoadBalancerConfProvider Parse(string text, string fileName, List<string> errors)
    {
        var pools = new List<Pool>();
        var routes = new List<(int Line, string Pool, string Kind, string Pattern, string? Value)>();
        Pool? upstream = null;
        string? defaultName = null;
        var settings = new List<(string Key, string Value, int Line)>();
        var lines = text.Split('\n');
        for (var n = 1; n <= lines.Length; n++)
        {
            var line = lines[n - 1].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            // Up to a comment, without a trailing ';' (nginx habits in old files).
            var words = line.Split((char[])[' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries).TakeWhile(w => !w.StartsWith('#')).ToList();
            words[^1] = words[^1].TrimEnd(';');
            words.RemoveAll(w => w.Length == 0);
            if (words.Count == 0)
            {
                continue;
            }

            void Error(string message) => errors.Add($"{fileName} (line {n}): {message}");
            var options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            var plain = new List<string>();
            foreach (var word in words.Skip(1))
            {
                var eq = word.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0 && !word.StartsWith('/') && !word.StartsWith('^'))
                {
                    options[word[..eq]] = word[(eq + 1)..];
                }
                else
                {
                    plain.Add(word);
                }
            }

            var reported = false;
            bool Only(params string[] allowed)
            {
                foreach (var key in options.Keys.Where(k => !allowed.Contains(k, StringComparer.OrdinalIgnoreCase)))
                {
                    if (reported)
                    {
                        return false; // said once per line: the guards after the first would name the others' options too
                    }

                    reported = true;
                    Error($"{words[0]}: unknown option {key}= (allowed: {(allowed.Length == 0 ? "none" : string.Join(", ", allowed.Select(a => a + "=")))})");
                    return false;
                }

                return true;
            }

            Pool PoolNamed(string name, int at)
            {
                var pool = pools.FirstOrDefault(p => p.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
                if (pool is null)
                {
                    pools.Add(pool = new Pool(name, at));
                }

                return pool;
            }

            switch (words[0].ToLowerInvariant())
            {
                case "method" when plain.Count == 1 && Only():
                    settings.Add(("BalanceHub:algorithm", plain[0], n));
                    break;
                case "persistence" when plain.Count == 1 && Only("name", "ttl"):
                    settings.Add(("persistence:mode", plain[0], n));
                    if (options.TryGetValue("name", out var cookie))
                    {
                        settings.Add(("persistence:name", cookie, n));
                    }

                    if (options.TryGetValue("ttl", out var ttl))
                    {
                        settings.Add(("persistence:max-age", ttl, n));
                    }

                    break;
                case "backend" when plain.Count == 1 && Only("weight", "pool"):
                    (options.TryGetValue("pool", out var poolName) ? PoolNamed(poolName, n) : PoolNamed("", n)).Backends.Add((plain[0], options.GetValueOrDefault("weight"), n));
                    break;
                case "pool" when plain.Count == 1 && Only("method", "persistence"):
                    var defined = PoolNamed(plain[0], n);
                    defined.Line = n;
                    defined.Method = options.GetValueOrDefault("method") ?? defined.Method;
                    defined.Persistence = options.GetValueOrDefault("persistence") ?? defined.Persistence;
                    break;
                case "upstream" when plain.Count is 1 or 2 && (plain.Count == 1 || plain[1] == "{") && Only():
                    upstream = PoolNamed(plain[0], n);
                    break;
                case "server" when plain.Count == 1 && Only("weight", "max_conn"):
                    if (upstream is null)
                    {
                        Error("server outside an upstream { ... } block");
                        break;
                    }

                    upstream.Backends.Add((plain[0], options.GetValueOrDefault("weight"), n));
                    break;
                case "}" when plain.Count == 0:
                    if (upstream is null)
                    {
                        Error("} closes no upstream block");
                    }

                    upstream = null;
                    break;
                case "default_backend" when plain.Count == 1 && Only():
                    defaultName = plain[0];
                    break;
                case "route" when plain.Count == 1 && Only("backend_pool") && options.TryGetValue("backend_pool", out var target):
                    routes.Add((n, target, "pattern", plain[0], null));
                    break;
                case "route" when Only() && plain.Count >= 3 && plain[0].ToLowerInvariant() is "path" or "regex" && plain.Count == 3:
                    routes.Add((n, plain[2], plain[0].ToLowerInvariant(), plain[1], null));
                    break;
                case "route" when Only() && plain.Count == 4 && plain[0].Equals("header", StringComparison.OrdinalIgnoreCase):
                    routes.Add((n, plain[3], "header", plain[1], plain[2]));
                    break;
                case var directive when Directives.Contains(directive):
                    if (!reported)
                    {
                        Error($"{words[0]}: {Usage(directive)}");
                    }

                    break;
                default:
                    Error($"unknown directive {words[0]} (known: {string.Join(", ", Directives.SkipLast(1))})");
                    break;
            }
        }

        if (upstream is not null)
        {
            errors.Add($"{fileName} (line {upstream.Line}): upstream {upstream.Name} {{ is never closed with }}");
        }

        var provider = new LoadBalancerConfProvider();
        foreach (var (key, value, line) in settings)
        {
            provider.Set(key, value, line);
        }

        // The default pool: backends outside any pool, else the upstream default_backend names, else the one called backend.
        var unpooled = pools.FirstOrDefault(p => p.Name.Length == 0);
        var chosen = unpooled ?? pools.FirstOrDefault(p => p.Name.Equals(defaultName ?? "backend", StringComparison.OrdinalIgnoreCase));
        if (defaultName is not null && chosen is null)
        {
            errors.Add($"{fileName}: default_backend {defaultName} is not an upstream");
        }

        if (chosen is not null)
        {
            provider.AddBackends("backends", chosen);
            if (chosen.Method is { } method)
            {
                provider.Set("BalanceHub:algorithm", method, chosen.Line);
            }
        }

        var index = 0;
        foreach (var pool in pools.Where(p => p != chosen))
        {
            var path = $"pools:{index++}";
            provider.Set($"{path}:name", pool.Name, pool.Line);
            if (pool.Method is { } method)
            {
                provider.Set($"{path}:algorithm", method, pool.Line);
            }

            if (pool.Persistence is { } persistence)
            {
                provider.Set($"{path}:persistence", persistence, pool.Line);
            }

            provider.AddBackends($"{path}:backends", pool);
        }

        for (var i = 0; i < routes.Count; i++)
        {
            var (line, pool, kind, pattern, value) = routes[i];
            var path = $"routes:{i}";
            // Routes to the default pool's upstream name go to the default pool.
            provider.Set($"{path}:pool", chosen is not null && pool.Equals(chosen.Name, StringComparison.OrdinalIgnoreCase) && chosen.Name.Length > 0 ? "default" : pool, line);
            switch (kind)
            {
                case "pattern":
                case "path":
                    provider.Set($"{path}:path", pattern, line);
                    break;
                case "regex":
                    provider.Set($"{path}:path:regex", pattern, line);
                    break;
                default:
                    provider.Set($"{path}:headers:{pattern}", value!, line);
                    break;
            }
        }

        return provider;
    }

    private static string Usage(string directive) => directive switch
    {
        "method" => "expected method NAME (round_robin, weighted_round_robin, least_connections, ...)",
        "persistence" => "expected persistence MODE [name=COOKIE] [ttl=SECONDS]",
        "backend" => "expected backend URL [weight=N] [pool=NAME]",
        "pool" => "expected pool NAME [method=M] [persistence=P]",
        "upstream" => "expected upstream NAME {",
        "server" => "expected server URL [weight=N]",
        "default_backend" => "expected default_backend NAME",
        "route" => "expected route PATTERN backend_pool=NAME, route path PREFIX NAME, route regex RE NAME or route header NAME VALUE POOL",
        _ => "expected } alone on its line",
    };

    private void AddBackends(string path, Pool pool)
    {
        Line(path, pool.Line);
        for (var i = 0; i < pool.Backends.Count; i++)
        {
            var (address, weight, line) = pool.Backends[i];
            Set($"{path}:{i}:address", address, line);
            if (weight is not null)
            {
                Set($"{path}:{i}:weight", weight, line);
            }
        }
    }

    private void Set(string key, string value, int line)
    {
        Data[key] = value;
        Line(key, line);
    }

    /// <summary>The key and every section above it get the line where they first appear.</summary>
    private void Line(string key, int line)
    {
        for (var path = key; path.Length > 0; path = path.LastIndexOf(':') is var cut and >= 0 ? path[..cut] : "")
        {
            _lines.TryAdd(path, line);
        }
    }

    private sealed class Pool(string name, int line)
    {
        public string Name { get; } = name;
        public int Line { get; set; } = line;
        public string? Method { get; set; }
        public string? Persistence { get; set; }
        public List<(string Address, string? Weight, int Line)> Backends { get; } = [];
    }
}

internal sealed class LoadBalancerConfSource(LoadBalancerConfProvider provider) : IConfigurationSource
{
    public IConfigurationProvider Build(IConfigurationBuilder builder) => provider;
}
