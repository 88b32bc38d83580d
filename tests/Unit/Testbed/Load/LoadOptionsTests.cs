using System.Net;
using Testbed.Load;

namespace Balancer.Tests.Unit.Testbed.Load;

public sealed class LoadOptionsTests
{
    [Theory]
    [InlineData("http://10.0.0.1:5000/", "target: 10.0.0.1 is not a loopback address")]
    [InlineData("http://example.com/", "target: example.com is not a loopback address")]
    [InlineData("ftp://127.0.0.1/", "target: ftp://127.0.0.1/ is not an http(s) address")]
    public void TrafficStaysOnThisMachine(string target, string problem)
    {
        var options = new LoadOptions { Target = new Uri(target) };

        Assert.Contains(options.Validate(), p => p.StartsWith(problem, StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => new LoadGenerator(options));
    }

    [Fact]
    public void LoopbackTargetsAndClients_AreFine()
    {
        Assert.Empty(new LoadOptions { Target = new Uri("http://localhost:5000/"), Clients = [IPAddress.Parse("127.0.0.2"), IPAddress.IPv6Loopback] }.Validate());
        Assert.Contains("clients: 192.168.1.5 is not a loopback address", new LoadOptions { Target = new Uri("http://127.0.0.1/"), Clients = [IPAddress.Parse("192.168.1.5")] }.Validate());
    }

    [Fact]
    public void RunsAreBounded()
    {
        var problems = new LoadOptions { Target = new Uri("http://127.0.0.1/"), Duration = TimeSpan.FromHours(2), Rate = 0 }.Validate();

        Assert.Contains(problems, p => p.StartsWith("duration:", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("rate:", StringComparison.Ordinal));
    }

    [Fact]
    public void Thresholds_NameEachOneBroken()
    {
        var records = Enumerable.Range(0, 100).Select(i => new RequestRecord(i, TimeSpan.FromMilliseconds(i * 10), TimeSpan.FromMilliseconds(i < 95 ? 5 : 400), "127.0.0.1", "GET", "/", i < 98 ? 200 : 502, "b1", null)).ToList();
        var summary = LoadSummary.Of(records, TimeSpan.FromSeconds(1));

        var broken = new LoadThresholds(MaxErrorRate: 0.01, MaxP99: TimeSpan.FromMilliseconds(100), MinThroughput: 50).Check(summary);

        Assert.Equal(["error rate 2.00% is above 1.00% (2 of 100)", "p99 400.0 ms is above 100.0 ms"], broken);
        Assert.Equal(100, summary.Throughput);
    }
}
