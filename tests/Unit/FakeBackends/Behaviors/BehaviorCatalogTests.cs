using FakeBackends.Behaviors;

namespace Balancer.Tests.Unit.FakeBackends.Behaviors;

public sealed class BehaviorCatalogTests
{
    private static readonly BehaviorEnvironment Environment = new(TimeProvider.System, new Random(1));

    [Theory]
    [InlineData("latency: 200ms", "latency: 200ms")]
    [InlineData("latency: { min: 10ms, max: 50ms }", "latency: { min: 10ms, max: 50ms }")]
    [InlineData("latency: { p50: 20ms, p99: 300ms }", "latency: { p50: 20ms, p99: 300ms }")]
    [InlineData("fail: 503", "fail: 503")]
    [InlineData("fail: { status: 500, rate: 0.1 }", "fail: { status: 500, rate: 0.1 }")]
    [InlineData("flap: { up: 2s, down: 1s }", "flap: { up: 2s, down: 1s }")]
    [InlineData("flap: { up: 2s, down: 500ms, health-only: true }", "flap: { up: 2s, down: 500ms, health-only: true }")]
    [InlineData("hang", "hang")]
    [InlineData("hang: 0.3", "hang: 0.3")]
    [InlineData("reset", "reset")]
    [InlineData("reset: { when: mid-body, rate: 0.2 }", "reset: { when: mid-body, rate: 0.2 }")]
    [InlineData("slow-close: 2s", "slow-close: 2s")]
    [InlineData("trickle: { rate: 2KB, size: 16KB }", "trickle: { rate: 2KB, size: 16KB }")]
    [InlineData("close-after: 3", "close-after: 3")]
    [InlineData("close-after: { requests: 3, notice: true }", "close-after: { requests: 3, notice: true }")]
    [InlineData("unhealthy", "unhealthy")]
    [InlineData("headers: { Cache-Control: \"max-age=2\", Vary: Accept }", "headers: { Cache-Control: \"max-age=2\", Vary: \"Accept\" }")]
    [InlineData("{ fail: 500, path: /api }", "{ fail: 500, path: /api }")]
    public void Parse_EachBehavior_AndItsSpecReadsBackTheSame(string text, string spec)
    {
        var (behaviors, errors) = BehaviorCatalog.Parse(text, Environment);

        Assert.Empty(errors);
        Assert.Equal(spec, Assert.Single(behaviors!).Spec);
        var (again, _) = BehaviorCatalog.Parse(spec, Environment);
        Assert.Equal(spec, Assert.Single(again!).Spec);
    }

    [Fact]
    public void Parse_AList_InEveryWayYamlWritesOne()
    {
        var flow = BehaviorCatalog.Parse("[latency: 20ms, hang: 0.1, fail: 503]", Environment);
        var block = BehaviorCatalog.Parse("- latency: 20ms\n- hang: 0.1\n- fail: 503", Environment);
        var json = BehaviorCatalog.Parse("""[{"latency": "20ms"}, {"hang": 0.1}, {"fail": 503}]""", Environment);

        foreach (var (behaviors, errors) in new[] { flow, block, json })
        {
            Assert.Empty(errors);
            Assert.Equal("[latency: 20ms, hang: 0.1, fail: 503]", BehaviorCatalog.Describe(behaviors!));
        }
    }

    [Fact]
    public void Healthy_IsNoBehaviorAtAll()
    {
        Assert.Empty(BehaviorCatalog.Parse("healthy", Environment).Behaviors!);
        Assert.Empty(BehaviorCatalog.Parse("[healthy]", Environment).Behaviors!);
        Assert.Equal("healthy", BehaviorCatalog.Describe([]));
    }

    [Theory]
    [InlineData("latncy: 200ms", "behaviors.latncy (line 1): unknown key; did you mean latency?")]
    [InlineData("latency", "behaviors (line 1): latency needs settings, e.g. latency: 200ms")]
    [InlineData("explode", "behaviors (line 1): explode is not a behavior (one of healthy, latency, fail, flap, hang, reset, slow-close, trickle, close-after, unhealthy, headers)")]
    [InlineData("headers: 1", "behaviors.headers (line 1): give the fields to add, e.g. headers: { Cache-Control: \"max-age=2\" }")]
    [InlineData("{ latency: 20ms, fail: 503 }", "behaviors (line 1): one behavior per item, found fail and latency: make each its own item")]
    [InlineData("fail: { status: 700 }", "behaviors.fail.status (line 1): 700 is not an HTTP status (100-599)")]
    [InlineData("hang: 2", "behaviors.hang (line 1): 2 is not a fraction (0-1)")]
    [InlineData("latency: { p50: 300ms, p99: 20ms }", "behaviors.latency.p99 (line 1): needs 0 < p50 <= p99 (p50 is 300ms)")]
    [InlineData("flap: { up: 2s }", "behaviors.flap (line 1): both up and down are needed, each above 0")]
    [InlineData("{ fail: 500, path: api }", "behaviors.path (line 1): api must start with /")]
    [InlineData("- hang\n- explode: 1", "behaviors[1].explode (line 2): unknown key")]
    public void Parse_BadInput_SaysWhatAndWhere(string text, string error)
    {
        var (behaviors, errors) = BehaviorCatalog.Parse(text, Environment);

        Assert.Null(behaviors);
        Assert.Contains(error, errors);
    }
}
