using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Balancer.Tests.Kit;
using FakeBackends;
using FakeBackends.Behaviors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Trace;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Observability;

/// <summary>OpenTelemetry tracing, exported over OTLP/HTTP to a receiver on loopback, with the context passed to backends.</summary>
public sealed class TracingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task EachTry_IsASpan_WithBackendAttemptAndOutcome_ExportedOverOtlp_AndTheBackendGetsTheTraceparent()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        await using var backends = await Backends.StartAsync(2);
        await using var lb = await TestBalancer.StartAsync($$"""
            BalanceHub: { algorithm: round-robin }
            health-checks: { enabled: false }
            outlier-detection: { enabled: false }
            observability: { tracing: { enabled: true, otlp-endpoint: "{{receiver.Address}}" } }
            {{TestBalancer.BackendsYaml(backends.All)}}
            """, output);
        await backends[1].KillAsync(); // half the requests meet it first and are retried: two tries, two spans
        const string traceId = "4bf92f3577b34da6a3ce929d0e0e4736";

        var echoes = new List<EchoBody>();
        // A client that sends the traceparent it is given: this process listens to HttpClient spans (the balancer's
        // tracing runs in it), and a propagating client would start a trace of its own.
        using var client = new HttpClient(new SocketsHttpHandler { ActivityHeadersPropagator = null }) { BaseAddress = lb.Running.ProxyUri };
        for (var i = 0; i < 4; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/traced/{i}");
            request.Headers.Add("traceparent", $"00-{traceId}-00f067aa0ba902b7-01");
            using var response = await client.SendAsync(request);
            response.EnsureSuccessStatusCode();
            echoes.Add((await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync(response.Content, FakeBackendJson.Default.EchoBody))!);
        }

        // The backend was sent the client's trace, sampled, with a span of the balancer's as the parent.
        var parents = echoes.Select(e =>
        {
            var sent = e.Headers.First(h => h.Key.Equals("traceparent", StringComparison.OrdinalIgnoreCase)).Value;
            Assert.StartsWith($"00-{traceId}-", sent, StringComparison.Ordinal);
            Assert.EndsWith("-01", sent, StringComparison.Ordinal);
            Assert.DoesNotContain("00f067aa0ba902b7", sent, StringComparison.Ordinal);
            return Convert.FromHexString(sent.Split('-')[2]);
        }).ToList();

        var id = Convert.FromHexString(traceId);
        await Eventually.TrueAsync(() => receiver.Has(id) && receiver.Has("proxy try") && receiver.Has(backends[1].Origin) && receiver.Has("balancer.attempt") && receiver.Has("error")
                && parents.All(receiver.Has),
            "the spans, with the dead backend's failed try and the span each backend was given as parent, to reach the OTLP receiver");
        Assert.True(receiver.Has("System.Net.Http")); // the backend HttpClient's spans: those parents
        Assert.True(receiver.Has(backends[0].Origin));
        Assert.True(receiver.Has("/traced/"));
    }

    [Fact]
    public async Task Spans_InTheInMemoryExporter_AreTheRequest_ATryPerBackend_AndTheBackendCallUnderEach_AndNothingForAdminOrProbes()
    {
        var spans = new List<Activity>();
        // Backend 1 answers 503: its try fails with a retryable status, and the request goes on to backend 0.
        await using var backends = await Backends.StartAsync(2, (i, o) => i == 1 ? o with { Behaviors = BehaviorCatalog.From("fail: { status: 503 }") } : o);
        await using var lb = await TestBalancer.StartAsync($$"""
            BalanceHub: { algorithm: round-robin }
            health-checks: { enabled: true, type: http, path: /health, interval: 1s }
            outlier-detection: { enabled: false }
            observability: { tracing: { enabled: true, otlp-endpoint: "http://127.0.0.1:9/" } }
            {{TestBalancer.BackendsYaml(backends.All)}}
            """, output, services: s => s.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(spans)));
        const string traceId = "0af7651916cd43dd8448eb211c80319c";
        using var client = new HttpClient(new SocketsHttpHandler { ActivityHeadersPropagator = null }) { BaseAddress = lb.Running.ProxyUri };

        var results = new List<(string Backend, string Parent)>();
        for (var i = 0; i < 2; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/in-memory/{i}");
            request.Headers.Add("traceparent", $"00-{traceId}-b7ad6b7169203331-01");
            using var response = await client.SendAsync(request);
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            var echo = (await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync(response.Content, FakeBackendJson.Default.EchoBody))!;
            results.Add((echo.Server, echo.Headers.First(h => h.Key.Equals("traceparent", StringComparison.OrdinalIgnoreCase)).Value.Split('-')[2]));
        }

        (await lb.Admin.GetAsync("/api/stats")).Dispose();
        await lb.Running.StopAsync(); // flushes the batch processor

        Activity[] ended;
        lock (spans)
        {
            ended = [.. spans];
        }

        // The tracer provider listens process-wide: balancers of tests running beside this one are in `ended` too, so
        // this test's spans are those of its trace (what the admin call and probes would have made is checked apart).
        Assert.DoesNotContain(ended, a => a.Kind == ActivityKind.Server && (string?)a.GetTagItem("url.path") == "/api/stats");
        Assert.DoesNotContain(ended, a => a.Kind == ActivityKind.Client && backends.All.Any(b => ((string?)a.GetTagItem("url.full"))?.StartsWith($"{b.Origin}/health", StringComparison.Ordinal) == true));
        ended = [.. ended.Where(a => a.TraceId.ToHexString() == traceId)];
        var servers = ended.Where(a => a.Kind == ActivityKind.Server).ToList();
        Assert.Equal(2, servers.Count); // the two proxied requests
        Assert.All(servers, server =>
        {
            Assert.Equal(traceId, server.TraceId.ToHexString());
            Assert.Equal("b7ad6b7169203331", server.ParentSpanId.ToHexString());
            Assert.StartsWith("/in-memory/", (string?)server.GetTagItem("url.path"), StringComparison.Ordinal);
        });

        var tries = ended.Where(a => a.OperationName == "proxy try").ToList();
        Assert.Equal(3, tries.Count); // round robin: request 0 meets backend 0; request 1 meets backend 1, then goes to 0
        Assert.All(tries, t => Assert.Contains(servers, s => s.SpanId == t.ParentSpanId));
        var failed = Assert.Single(tries, t => t.Status == ActivityStatusCode.Error);
        Assert.Equal(backends[1].Origin, failed.GetTagItem("balancer.backend"));
        Assert.Equal("status_5xx", failed.GetTagItem("outcome"));
        Assert.Equal(503, failed.GetTagItem("http.response.status_code"));
        Assert.Equal(1, failed.GetTagItem("balancer.attempt"));
        var retried = Assert.Single(tries, t => t.ParentSpanId == failed.ParentSpanId && t != failed);
        Assert.Equal((backends[0].Origin, "success", 2), ((string?)retried.GetTagItem("balancer.backend"), (string?)retried.GetTagItem("outcome"), (int?)retried.GetTagItem("balancer.attempt")));
        Assert.All(tries, t => Assert.Equal("default", t.GetTagItem("balancer.pool")));

        // Each backend call is a client span under its try, and is the parent the backend was sent.
        var calls = ended.Where(a => a.Kind == ActivityKind.Client).ToList();
        Assert.Equal(3, calls.Count);
        Assert.All(calls, c => Assert.Contains(tries, t => t.SpanId == c.ParentSpanId));
        Assert.All(results, r => Assert.Contains(calls, c => c.SpanId.ToHexString() == r.Parent));
    }


    /// <summary>An OTLP/HTTP receiver: keeps every protobuf body posted to /v1/traces (strings in it are plain UTF-8).</summary>
    private sealed class OtlpReceiver : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentQueue<byte[]> _bodies = new();

        private OtlpReceiver(WebApplication app) => _app = app;

        public Uri Address => new(_app.Urls.First());

        public static async Task<OtlpReceiver> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var receiver = new OtlpReceiver(app);
            app.MapPost("/v1/traces", async (HttpRequest request) =>
            {
                using var body = new MemoryStream();
                await request.Body.CopyToAsync(body);
                receiver._bodies.Enqueue(body.ToArray());
                return Results.Bytes([], "application/x-protobuf");
            });
            await app.StartAsync();
            return receiver;
        }

        public bool Has(string text) => Has(Encoding.UTF8.GetBytes(text));

        public bool Has(byte[] bytes) => _bodies.Any(b => b.AsSpan().IndexOf(bytes) >= 0);

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}
