using System.Net;
using Testbed.Load;
using Testbed.Scenarios;

namespace Balancer.Tests.Unit.Testbed.Scenarios;

/// <summary>Each expectation judged over a made-up history: holds when it should, fails with evidence when it should not.</summary>
public sealed class ExpectationTests
{
    private static long _id;

    private static RequestRecord R(double atSeconds, string? backend, int status = 200, string client = "127.0.0.1", double ms = 5, string path = "/", int? retries = 0) =>
        new(Interlocked.Increment(ref _id), TimeSpan.FromSeconds(atSeconds), TimeSpan.FromMilliseconds(ms), client, "GET", path, status, backend, status == 0 ? "connection refused" : null, retries);

    private static readonly RequestRecord[] KillAtThree =
    [
        R(1, "b1"), R(1.5, "b2"), R(2, "b1"), R(2.5, "b2"),
        R(3.1, "b2", 502), R(3.2, "b1"), R(4, "b1"), R(5, "b1"),
    ];

    [Fact]
    public void ErrorRate_CountsFailuresInItsWindowOnly()
    {
        Assert.True(new ErrorRateExpectation(new Window(To: TimeSpan.FromSeconds(3)), 0).Evaluate(KillAtThree).Passed);

        var all = new ErrorRateExpectation(Window.All, 0.1).Evaluate(KillAtThree);

        Assert.False(all.Passed);
        Assert.Equal("12.50% (1 of 8)", all.Measured);
        Assert.Contains("502 from b2", Assert.Single(all.Evidence), StringComparison.Ordinal);
        Assert.True(new ErrorRateExpectation(Window.All, 0.125).Evaluate(KillAtThree).Passed);
    }

    [Fact]
    public void NoRequestsTo_ShowsTheRequestsThatGotThere()
    {
        Assert.True(new NoRequestsToExpectation(new Window(From: TimeSpan.FromSeconds(3.5)), "b2").Evaluate(KillAtThree).Passed);

        var result = new NoRequestsToExpectation(new Window(From: TimeSpan.FromSeconds(3)), "b2").Evaluate(KillAtThree);

        Assert.False(result.Passed);
        Assert.StartsWith("t=3.1s 127.0.0.1 GET / → 502 from b2", Assert.Single(result.Evidence), StringComparison.Ordinal);
    }

    [Fact]
    public void Cache_JudgesTheShareOfAnXCacheResult_AndStatusIsNarrowsAWindow()
    {
        RequestRecord[] history =
        [
            R(1, "b1") with { Cache = "MISS" }, R(1.1, "b1") with { Cache = "HIT" }, R(1.2, "b1") with { Cache = "HIT" }, R(1.3, "b1") with { Cache = "HIT" },
            R(2, "b1", 429), R(2.1, "b1", 429),
        ];

        Assert.True(new CacheExpectation(new Window(Status: 200), "HIT", 0.75, null).Evaluate(history).Passed);
        var all = new CacheExpectation(Window.All, "HIT", 0.75, null).Evaluate(history);
        Assert.False(all.Passed);
        Assert.Equal("50.00% (3 of 6)", all.Measured);
        Assert.Contains("none: 33.33% (2 of 6)", all.Evidence);
        Assert.True(new CacheExpectation(Window.All, "BYPASS", null, 0).Evaluate(history).Passed);
        Assert.Equal(2, new Window(Status: 429).Select(history).Count);
    }

    [Fact]
    public void AnExpectationOverNoRequests_Fails()
    {
        var result = new ErrorRateExpectation(new Window(From: TimeSpan.FromSeconds(10)), 0).Evaluate(KillAtThree);

        Assert.False(result.Passed);
        Assert.Equal("no requests in the window", result.Measured);
    }

    [Theory]
    [InlineData(0.6, 0.7, true)]
    [InlineData(0.7, null, false)]
    [InlineData(null, 0.6, false)]
    public void Share_IsOfTheAnsweredRequests(double? min, double? max, bool passes)
    {
        var result = new ShareExpectation(Window.All, "b1", min, max).Evaluate(KillAtThree);

        Assert.Equal(passes, result.Passed);
        Assert.Equal("62.50% (5 of 8)", result.Measured);
    }

    [Fact]
    public void Latency_JudgesPercentilesOfAnsweredRequests()
    {
        var history = Enumerable.Range(0, 100).Select(i => R(i / 100.0, "b1", ms: i < 98 ? 10 : 900)).Append(R(1, null, status: 0, ms: 10_000)).ToList();

        Assert.True(new LatencyExpectation(Window.All, [("p50", 50, TimeSpan.FromMilliseconds(20)), ("p90", 90, TimeSpan.FromMilliseconds(20))]).Evaluate(history).Passed);
        var p99 = new LatencyExpectation(Window.All, [("p99", 99, TimeSpan.FromMilliseconds(100))]).Evaluate(history);
        Assert.False(p99.Passed);
        Assert.Contains("900", p99.Evidence[0], StringComparison.Ordinal); // the slowest answered request; the unanswered one is not latency
        Assert.True(new LatencyExpectation(Window.All, [("max", 100, TimeSpan.FromSeconds(1))]).Evaluate(history).Passed);
    }

