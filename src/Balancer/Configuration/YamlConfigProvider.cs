using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Balancer.Configuration;

/// <summary>
/// Flattens a YAML document into configuration keys (<c>BalanceHub:listen</c>, <c>backends:0:address</c>)
/// and remembers the line of every node, so errors can point at it.
/// </summary>
internal sealed class YamlConfigProvider : ConfigurationProvider, IConfigOrigins
{
    private readonly Dictionary<string, int> _lines = new(StringComparer.OrdinalIgnoreCase);

    private YamlConfigProvider()
    {
    }

    public IEnumerable<string> AllPaths => _lines.Keys;

    public string? OriginOf(string key) => _lines.TryGetValue(key, out var line) ? $"line {line}" : null;

    /// <summary>The line of <paramref name="key"/> in the file, if it is there.</summary>
    public int? LineOf(string key) => _lines.TryGetValue(key, out var line) ? line : null;

    /// <summary>Parses <paramref name="yaml"/>; syntax errors are added to <paramref name="errors"/> with line and column.</summary>
    public static YamlConfigProvider Parse(string yaml, string fileName, List<string> errors)
    {
        var provider = new YamlConfigProvider();
        var stream = new YamlStream();
        try
        {
            // Before building any tree: a document whose aliases would multiply it (a "billion laughs") or whose nesting
            // would exhaust the stack is refused from the event stream, in time and memory bounded by its length.
            if (Refusal(yaml, fileName) is { } refusal)
            {
                errors.Add(refusal);
                return provider;
            }

            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            var reason = e.InnerException is YamlException inner ? inner.Message : e.Message;
            // YamlDotNet prefixes messages with its own "(Line: x, Col: y, ...)" marks; ours are plainer.
            var close = reason.LastIndexOf("): ", StringComparison.Ordinal);
            if (reason.StartsWith('(') && close > 0)
            {
                reason = reason[(close + 3)..];
            }

            errors.Add($"{fileName} (line {e.Start.Line}, column {e.Start.Column}): {reason}");
            return provider;
        }

        if (stream.Documents.Count == 0)
        {
            return provider;
        }

        var root = stream.Documents[0].RootNode;
        switch (root)
        {
            case YamlMappingNode mapping:
                provider.AddMapping("", mapping, fileName, errors);
                break;
            case YamlScalarNode { Value: null or "" }:
                break;
            default:
                errors.Add($"{fileName} (line {root.Start.Line}): expected a mapping of sections at the top level");
                break;
        }

        return provider;
    }

    /// <summary>How deep mappings and lists may nest: far more than any configuration needs.</summary>
    public const int MaxDepth = 64;

    /// <summary>How large a YAML file may be: far more than any configuration or scenario needs.</summary>
    public const long MaxFileBytes = 4 * 1024 * 1024;

    /// <summary>The text of a YAML file, or null (with the reason in <paramref name="error"/>) when it is too large to be one of ours.</summary>
    public static string? ReadFile(string fullPath, string shownAs, out string error)
    {
        error = "";
        var length = new FileInfo(fullPath).Length;
        if (length > MaxFileBytes)
        {
            error = $"{shownAs}: {length} bytes is more than a configuration can need (at most {MaxFileBytes / (1024 * 1024)}MB); is this the right file?";
            return null;
        }

        return File.ReadAllText(fullPath);
    }

    private static string? Refusal(string yaml, string fileName)
    {
        var parser = new Parser(new StringReader(yaml));
        var depth = 0;
        while (parser.MoveNext())
        {
            switch (parser.Current)
            {
                case AnchorAlias alias:
                    return $"{fileName} (line {alias.Start.Line}): aliases are not supported (*{alias.Value}); write the value out";
                case MappingStart or SequenceStart when ++depth > MaxDepth:
                    return $"{fileName} (line {parser.Current.Start.Line}, column {parser.Current.Start.Column}): nested more than {MaxDepth} levels deep";
                case MappingEnd or SequenceEnd:
                    depth--;
                    break;
            }
        }

        return null;
    }

    private void AddMapping(string prefix, YamlMappingNode mapping, string fileName, List<string> errors)
    {
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { Length: > 0 } name })
            {
                errors.Add($"{fileName} (line {keyNode.Start.Line}): keys must be plain names");
                continue;
            }

            var path = prefix.Length == 0 ? name : ConfigurationPath.Combine(prefix, name);
            if (_lines.TryGetValue(path, out var firstLine))
            {
                errors.Add($"{Display(path)} (line {keyNode.Start.Line}): duplicate key; first given on line {firstLine}");
                continue;
            }

            _lines[path] = (int)keyNode.Start.Line;
            AddNode(path, valueNode, fileName, errors);
        }
    }

    private void AddNode(string path, YamlNode node, string fileName, List<string> errors)
    {
        switch (node)
        {
            case YamlScalarNode scalar:
                Data[path] = scalar.Style == ScalarStyle.Plain && scalar.Value is "" or "~" or "null" or "Null" or "NULL" ? null : scalar.Value;
                break;
            case YamlMappingNode { Children.Count: 0 }:
            case YamlSequenceNode { Children.Count: 0 }:
                Data[path] = null; // present, and empty
                break;
            case YamlMappingNode mapping:
                AddMapping(path, mapping, fileName, errors);
                break;
            case YamlSequenceNode sequence:
                for (var i = 0; i < sequence.Children.Count; i++)
                {
                    var item = sequence.Children[i];
                    var itemPath = ConfigurationPath.Combine(path, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    _lines[itemPath] = (int)item.Start.Line;
                    AddNode(itemPath, item, fileName, errors);
                }

                break;
            default:
                errors.Add($"{Display(path)} (line {node.Start.Line}): aliases and tags are not supported");
                break;
        }
    }

    internal static string Display(string path) => ConfigReader.DisplayPath(path);
}

internal sealed class YamlConfigSource(YamlConfigProvider provider) : IConfigurationSource
{
    public IConfigurationProvider Build(IConfigurationBuilder builder) => provider;
}
