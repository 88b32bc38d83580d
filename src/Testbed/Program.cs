namespace Testbed;

internal static class Program
{
    public static int Main()
    {
        Console.Error.WriteLine("testbed: the scenario runner is not built yet; see README.md (Scenario catalogue).");
        return 2;
    }
}
