
namespace Balancer.Configuration;

/// <summary>A configuration provider that can say where each of its keys came from.</summary>
internal interface IConfigOrigins
{
    /// <summary>Where <paramref name="key"/> came from ("line 7", "--port", "environment LB_X"), or null if not from here.</summary>
    string? OriginOf(string key);

    /// <summary>Every key path this source defines, sections included.</summary>
    IEnumerable<string> AllPaths { get; }

    /// <summary>The line of the file that defines <paramref name="key"/>, for a source that is a file.</summary>
    int? LineOf(string key);
}

/// <summary>Fixed key/value overrides (environment or command line), each with its origin.</summary>
internal sealed class OverridesProvider : ConfigurationProvider, IConfigOrigins
{
    private readonly Dictionary<string, string> _origins = new(StringComparer.OrdinalIgnoreCase);

    public OverridesProvider(IEnumerable<(string Key, string Value, string Origin)> overrides)
    {
        foreach (var (key, value, origin) in overrides)
        {
            Data[key] = value;
            _origins[key] = origin;
        }
    }

    public IEnumerable<string> AllPaths => Data.Keys;

    public string? OriginOf(string key) => _origins.GetValueOrDefault(key);

    public int? LineOf(string key) => null;

    /// <summary>
    /// Overrides from environment variables prefixed <c>LB_</c>: <c>LB_ALGORITHM</c> is
    /// <c>BalanceHub:algorithm</c>; any other <c>LB_Section__key</c> is <c>Section:key</c> (.NET's convention).
    /// <c>LB_CONFIG</c> and <c>LB_DEBUG</c> are read by the loader itself.
    /// </summary>
    public static OverridesProvider FromEnvironment(IReadOnlyDictionary<string, string> environment)
    {
        var overrides = new List<(string, string, string)>();
        foreach (var (name, value) in environment.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (!name.StartsWith(ConfigLoader.EnvironmentPrefix, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var rest = name[ConfigLoader.EnvironmentPrefix.Length..];
            if (rest.Equals("CONFIG", StringComparison.OrdinalIgnoreCase) || rest.Equals("DEBUG", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var key = rest.Equals("ALGORITHM", StringComparison.OrdinalIgnoreCase)
                ? "BalanceHub:algorithm"
                : rest.Replace("__", ConfigurationPath.KeyDelimiter, StringComparison.Ordinal);
            overrides.Add((key, value, $"environment {name}"));
        }

        return new OverridesProvider(overrides);
    }
}

internal sealed class OverridesSource(OverridesProvider provider) : IConfigurationSource
{
    public IConfigurationProvider Build(IConfigurationBuilder builder) => provider;
}
