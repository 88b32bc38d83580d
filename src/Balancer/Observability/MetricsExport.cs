using Balancer.Configuration;
using Balancer.Hosting;
using OpenTelemetry.Metrics;

namespace Balancer.Observability;

/// <summary>
/// Metrics in Prometheus' text format, through OpenTelemetry's Prometheus exporter: it turns System.Diagnostics.Metrics
/// into the names Prometheus users and the published ASP.NET Core dashboards expect (<c>http_server_request_duration_seconds</c>,
/// <c>kestrel_active_connections</c>, counters ending in <c>_total</c>), which prometheus-net's meter adapter does not
/// (it prefixes the meter's name and exports counters as gauges). Exported: the balancer's meter, YARP's counters
/// (<see cref="YarpCounters"/>), ASP.NET Core's hosting, routing and Kestrel meters, the backend HttpClients', name
/// resolution, and the runtime's.
/// </summary>
internal static class MetricsExport
{
    public const string Path = "/metrics";

    /// <summary>Series per instrument: enough for a label per backend in large pools (the SDK's default is 2000).</summary>
    private const int CardinalityLimit = 50_000;

    private static readonly string[] Meters =
    [
        BalancerMetrics.MeterName,
        YarpCounters.MeterName,
        "Microsoft.AspNetCore.Hosting",
        "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.Routing",
        "Microsoft.AspNetCore.Diagnostics",
        "System.Net.Http",
        "System.Net.NameResolution",
        "System.Runtime",
    ];

    /// <summary>
    /// HttpClient's instruments that record every try: with any of them on, each try to a backend allocates about 200
    /// bytes more (measured by bench/Allocations), and its open-connections gauge changes twice a try (a connection goes
    /// active, then idle). <c>balancer.try.duration</c>, <c>balancer.tries</c> and <c>balancer.backend.in_flight</c> cover the
    /// same ground per backend, so these are off unless <c>observability.http-client-request-metrics</c> is set. Its
    /// connection-duration histogram stays on.
    /// </summary>
    internal static readonly string[] HttpClientPerRequest =
        ["http.client.request.duration", "http.client.request.time_in_queue", "http.client.active_requests", "http.client.open_connections"];

    /// <summary>
    /// ASP.NET Core's counters that change on every request (the request-duration histogram, which its dashboards are
    /// built on, stays on): off unless <c>observability.aspnetcore-request-metrics</c> is set. Each is a lookup of its
    /// label set in the exporter per change, on the request path.
    /// </summary>
    internal static readonly string[] AspNetCorePerRequest = ["http.server.active_requests", "aspnetcore.routing.match_attempts"];

    public static void Add(IServiceCollection services, ObservabilityOptions options)
    {
        services.AddSingleton<YarpCounters>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(Meters)
            .AddView(instrument => instrument.Meter.Name switch
            {
                BalancerMetrics.MeterName => new MetricStreamConfiguration { CardinalityLimit = CardinalityLimit },
                "System.Net.Http" when !options.HttpClientRequestMetrics && HttpClientPerRequest.Contains(instrument.Name) => MetricStreamConfiguration.Drop,
                "Microsoft.AspNetCore.Hosting" or "Microsoft.AspNetCore.Routing" when !options.AspNetCoreRequestMetrics && AspNetCorePerRequest.Contains(instrument.Name) => MetricStreamConfiguration.Drop,
                _ => null,
            })
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
    }

    /// <summary>Maps <c>GET /metrics</c>, behind <paramref name="refuse"/> (the admin API's host guard and token).</summary>
    public static void Map(IEndpointRouteBuilder admin, Func<HttpContext, IResult?> refuse) =>
        admin.MapPrometheusScrapingEndpoint(Path, meterProvider: null, configureBranchedPipeline: branch => branch.Use(async (context, next) =>
        {
            if (refuse(context) is { } refusal)
            {
                await refusal.ExecuteAsync(context).ConfigureAwait(false);
                return;
            }

            await next(context).ConfigureAwait(false);
        }), optionsName: null).WithMetadata(new ListenerMetadata(ListenerKind.Admin));
}
