using Balancer.Explain;

namespace Balancer.Tests.Unit.Explain;

public sealed class DecisionTraceTests
{
    private static readonly DateTimeOffset Noon = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Compact_SaysPoolAvailabilityExclusionsInAWord_AndEachTryWithItsReasonAndRetry()
    {
        var trace = new DecisionTrace("GET", "/shop", "127.0.0.1", Noon) { Id = "abc" };
        trace.Matched("default", "default", "round-robin");
        trace.Candidate("http://b1", 1, 1, 0, null);
        trace.Candidate("http://b2", 1, 1, 0, "unhealthy since 2026-12-03T11:59:58Z: GET /health: connection refused");
        trace.Candidate("http://b3", 1, 1, 0, null);
        trace.BeginTry(1, 2, "off");
        trace.Picked("http://b1", "round-robin: next in the rotation", key: null);
        trace.EndTry("http://b1", "connect-failure", 502, TimeSpan.FromMilliseconds(3));
        trace.Retried("connect failure");
        trace.BeginTry(2, 1, "off");
        trace.Picked("http://b3", "retry: the only one left", key: null);
        trace.SentTo("http://b3", "slow start");
        trace.EndTry("http://b3", "success", 200, TimeSpan.FromMilliseconds(2));
        trace.End(200, TimeSpan.FromMilliseconds(6));

        Assert.Equal(
            "id=abc; pool=default; available=2/3; "
            + "try 1=http://b1 (round-robin: next in the rotation) -> connect-failure 502 retried: connect failure; "
            + "try 2=http://b3 (retry: the only one left) (slow start); "
            + "excluded=http://b2 unhealthy since 2026-12-03T11:59:58Z",
            trace.Compact());
        Assert.Equal(["http://b1", "http://b3"], trace.AvailableBackends());
    }

    [Fact]
    public void Compact_IsPrintableAscii_AndLeavesTheHashKeyToTheFullTrace()
    {
        var trace = new DecisionTrace("GET", "/", "127.0.0.1", Noon) { Id = "abc" };
        trace.Matched("default", "pööl\r\nX-Injected: 1", "consistent-hash");
        trace.Candidate("http://b1", 1, 1, 0, null);
        trace.BeginTry(1, 1, "off");
        trace.Picked("http://b1", "consistent-hash: key header:X-User -> hash 00ff -> ring point 3 of 800 -> http://b1", key: "alice-session-secret");

        var compact = trace.Compact();

        Assert.Equal("id=abc; pool=p??l??X-Injected: 1; available=1/1; try 1=http://b1 (consistent-hash: key header:X-User -> hash 00ff -> ring point 3 of 800 -> http://b1)", compact);
        Assert.Equal("alice-session-secret", Assert.Single(trace.View().Tries).Key);
    }

    [Fact]
    public void ABigPool_ListsItsFirstBackends_CountsTheRest_AndTheHeaderKeepsItsTries()
    {
        var trace = new DecisionTrace("GET", "/", "127.0.0.1", Noon) { Id = "abc" };
        trace.Matched("default", "default", "round-robin");
        for (var i = 0; i < 10_000; i++)
        {
            trace.Candidate($"http://backend-{i}.with-a-rather-long-name.example:8080", i == 9_999 ? 1 : 0, 0, 0, i == 9_999 ? null : "weight 0");
        }

        trace.BeginTry(1, 1, "off");
        trace.Picked("http://backend-9999.with-a-rather-long-name.example:8080", "round-robin: the only backend available", key: null);
        var compact = trace.Compact();
        var view = trace.View();

        Assert.StartsWith("id=abc; pool=default; available=1/10000; try 1=http://backend-9999.", compact, StringComparison.Ordinal);
        Assert.EndsWith($", and {256 - DecisionTrace.MaxCompactExclusions} more", compact, StringComparison.Ordinal);
        Assert.True(compact.Length <= DecisionTrace.MaxCompactLength);
        Assert.Equal(DecisionTrace.MaxCandidates, view.Candidates.Count);
        Assert.Equal("9744 more backends of the pool are not listed (1 of them available before path and client restrictions)", view.Notes[0]);
    }

    [Fact]
    public void Compact_IsCutAtItsBound()
    {
        var trace = new DecisionTrace("GET", "/", "127.0.0.1", Noon) { Id = "abc" };
        trace.Candidate("http://b1", 1, 1, 0, null);
        for (var i = 1; i <= 20; i++)
        {
            trace.BeginTry(i, 1, "off");
            trace.Picked("http://b1", new string('x', 100), key: null);
        }

        var compact = trace.Compact();

        Assert.Equal(DecisionTrace.MaxCompactLength, compact.Length);
        Assert.EndsWith("...", compact, StringComparison.Ordinal);
    }

    [Fact]
    public void View_IsCompleteOnlyOnceTheRequestEnded_AndTheSummaryNamesTheLastBackend()
    {
        var trace = new DecisionTrace("POST", "/orders", "10.0.0.7", Noon) { Id = "abc" };
        trace.Matched("orders", "orders", "least-connections");
        trace.Candidate("http://b1", 1, 1, 0, null);
        trace.BeginTry(1, 1, "off");
        trace.Picked("http://b1", "least-connections: the only backend available", key: null);

        Assert.False(trace.View().Complete);
        Assert.Null(trace.Summary().Status);

        trace.EndTry("http://b1", "success", 201, TimeSpan.FromMilliseconds(4));
        trace.End(201, TimeSpan.FromMilliseconds(5));

        Assert.True(trace.View().Complete);
        Assert.Equal(new ExplainSummary("abc", Noon, "POST", "/orders", 201, "orders", "http://b1", true), trace.Summary());
    }
}
