namespace Balancer.Tests.Kit;

/// <summary>Files of this repository (the shipped config.yaml, the scenario catalogue), found from the test binaries.</summary>
public static class Repository
{
    private static readonly Lazy<string> RootDirectory = new(() =>
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(directory.FullName, "Balancer.sln")))
        {
            directory = directory.Parent ?? throw new InvalidOperationException("the repository root was not found above " + AppContext.BaseDirectory);
        }

        return directory.FullName;
    });

    public static string Root => RootDirectory.Value;

    public static string PathOf(string relative) => Path.Combine(Root, relative);
}
