using System.Globalization;
using System.Text;

namespace Balancer.Configuration;

/// <summary>Parses one raw value; on failure <paramref name="error"/> says what is wrong with it.</summary>
internal delegate bool ValueParser<T>(string raw, out T value, out string error);

/// <summary>
/// Reads typed settings from layered configuration and collects every problem at once, each naming its
/// key path and where the value came from. Every key the reader asks for becomes known, so that after
/// reading, <see cref="ReportUnknownKeys"/> can reject the rest with a suggestion.
/// </summary>
internal sealed class ConfigReader
{
    private readonly IConfigurationRoot _root;
    private readonly IReadOnlyList<IConfigOrigins> _sources;
    private readonly List<(int Line, string Text)> _errors = [];
    // Known keys by parent pattern (list indexes are '*'), with the spelling the schema uses.
    private readonly Dictionary<string, List<string>> _known = new(StringComparer.OrdinalIgnoreCase);
    // Paths already reported as the wrong shape: their children are not reported again as unknown.
    private readonly HashSet<string> _misshapen = new(StringComparer.OrdinalIgnoreCase);

    public ConfigReader(IConfigurationRoot root)
    {
        _root = root;
        _sources = [.. root.Providers.OfType<IConfigOrigins>()];
    }

    public ConfigSection Root => new(this, "");

    /// <summary>The errors so far: those with a line in line order, then the rest in the order found.</summary>
    public IReadOnlyList<string> Errors => [.. _errors.Select((e, i) => (e, i)).OrderBy(x => x.e.Line).ThenBy(x => x.i).Select(x => x.e.Text)];

    public void AddError(string path, string message)
    {
        var (origin, line) = Locate(path);
        var where = DisplayPath(path);
        var text = origin is null ? $"{where}: {message}" : $"{where} ({origin}): {message}";
        _errors.Add((line ?? int.MaxValue, text));
    }

    /// <summary>An error not tied to a key, such as a bad command-line token.</summary>
    public void AddGeneralError(string text) => _errors.Add((int.MaxValue, text));

    internal void MarkKnown(string parentPath, string key)
    {
        var pattern = Pattern(parentPath);
        if (!_known.TryGetValue(pattern, out var names))
        {
            _known[pattern] = names = [];
        }

        if (!names.Contains(key, StringComparer.OrdinalIgnoreCase))
        {
            names.Add(key);
        }
    }

    internal void MarkMisshapen(string path) => _misshapen.Add(path);

    internal string? RawValue(string path) => _root[path];

    internal bool Exists(string path) => _root.GetSection(path).GetChildren().Any() || _root.Providers.Any(p => p.TryGet(path, out _));

    internal bool HasChildren(string path) => _root.GetSection(path).GetChildren().Any();

    internal IEnumerable<IConfigurationSection> Children(string path) => _root.GetSection(path).GetChildren();