    [Fact]
    public void Status_ListsWhatWasSeen()
    {
        var result = new StatusExpectation(Window.All, new HashSet<int> { 200 }).Evaluate(KillAtThree);

        Assert.False(result.Passed);
        Assert.Equal("200: 7, 502: 1", result.Measured);
        Assert.True(new StatusExpectation(Window.All, new HashSet<int> { 200, 502 }).Evaluate(KillAtThree).Passed);
    }

    [Fact]
    public void Sticky_CountsClientsAnsweredByOneBackend()
    {
        RequestRecord[] history = [R(1, "b1", client: "127.0.0.2"), R(2, "b1", client: "127.0.0.2"), R(1, "b2", client: "127.0.0.3"), R(2, "b1", client: "127.0.0.3"), R(1, "b2", client: "127.0.0.4")];

        var result = new StickyExpectation(Window.All, 1.0).Evaluate(history);

        Assert.False(result.Passed);
        Assert.Equal("50.00% (1 of 2)", result.Measured); // 127.0.0.4 had one answer: it proves nothing
        Assert.StartsWith("127.0.0.3 was answered by", Assert.Single(result.Evidence), StringComparison.Ordinal);
        Assert.True(new StickyExpectation(Window.All, 0.5).Evaluate(history).Passed);
        Assert.True(new StickyExpectation(new Window(Client: new IPNetwork(IPAddress.Parse("127.0.0.2"), 32)), 1.0).Evaluate(history).Passed);
    }

    [Fact]
    public void Sticky_Evidence_NamesTheBusiestBackendsOfAWanderingClient()
    {
        var history = Enumerable.Range(1, 7).SelectMany(b => Enumerable.Range(0, b).Select(_ => R(1, $"b{b}", client: "127.0.0.2"))).ToList();

        var result = new StickyExpectation(Window.All, 1.0).Evaluate(history);

        Assert.Equal("127.0.0.2 was answered by b7 (7), b6 (6), b5 (5), b4 (4) and 3 more backends", Assert.Single(result.Evidence));
    }

    [Fact]
    public void MovedClients_ComparesEachClientsUsualBackendBeforeAndAfter()
    {
        RequestRecord[] history =
        [
            R(1, "b1", client: "127.0.0.2"), R(1, "b2", client: "127.0.0.3"), R(1, "b3", client: "127.0.0.4"), R(1, "b1", client: "127.0.0.5"),
            R(5.3, "b4", client: "127.0.0.2"), R(5.5, "b4", client: "127.0.0.2"), // settling: not counted
            R(7, "b1", client: "127.0.0.2"), R(7, "b4", client: "127.0.0.3"), R(7, "b3", client: "127.0.0.4"), R(7, "b1", client: "127.0.0.5"),
        ];

        var result = new MovedClientsExpectation(Window.All, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1), 0.25).Evaluate(history);

        Assert.True(result.Passed);
        Assert.Equal("25.00% (1 of 4)", result.Measured);
        Assert.False(new MovedClientsExpectation(Window.All, TimeSpan.FromSeconds(5), TimeSpan.Zero, 0.25).Evaluate(history).Passed);
    }

    [Fact]
    public void Requests_CountsAllOrOneBackends()
    {
        Assert.True(new RequestsExpectation(Window.All, null, 8, 8).Evaluate(KillAtThree).Passed);
        Assert.False(new RequestsExpectation(Window.All, "b2", 4, null).Evaluate(KillAtThree).Passed);
        Assert.True(new RequestsExpectation(Window.All, "b2", null, 3).Evaluate(KillAtThree).Passed);
    }

    [Fact]
    public void Retries_NeedEveryRequestFoundInTheAccessLog()
    {
        RequestRecord[] history = [R(1, "b1", retries: 0), R(2, "b1", retries: 2), R(3, "b1", retries: null)];

        var unknown = new RetriesExpectation(Window.All, 5, null).Evaluate(history);
        Assert.False(unknown.Passed);
        Assert.Equal("1 request(s) not found in the access log", unknown.Measured);

        var known = history[..2];
        Assert.True(new RetriesExpectation(Window.All, 1, null).Evaluate(known).Passed);
        Assert.False(new RetriesExpectation(Window.All, 0, null).Evaluate(known).Passed);
        Assert.False(new RetriesExpectation(Window.All, null, 0.4).Evaluate(known).Passed);
    }

    [Fact]
    public void Window_FiltersByPathPrefixAndClientNetwork()
    {
        var window = new Window(Client: new IPNetwork(IPAddress.Parse("127.0.0.0"), 30), Path: "/api");

        Assert.True(window.Covers(R(1, "b1", client: "127.0.0.3", path: "/api/users")));
        Assert.True(window.Covers(R(1, "b1", client: "127.0.0.1", path: "/API")));
        Assert.False(window.Covers(R(1, "b1", client: "127.0.0.4", path: "/api")));
        Assert.False(window.Covers(R(1, "b1", client: "127.0.0.1", path: "/apis")));
        Assert.Equal(" (client 127.0.0.0/30, path /api)", window.Describe());
    }
}
