using System.Diagnostics;
using Balancer.Configuration;
using Balancer.Hosting;
using OpenTelemetry.Exporter;
using OpenTelemetry.Trace;

namespace Balancer.Observability;

/// <summary>
/// OpenTelemetry tracing, off unless <c>observability.tracing.enabled</c>: ASP.NET Core's span for each proxied
/// request (admin calls are not traced), under it one span per try (<see cref="Tracing"/>), under that the backend
/// HttpClient's span, whose context the backend receives as <c>traceparent</c>. Health probes are not traced. Spans go
/// to an OTLP/HTTP endpoint (a collector, Jaeger, Tempo), sampled by trace id unless the client's request was
/// already sampled or not.
/// </summary>
internal static class TracingSetup
{
    public static void Add(IServiceCollection services, TracingOptions options) =>
        services.AddOpenTelemetry()
            .WithTracing(tracing => tracing
                .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(options.SampleRatio)))
                .AddSource(Tracing.SourceName)
                .AddAspNetCoreInstrumentation(o => o.Filter = context => Listeners.Of(context) == ListenerKind.Proxy)
                .AddHttpClientInstrumentation(o => o.FilterHttpRequestMessage = _ => Activity.Current?.Parent?.Source.Name == Tracing.SourceName) // its own activity is current: a try's, not a probe's
                .AddOtlpExporter(o =>
                {
                    o.Protocol = OtlpExportProtocol.HttpProtobuf;
                    o.Endpoint = new Uri(options.OtlpEndpoint, "v1/traces");
                }));
}