    /// <summary>Rejects every key that no part of the schema asked for, suggesting the nearest known sibling.</summary>
    public void ReportUnknownKeys()
    {
        var reported = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var path in _sources.SelectMany(s => s.AllPaths).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            var segments = path.Split(ConfigurationPath.KeyDelimiter);
            var prefix = "";
            foreach (var segment in segments)
            {
                var parent = prefix;
                prefix = prefix.Length == 0 ? segment : ConfigurationPath.Combine(prefix, segment);
                if (_misshapen.Contains(parent) && parent.Length > 0)
                {
                    break;
                }

                if (IsKnown(parent, segment))
                {
                    continue;
                }

                if (reported.Add(prefix))
                {
                    var suggestion = Suggest(parent, segment);
                    AddError(prefix, suggestion is null ? "unknown key" : $"unknown key; did you mean {suggestion}?");
                }

                break;
            }
        }
    }

    private bool IsKnown(string parent, string segment)
    {
        if (!_known.TryGetValue(Pattern(parent), out var names))
        {
            return false;
        }

        return names.Contains(IsIndex(segment) ? "*" : segment, StringComparer.OrdinalIgnoreCase);
    }

    private string? Suggest(string parent, string segment)
    {
        if (!_known.TryGetValue(Pattern(parent), out var names))
        {
            return null;
        }

        var best = names.Where(n => n != "*")
            .Select(n => (Name: n, Distance: EditDistance(n.ToUpperInvariant(), segment.ToUpperInvariant())))
            .OrderBy(x => x.Distance)
            .FirstOrDefault();
        return best.Name is not null && best.Distance <= Math.Max(2, segment.Length / 3) ? best.Name : null;
    }

    private (string? Origin, int? Line) Locate(string path)
    {
        foreach (var provider in _root.Providers.Reverse())
        {
            if (provider is IConfigOrigins source && source.OriginOf(path) is { } origin)
            {
                return (origin, source.LineOf(path));
            }
        }

        // Not given anywhere (a required key, say): point at the nearest enclosing node that was.
        var parent = path;
        while (parent.Length > 0)
        {
            var cut = parent.LastIndexOf(':');
            parent = cut < 0 ? "" : parent[..cut];
            foreach (var provider in _root.Providers.Reverse())
            {
                if (provider is IConfigOrigins file && file.LineOf(parent) is { } line)
                {
                    return ($"line {line}", line);
                }
            }
        }

        return (null, null);
    }

    internal static string DisplayPath(string path)
    {
        var builder = new StringBuilder();
        foreach (var segment in path.Split(ConfigurationPath.KeyDelimiter))
        {
            if (IsIndex(segment))
            {
                builder.Append('[').Append(segment).Append(']');
            }
            else
            {
                if (builder.Length > 0)
                {
                    builder.Append('.');
                }

                builder.Append(segment);
            }
        }

        return builder.ToString();
    }

    private static string Pattern(string path) =>
        string.Join(ConfigurationPath.KeyDelimiter, path.Split(ConfigurationPath.KeyDelimiter).Select(s => IsIndex(s) ? "*" : s));

    private static bool IsIndex(string segment) => segment.Length > 0 && segment.All(char.IsAsciiDigit);

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}

