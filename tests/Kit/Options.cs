using Balancer.Configuration;

namespace Balancer.Tests.Kit;

/// <summary>Options as an empty config.yaml gives them.</summary>
public static class Options
{
    private static readonly Lazy<BalancerOptions> Defaults = new(() =>
    {
        var directory = Directory.CreateTempSubdirectory("lb-defaults-").FullName;
        var path = Path.Combine(directory, "config.yaml");
        File.WriteAllText(path, "");
        var options = ConfigLoader.Load(path, [], new Dictionary<string, string>()).Options!;
        Directory.Delete(directory, recursive: true);
        return options;
    });

    public static BalancerOptions Default => Defaults.Value;
}
