using System.Globalization;
using System.Text.RegularExpressions;
using Balancer.Configuration;

namespace Balancer.Routing;

/// <summary>
/// Reads <c>routes:</c> from config.yaml: each item's conditions and pool, every problem reported with its key and line
/// (an unknown pool, a bad host, path or regex, a route matching exactly what another does).
/// </summary>
internal static partial class RouteReader
{
    private static readonly string[] PathKinds = ["prefix", "exact", "glob", "regex"];
    private static readonly string[] ValueKinds = ["present", "absent", "exact", "prefix", "regex"];

    /// <summary>The routes as written, in file order; <paramref name="pools"/> are the configured pool names.</summary>
    public static List<RouteRule> Read(ConfigSection root, IReadOnlySet<string> pools)
    {
        var routes = new List<RouteRule>();
        var names = new HashSet<string>(pools, StringComparer.OrdinalIgnoreCase);
        var items = root.Items("routes");
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i];
            var name = item.String("name")?.Trim();
            var pool = item.String("pool")?.Trim();
            var priority = item.Value("priority", 0, ValueParsers.Int(-1_000_000, 1_000_000, "a priority"));
            var hosts = item.Values<string>("hosts", HostPattern) ?? [];
            var path = ReadPath(item);
            var methods = item.Values<string>("methods", ValueParsers.Method) ?? [];
            var headers = ReadValues(item, "headers", HeaderName);
            var query = ReadValues(item, "query", QueryName);
            var origin = item.Path;
            if (string.IsNullOrEmpty(name))
            {
                name = $"route-{i + 1}";
            }
            else if (!RouteName().IsMatch(name))
            {
                item.Error("name", $"{name} is not a route name (letters, digits, - and _)");
                continue;
            }

            if (!names.Add(name))
            {
                item.Error("name", $"{name} is the name of a pool or of another route; route names are their own");
                continue;
            }

            if (string.IsNullOrEmpty(pool))
            {
                item.Error("pool", "is required: the pool this route sends to");
                continue;
            }

            if (!pools.Contains(pool))
            {
                item.Error("pool", $"{pool} is not a pool (pools: {string.Join(", ", pools.Order(StringComparer.OrdinalIgnoreCase))})");
                continue;
            }

