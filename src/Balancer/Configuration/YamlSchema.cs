namespace Balancer.Configuration;

/// <summary>
/// Reads any YAML document the way <see cref="ConfigLoader"/> reads config.yaml: a typed result, or every problem
/// at once, each naming its key path and line, unknown keys included (with the nearest known key suggested).
/// Scenario files and fake-backend behaviors are read through it, so they fail the same clear way.
/// </summary>
internal static class YamlSchema
{
    /// <param name="name">What the text is called in messages about its syntax, e.g. the file name.</param>
    /// <param name="read">Reads the document from its root; reports problems on the sections it is given.</param>
    public static (T? Value, IReadOnlyList<string> Errors) Read<T>(string yaml, string name, Func<ConfigSection, T> read)
    {
        var syntax = new List<string>();
        var provider = YamlConfigProvider.Parse(yaml, name, syntax);
        if (syntax.Count > 0)
        {
            return (default, syntax);
        }

        var reader = new ConfigReader(new ConfigurationBuilder().Add(new YamlConfigSource(provider)).Build());
        var value = read(reader.Root);
        reader.ReportUnknownKeys();
        return reader.Errors.Count > 0 ? (default, reader.Errors) : (value, []);
    }
}
