using Balancer.Configuration;
using Balancer.Explain;

namespace Balancer.Tests.Unit.Explain;

public sealed class ExplainLogTests
{
    private static ExplainLog Keeping(int keep)
    {
        var path = Path.Combine(Path.GetTempPath(), $"explain-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, $"observability: {{ explain: {{ enabled: true, keep: {keep} }} }}\n");
        try
        {
            return new ExplainLog(ConfigLoader.Load(path, [], new Dictionary<string, string>()).Options!);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static DecisionTrace Trace(string path) => new("GET", path, "127.0.0.1", DateTimeOffset.UnixEpoch);

    [Fact]
    public void KeepsTheLastN_ForgettingTheOldest_NewestFirst()
    {
        var log = Keeping(2);

        log.Add(Trace("/1"), "a");
        log.Add(Trace("/2"), "b");
        log.Add(Trace("/3"), "c");

        Assert.Null(log.Find("a"));
        Assert.Equal("/2", log.Find("b")!.Path);
        Assert.Equal("/3", log.Find("C")!.Path); // trace ids are hex: either case finds it
        Assert.Equal(["c", "b"], log.Recent().Select(t => t.Id));
    }

    [Fact]
    public void ATraceIdSentTwice_KeepsBoth_UnderNumberedIds()
    {
        var log = Keeping(10);

        var first = log.Add(Trace("/1"), "a");
        var second = log.Add(Trace("/2"), "a");
        var third = log.Add(Trace("/3"), "a");

        Assert.Equal(["a", "a-2", "a-3"], [first, second, third]);
        Assert.Equal("/2", log.Find("a-2")!.Path);
        Assert.Equal("a-3", log.Find("a-3")!.Id);
    }
}