            routes.Add(new RouteRule
            {
                Name = name,
                Pool = pools.First(p => p.Equals(pool, StringComparison.OrdinalIgnoreCase)),
                Priority = priority,
                Hosts = [.. hosts.Distinct(StringComparer.OrdinalIgnoreCase)],
                Path = path,
                Methods = [.. methods.Distinct(StringComparer.Ordinal)],
                Headers = headers,
                Query = query,
                Origin = origin,
            });
        }

        return routes;
    }

    /// <summary>Reports every route that matches exactly what an earlier one does (whatever the priorities: one would be dead).</summary>
    public static void CheckIdentical(ConfigReader reader, IReadOnlyList<RouteRule> routes)
    {
        var seen = new Dictionary<string, RouteRule>(StringComparer.Ordinal);
        foreach (var route in routes.Where(r => !r.IsCatchAll))
        {
            if (!seen.TryAdd(route.Signature, route))
            {
                var other = seen[route.Signature];
                reader.AddError(route.Origin, $"matches exactly what {Describe(other)} matches: one of them would never be used");
            }
        }
    }

    private static string Describe(RouteRule route) => route.Origin.StartsWith("routes", StringComparison.Ordinal)
        ? $"route {route.Name} ({ConfigReader.DisplayPath(route.Origin)})"
        : $"pool {route.Pool}'s path {route.Path} ({ConfigReader.DisplayPath(route.Origin)})";

    /// <summary><c>path: /api</c> (a prefix), <c>path: /api/*</c> (a glob), or <c>path: { exact | prefix | glob | regex: ... }</c>.</summary>
    private static PathMatch? ReadPath(ConfigSection item)
    {
        if (!item.Has("path"))
        {
            return null;
        }

        if (!item.IsNested("path"))
        {
            var raw = item.String("path")?.Trim() ?? "";
            return Path(item, "path", raw.Contains('*', StringComparison.Ordinal) ? PathMatchKind.Glob : PathMatchKind.Prefix, raw);
        }

        var section = item.Section("path");
        var given = PathKinds.Where(section.Has).ToList();
        if (given.Count != 1)
        {
            item.Error("path", "give one of prefix, exact, glob or regex, e.g. path: { exact: /login }");
            item.Reader.MarkMisshapen(section.Path);
            return null;
        }

        var kind = given[0] switch { "prefix" => PathMatchKind.Prefix, "exact" => PathMatchKind.Exact, "glob" => PathMatchKind.Glob, _ => PathMatchKind.Regex };
        return Path(section, given[0], kind, section.String(given[0])?.Trim() ?? "");
    }

    private static PathMatch? Path(ConfigSection section, string key, PathMatchKind kind, string raw)
    {
        switch (kind)
        {
            case PathMatchKind.Prefix:
            case PathMatchKind.Exact:
                if (!ValueParsers.PathPrefix(raw, out var path, out var error))
                {
                    section.Error(key, error);
                    return null;
                }

                return new PathMatch(kind, path);
            case PathMatchKind.Glob:
                if (!raw.StartsWith('/') || raw.IndexOfAny(['?', '#', ' ', '{', '}']) >= 0 || !raw.Contains('*', StringComparison.Ordinal))
                {
                    section.Error(key, $"{raw} is not a path pattern: it starts with /, has a * (any characters but /; at the end, the rest of the path), and no ?, #, spaces or braces");
                    return null;
                }

                return new PathMatch(kind, raw);
            default:
                return Regex(section, key, raw) ? new PathMatch(kind, raw) : null;
        }
    }

    /// <summary>
    /// <c>headers:</c> or <c>query:</c>, a mapping of names to a value (equal to it), a list (equal to one of them), or
    /// <c>{ present: true }</c>, <c>{ absent: true }</c>, <c>{ exact: v }</c>, <c>{ prefix: v }</c>, <c>{ regex: r }</c>.
    /// </summary>
    private static List<ValueMatch> ReadValues(ConfigSection item, string key, ValueParser<string> parseName)
    {
        var matches = new List<ValueMatch>();
        if (!item.Has(key))
        {
            return matches;
        }

        var section = item.Section(key);
        foreach (var name in section.Keys)
        {
            if (!parseName(name, out _, out var nameError))
            {
                section.Error(name, nameError);
                section.Has(name);
                continue;
            }

            if (!section.IsNested(name))
            {
                AddCompared(section, name, name, ValueMatchKind.Exact, [section.String(name) ?? ""]);
                continue;
            }

            if (section.Section(name).Keys.All(k => int.TryParse(k, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
            {
                AddCompared(section, name, name, ValueMatchKind.Exact, section.Values<string>(name, ValueParsers.Text) ?? []);
                continue;
            }

            var condition = section.Section(name);
            var given = ValueKinds.Where(condition.Has).ToList();
            if (given.Count != 1)
            {
                section.Error(name, "give one of present, absent, exact, prefix or regex, e.g. { prefix: beta }");
                section.Reader.MarkMisshapen(condition.Path);
                continue;
            }

            switch (given[0])
            {
                case "present":
                case "absent":
                    if (!condition.Value(given[0], false, ValueParsers.Bool))
                    {
                        condition.Error(given[0], "can only be true (leave the condition out otherwise)");
                        continue;
                    }

                    matches.Add(new ValueMatch(name, given[0] == "present" ? ValueMatchKind.Present : ValueMatchKind.Absent, []));
                    break;
                case "regex":
                    var pattern = condition.String("regex") ?? "";
                    if (Regex(condition, "regex", pattern))
                    {
                        matches.Add(new ValueMatch(name, ValueMatchKind.Regex, [pattern]));
                    }

                    break;
                default:
                    var values = condition.IsNested(given[0]) ? condition.Values<string>(given[0], ValueParsers.Text) ?? [] : [condition.String(given[0]) ?? ""];
                    AddCompared(condition, given[0], name, given[0] == "exact" ? ValueMatchKind.Exact : ValueMatchKind.Prefix, values);
                    break;
            }
        }

        return matches;

        // Values to compare with: none empty (an empty value is { present: true }, or nothing to compare).
        void AddCompared(ConfigSection where, string key, string header, ValueMatchKind kind, IReadOnlyList<string> values)
        {
            if (values.Count == 0 || values.Any(v => v.Length == 0))
            {
                where.Error(key, "give a value to compare with (or { present: true })");
                return;
            }

            matches.Add(new ValueMatch(header, kind, values));
        }
    }

    /// <summary>A pattern .NET compiles in linear time (no backreferences or lookarounds: a route cannot be made slow by its input).</summary>
    private static bool Regex(ConfigSection section, string key, string pattern)
    {
        if (pattern.Length == 0)
        {
            section.Error(key, "is empty");
            return false;
        }

        try
        {
            _ = new Regex(pattern, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
            return true;
        }
        catch (ArgumentException e)
        {
            section.Error(key, $"{pattern} is not a regular expression: {e.Message}");
        }
        catch (NotSupportedException e)
        {
            section.Error(key, $"{pattern} cannot be matched in linear time (backreferences, lookarounds and atomic groups are not allowed): {e.Message}");
        }

        return false;
    }

    /// <summary><c>api.example.com</c>, <c>*.example.com</c>, <c>localhost:8080</c>, <c>[::1]:8080</c>; lower-cased.</summary>
    private static bool HostPattern(string raw, out string host, out string error)
    {
        host = raw.ToLowerInvariant();
        error = "";
        if (HostSyntax().IsMatch(host))
        {
            return true;
        }

        error = $"{raw} is not a host (api.example.com, *.example.com, optionally with :port)";
        return false;
    }

    private static bool HeaderName(string raw, out string name, out string error)
    {
        var ok = ValueParsers.Token(raw, out name, out _);
        error = ok ? "" : $"{raw} is not a header name";
        return ok;
    }

    private static bool QueryName(string raw, out string name, out string error)
    {
        name = raw;
        error = "";
        if (raw.Length > 0 && !raw.Any(c => c is '&' or '=' or '#' or ' ' || char.IsControl(c)))
        {
            return true;
        }

        error = $"{raw} is not a query parameter name";
        return false;
    }

    [GeneratedRegex(@"^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$|^\[[0-9a-f:.]+\](:[0-9]{1,5})?$")]
    private static partial Regex HostSyntax();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]*$")]
    private static partial Regex RouteName();
}
