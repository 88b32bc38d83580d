using System.Globalization;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Balancer.Configuration;
using Balancer.Explain;
using Balancer.Observability;
using Balancer.Registry;
using Balancer.Redis;
using Yarp.ReverseProxy;

namespace Balancer.Admin;

/// <summary>
/// What the balancer shows of itself on the admin listener: Prometheus metrics, the stats of the seed projects in their
/// own shapes, readiness, and the live event stream. Mapped on the admin group, so the host guard and the token apply.
/// </summary>
internal static class ObservabilityEndpoints
{
    /// <param name="refuse">The admin API's host guard and token check, for what is mapped outside its endpoint filters.</param>
    public static void Map(RouteGroupBuilder admin, BalancerOptions options, Func<HttpContext, IResult?> refuse)
    {
        if (options.Observability.Metrics)
        {
            MetricsExport.Map(admin, refuse);
        }

        // go-load-balancer's GET /api/stats.
        admin.MapGet("/api/stats", (BackendStates states, TrafficStats traffic, IProxyStateLookup proxy, BackendRegistry registry) =>
        {
            var backends = states.All().ToList();
            var tries = backends.Select(b => Traffic(proxy, traffic, b)).ToList();
            var allTries = tries.Sum(t => t?.Requests ?? 0);
            return Results.Json(
                new StatsView(
                    options.Algorithm,
                    "none",
                    traffic.Requests,
                    GoDuration(traffic.Uptime),
                    traffic.Uptime.TotalSeconds,
                    [.. registry.Current.Pools.Select(p => new PoolView(p.Name, p.Algorithm, p.Paths))],
                    [.. LatencyBuckets.UpperBoundsMs.Select(b => double.IsPositiveInfinity(b) ? (double?)null : b)],
                    [.. backends.Select((b, i) => new StatsBackend(
                        b.Address,
                        b.Healthy && !b.Draining,
                        b.Weight,
                        tries[i]?.Requests ?? 0,
                        tries[i]?.Failures ?? 0,
                        allTries == 0 ? 0 : Math.Round(100.0 * (tries[i]?.Requests ?? 0) / allTries, 2),
                        Math.Round(tries[i]?.AverageMilliseconds ?? 0, 3),
                        b.Pool,
                        State(b),
                        b.HealthReason,
                        Math.Round(b.EffectiveWeight, 3),
                        b.ActiveConnections,
                        tries[i]?.Buckets() ?? new long[LatencyBuckets.Count]))]),
                ObservabilityJson.Default.StatsView);
        });

        // go-custom-load-balancer's GET /lb-metrics.
        admin.MapGet("/lb-metrics", (BackendStates states, TrafficStats traffic, IProxyStateLookup proxy) =>
        {
            var backends = states.All().ToList();
            return Results.Json(
                new LbMetricsView(
                    (long)traffic.Uptime.TotalSeconds,
                    traffic.Requests,
                    traffic.Requests - traffic.Failed,
                    traffic.Failed,
                    traffic.Retries,
                    Math.Round(traffic.AverageMilliseconds, 3),
                    backends.Count(b => b.Healthy && !b.Draining),
                    backends.Count,
                    [.. backends.Select(b =>
                    {
                        var tries = Traffic(proxy, traffic, b);
                        return new LbMetricsBackend(b.Address, State(b), b.ActiveConnections, tries?.Requests ?? 0, tries?.Failures ?? 0, b.LastProbeAt);
                    })]),
                LbMetricsJson.Default.LbMetricsView);
        });

        // Readiness: 200 when every pool has a backend to send traffic to, 503 (with what is missing) otherwise.
        admin.MapGet("/api/health", (BackendStates states, RedisConnection redis, BackendRegistry registry) =>
        {
            var backends = states.All().ToList();
            var pools = registry.Current.Pools.Select(p =>
            {
                var own = backends.Where(b => b.Pool.Equals(p.Name, StringComparison.OrdinalIgnoreCase)).ToList();
                return new PoolHealth(p.Name, own.Count(b => b.Healthy && !b.Draining), own.Count);
            }).ToList();
            var serving = pools.Count(p => p.Healthy > 0);
            var status = serving == pools.Count ? "ok" : serving == 0 ? "down" : "degraded";
            return Results.Json(
                new HealthView(status, pools.Sum(p => p.Healthy), pools.Sum(p => p.Total), pools, new RedisHealth(redis.State, redis.Endpoint)),
                ObservabilityJson.Default.HealthView,
                statusCode: status == "ok" ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });

        // The decision traces kept: a list, newest first, and each in full by its id (the X-Balancer-Explain header's id=).
        var explainOff = Results.Problem(statusCode: StatusCodes.Status404NotFound, detail: "the decision trace is off; turn it on with observability.explain.enabled");
        admin.MapGet("/explain", (ExplainLog log) => options.Observability.Explain is null
            ? explainOff
            : Results.Json(log.Recent().Select(t => t.Summary()).ToList(), ExplainJson.Default.ListExplainSummary));
        admin.MapGet("/explain/{id}", (string id, ExplainLog log) => options.Observability.Explain is null
            ? explainOff
            : log.Find(id) is { } trace
                ? Results.Json(trace.View(), ExplainJson.Default.ExplainView)
                : Results.Problem(statusCode: StatusCodes.Status404NotFound, detail: $"no explained request {id} is kept: only the last {log.Keep} are (observability.explain.keep)"));

        // Server-Sent Events: from Last-Event-ID (a reconnect) or ?since=ID (0: everything still kept), else only new ones.
        // Each stream ends when the balancer begins to stop: an open dashboard must not hold the shutdown to its drain timeout.
        admin.MapGet("/events", (HttpRequest request, EventFeed feed, IHostApplicationLifetime lifetime) =>
        {
            var after = long.MaxValue;
            if (long.TryParse(request.Headers["Last-Event-ID"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var last)
                || long.TryParse(request.Query["since"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out last))
            {
                after = last;
            }

            return TypedResults.ServerSentEvents(Stream(feed.Subscribe(after), request.HttpContext.RequestAborted, lifetime.ApplicationStopping));
        });
    }

    private static BackendTraffic? Traffic(IProxyStateLookup proxy, TrafficStats traffic, BackendView backend) =>
        proxy.TryGetCluster(backend.Pool, out var cluster) && cluster.Destinations.TryGetValue(backend.Address, out var destination)
            ? traffic.Of(destination)
            : null;

    /// <summary>One word for where a backend stands: draining, ejected, then its active health.</summary>
    private static string State(BackendView b) => b.Draining ? "draining" : b.Ejected ? "ejected" : b.Health;

    private static async IAsyncEnumerable<SseItem<string>> Stream(EventFeed.Subscription subscription, CancellationToken aborted, CancellationToken stopping, [EnumeratorCancellation] CancellationToken enumeration = default)
    {
        using var _ = subscription;
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(aborted, stopping, enumeration);
        var cancellationToken = ending.Token;
        // A first event at once, so the client (and any proxy on the way) sees the stream open before anything happens.
        yield return new SseItem<string>("subscribed", "hello");
        while (true)
        {
            string? dropped = null;
            var more = false;
            try
            {
                more = await subscription.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (EventFeed.SlowSubscriberException e)
            {
                dropped = e.Message;
            }
            catch (OperationCanceledException)
            {
                // The client left.
            }

            if (dropped is not null)
            {
                yield return new SseItem<string>(dropped, "dropped");
                yield break;
            }

            if (!more)
            {
                yield break;
            }

            while (subscription.Reader.TryRead(out var e))
            {
                yield return new SseItem<string>(JsonSerializer.Serialize(e, ObservabilityJson.Default.BalancerEvent), e.Kind)
                {
                    EventId = e.Id.ToString(CultureInfo.InvariantCulture),
                };
            }
        }
    }

    /// <summary>Go's time.Duration.String(): 1h2m3.5s, 4.25s, 12ms.</summary>
    internal static string GoDuration(TimeSpan t)
    {
        var c = CultureInfo.InvariantCulture;
        if (t < TimeSpan.FromSeconds(1))
        {
            return t.TotalMilliseconds.ToString("0.###", c) + "ms";
        }

        var text = "";
        if (t.TotalHours >= 1)
        {
            text += ((long)t.TotalHours).ToString(c) + "h";
        }

        if (t.TotalMinutes >= 1)
        {
            text += t.Minutes.ToString(c) + "m";
        }

        return text + (t.Seconds + (t.Milliseconds / 1000.0)).ToString("0.###", c) + "s";
    }
}

/// <summary>go-load-balancer's stats, plus what the dashboard needs (pool, state, effective weight, in-flight, durations).</summary>
/// <param name="Method">The default algorithm.</param>
/// <param name="PersistenceType">Session persistence: none (it comes with routing rules).</param>
/// <param name="Uptime">As Go prints a duration, e.g. 1h2m3.5s.</param>
/// <param name="DurationBucketsMs">Upper bounds of each backend's <c>durations</c> counts, in milliseconds (null: beyond the last).</param>
internal sealed record StatsView(
    string Method, string PersistenceType, long TotalRequests, string Uptime, double UptimeSeconds,
    IReadOnlyList<PoolView> Pools, IReadOnlyList<double?> DurationBucketsMs, IReadOnlyList<StatsBackend> Backends);

internal sealed record PoolView(string Name, string Algorithm, IReadOnlyList<string> Paths);

/// <param name="Alive">Takes new requests: healthy, not ejected, not draining.</param>
/// <param name="RequestCount">Tries sent to it (a retried request counts once for each backend it tried).</param>
/// <param name="ErrorCount">Tries it failed: transport errors, timeouts, 5xx answers.</param>
/// <param name="LoadPercentage">Its share of all tries, in percent.</param>
/// <param name="ResponseTimeAvg">Mean try duration, in milliseconds.</param>
/// <param name="Durations">Tries per duration bucket (see DurationBucketsMs); not cumulative.</param>
internal sealed record StatsBackend(
    string Url, bool Alive, int Weight, long RequestCount, long ErrorCount, double LoadPercentage, double ResponseTimeAvg,
    string Pool, string State, string? Reason, double EffectiveWeight, int InFlight, IReadOnlyList<long> Durations);

/// <summary>go-custom-load-balancer's /lb-metrics.</summary>
/// <param name="FailedRequests">Requests answered 5xx (by a backend or the balancer) or cut off.</param>
/// <param name="RetryAttempts">Tries sent again to another backend.</param>
internal sealed record LbMetricsView(
    long UptimeSeconds, long TotalRequests, long SuccessRequests, long FailedRequests, long RetryAttempts, double AvgLatencyMs,
    int HealthyBackends, int TotalBackends, IReadOnlyList<LbMetricsBackend> Backends);

/// <param name="State">healthy, unhealthy, unknown, ejected or draining.</param>
/// <param name="LastChecked">When the latest active probe was answered; null without active checks.</param>
internal sealed record LbMetricsBackend(string Url, string State, int ActiveConnections, long TotalRequests, long TotalFailures, DateTimeOffset? LastChecked);

/// <param name="Redis">Shown, never counted: with Redis down the balancer serves, bypassing the cache and limiting locally.</param>
internal sealed record HealthView(string Status, int HealthyBackends, int TotalBackends, IReadOnlyList<PoolHealth> Pools, RedisHealth Redis);

/// <param name="State">up, down or off (nothing uses Redis).</param>
internal sealed record RedisHealth(string State, string Endpoint);

internal sealed record PoolHealth(string Name, int Healthy, int Total);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(StatsView))]
[JsonSerializable(typeof(HealthView))]
[JsonSerializable(typeof(BalancerEvent))]
internal sealed partial class ObservabilityJson : JsonSerializerContext;

/// <summary>go-custom-load-balancer's names are snake_case.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(LbMetricsView))]
internal sealed partial class LbMetricsJson : JsonSerializerContext;