/// <summary>A position in the configuration tree from which typed settings are read.</summary>
internal readonly struct ConfigSection
{
    private readonly ConfigReader _reader;

    public ConfigSection(ConfigReader reader, string path)
    {
        _reader = reader;
        Path = path;
    }

    /// <summary>The colon-separated key path ("" at the root).</summary>
    public string Path { get; }

    public ConfigReader Reader => _reader;

    public string KeyPath(string key) => Path.Length == 0 ? key : ConfigurationPath.Combine(Path, key);

    /// <summary>True when <paramref name="key"/> is given in any source (possibly empty).</summary>
    public bool Has(string key)
    {
        _reader.MarkKnown(Path, key);
        return _reader.Exists(KeyPath(key));
    }

    /// <summary>A nested mapping. If <paramref name="key"/> holds a value instead, that is an error.</summary>
    public ConfigSection Section(string key)
    {
        _reader.MarkKnown(Path, key);
        var path = KeyPath(key);
        if (_reader.RawValue(path) is { Length: > 0 })
        {
            _reader.AddError(path, "expected a mapping of settings, found a value");
            _reader.MarkMisshapen(path);
        }

        return new ConfigSection(_reader, path);
    }

    /// <summary>The raw text of a value, or null when absent. A mapping or list given instead is an error.</summary>
    public string? String(string key)
    {
        _reader.MarkKnown(Path, key);
        var path = KeyPath(key);
        if (_reader.HasChildren(path))
        {
            var isList = _reader.Children(path).All(c => int.TryParse(c.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _));
            _reader.AddError(path, $"expected a value, found {(isList ? "a list" : "a mapping")}");
            _reader.MarkMisshapen(path);
            return null;
        }

        return _reader.RawValue(path);
    }

    /// <summary>A typed value, or <paramref name="fallback"/> when absent or empty or wrong (wrong is reported).</summary>
    public T Value<T>(string key, T fallback, ValueParser<T> parse)
    {
        var raw = String(key);
        if (string.IsNullOrWhiteSpace(raw))
        {
            return fallback;
        }

        if (parse(raw.Trim(), out var value, out var error))
        {
            return value;
        }

        _reader.AddError(KeyPath(key), error);
        return fallback;
    }

    /// <summary>The items of a list of mappings; a value given instead of a list is an error.</summary>
    public IReadOnlyList<ConfigSection> Items(string key)
    {
        if (!ListShape(key))
        {
            return [];
        }

        var path = KeyPath(key);
        var items = new List<ConfigSection>();
        foreach (var child in _reader.Children(path).OrderBy(c => int.Parse(c.Key, CultureInfo.InvariantCulture)))
        {
            var itemPath = ConfigurationPath.Combine(path, child.Key);
            if (child.Value is { Length: > 0 })
            {
                _reader.AddError(itemPath, "expected a mapping of settings, found a value");
                _reader.MarkMisshapen(itemPath);
                continue;
            }

            items.Add(new ConfigSection(_reader, itemPath));
        }

        return items;
    }

    /// <summary>A list of typed values; each bad item is reported and left out. Null when the key is absent.</summary>
    public IReadOnlyList<T>? Values<T>(string key, ValueParser<T> parse)
    {
        if (!Has(key) || !ListShape(key))
        {
            return null;
        }

        var path = KeyPath(key);
        var values = new List<T>();
        foreach (var child in _reader.Children(path).OrderBy(c => int.Parse(c.Key, CultureInfo.InvariantCulture)))
        {
            var itemPath = ConfigurationPath.Combine(path, child.Key);
            if (child.GetChildren().Any())
            {
                _reader.AddError(itemPath, "expected a value, found a mapping");
                _reader.MarkMisshapen(itemPath);
            }
            else if (parse(child.Value?.Trim() ?? "", out var value, out var error))
            {
                values.Add(value);
            }
            else
            {
                _reader.AddError(itemPath, error);
            }
        }

        return values;
    }

    /// <summary>
    /// The items of a list, each a value or a mapping, without complaint about either: for lists whose items may be
    /// written both ways (<c>[hang, latency: 200ms]</c>). A value or mapping given instead of a list is an error.
    /// </summary>
    public IReadOnlyList<ConfigSection> Elements(string key)
    {
        if (!Has(key) || !ListShape(key))
        {
            return [];
        }

        var path = KeyPath(key);
        var reader = _reader;
        return [.. reader.Children(path).OrderBy(c => int.Parse(c.Key, CultureInfo.InvariantCulture)).Select(c => new ConfigSection(reader, ConfigurationPath.Combine(path, c.Key)))];
    }

    /// <summary>This node's own value, when it is a value rather than a mapping or a list.</summary>
    public string? OwnValue => _reader.HasChildren(Path) ? null : _reader.RawValue(Path);

    /// <summary>Whether <paramref name="key"/> holds a mapping or a list (rather than a value, or nothing).</summary>
    public bool IsNested(string key) => _reader.HasChildren(KeyPath(key));

    /// <summary>The keys under this node, as written.</summary>
    public IReadOnlyList<string> Keys => [.. _reader.Children(Path).Select(c => c.Key)];

    /// <summary>Reports a problem with this node itself.</summary>
    public void Error(string message) => _reader.AddError(Path, message);

    public void Error(string key, string message) => _reader.AddError(KeyPath(key), message);

    private bool ListShape(string key)
    {
        _reader.MarkKnown(Path, key);
        var path = KeyPath(key);
        _reader.MarkKnown(path, "*");
        if (_reader.RawValue(path) is { Length: > 0 })
        {
            _reader.AddError(path, "expected a list, found a value");
            _reader.MarkMisshapen(path);
            return false;
        }

        if (_reader.Children(path).Any(c => !int.TryParse(c.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
        {
            _reader.AddError(path, "expected a list, found a mapping");
            _reader.MarkMisshapen(path);
            return false;
        }

        return true;
    }
}
