using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Balancer.Observability;

/// <summary>
/// The balancer's own instruments, on the <c>Balancer</c> meter (System.Diagnostics.Metrics; exported by
/// <see cref="MetricsExport"/>). Names follow OpenTelemetry's conventions where one exists (<c>.duration</c> in
/// seconds, dotted lower case); labels are <c>pool</c> and <c>backend</c> (the backend's address) where it fits.
/// Recording costs a few lookups and no allocation; with metrics off, nothing listens and nothing is recorded.
/// Gauges of backend state are read when scraped (<see cref="BackendGauges"/>), not kept up on the request path.
/// </summary>
internal sealed class BalancerMetrics
{
    public const string MeterName = "Balancer";

    private static readonly string[] StatusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"];

    /// <summary>Seconds, from half a millisecond (a proxied request on loopback) to 30 s (the default response-headers timeout).</summary>
    private static readonly double[] Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _tries;
    private readonly Histogram<double> _tryDuration;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _budgetRefusals;
    private readonly Counter<long> _healthTransitions;
    private readonly Counter<long> _ejections;
    private readonly Counter<long> _registrations;
    private readonly Counter<long> _controlPlanePackets;
    private readonly Counter<long> _redisErrors;
    private readonly Histogram<double> _redisDuration;
    private readonly Counter<long> _rateLimited;
    private readonly Counter<long> _cacheRequests;
    private readonly Counter<long> _cacheStores;
    private readonly Counter<long> _cacheEvictions;
    private readonly Counter<long> _webSockets;
    private readonly UpDownCounter<long> _webSocketsOpen;

    public BalancerMetrics(IMeterFactory meters)
    {
        Meter = meters.Create(MeterName);
        _requests = Meter.CreateCounter<long>("balancer.requests", "{request}", "Proxied requests, by pool, backend and status class (1xx-5xx)");
        _duration = Meter.CreateHistogram<double>("balancer.request.duration", "s", "Time from request to the end of the response, by pool, backend and status class",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });
        _tries = Meter.CreateCounter<long>("balancer.tries", "{try}", "Tries sent to backends (a retried request makes several), by pool, backend and outcome");
        _tryDuration = Meter.CreateHistogram<double>("balancer.try.duration", "s", "Time a try took, from sending it to the backend to the end of its response, by pool, backend and outcome",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });
        _retries = Meter.CreateCounter<long>("balancer.retries", "{retry}", "Tries sent again to another backend, by pool and reason");
        _budgetRefusals = Meter.CreateCounter<long>("balancer.retry.budget.refusals", "{retry}", "Retries the pool's retry budget refused, by pool");
        _healthTransitions = Meter.CreateCounter<long>("balancer.health.transitions", "{transition}", "Active health state changes, by pool, backend and state reached (up, down)");
        _ejections = Meter.CreateCounter<long>("balancer.outlier.ejections", "{ejection}", "Backends ejected by outlier detection, by pool and backend");
        _registrations = Meter.CreateCounter<long>("balancer.registrations", "{change}", "Registry changes asked for, by who asked (api, control-plane, drain), operation and result");
        _redisErrors = Meter.CreateCounter<long>("balancer.redis.errors", "{call}", "Redis calls made for a request that failed or took longer than redis-server.timeout, by operation and error (timeout, connection, server)");
        _redisDuration = Meter.CreateHistogram<double>("balancer.redis.duration", "s", "Time of Redis calls made for a request, by operation",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });
        _rateLimited = Meter.CreateCounter<long>("balancer.rate_limit.requests", "{request}", "Requests a pool's rate limit weighed, by pool, result (allowed, limited) and store (local, redis)");
        _cacheRequests = Meter.CreateCounter<long>("balancer.cache.requests", "{request}", "Requests in a pool with the response cache, by pool and result (hit, miss, bypass)");
        _cacheStores = Meter.CreateCounter<long>("balancer.cache.stores", "{response}", "Responses the cache kept or could not keep, by pool and result (stored, too-large, dropped, failed)");
        _cacheEvictions = Meter.CreateCounter<long>("balancer.cache.evictions", "{entry}", "Cached entries removed before they expired, by reason (purge)");
        _webSockets = Meter.CreateCounter<long>("balancer.websockets", "{websocket}", "WebSockets proxied (upgraded), by pool");
        _webSocketsOpen = Meter.CreateUpDownCounter<long>("balancer.websockets.open", "{websocket}", "WebSockets open now, by pool");
        _controlPlanePackets = Meter.CreateCounter<long>("balancer.control_plane.packets", "{packet}", "Control-plane packets, by action (add, remove, drain; unknown when unreadable, connection for a refused peer) and result");
    }

    public Meter Meter { get; }

    /// <summary>Starts a pool's rare counters at zero, so that rate() over them works before the first event.</summary>
    public void Initialize(string pool) => _budgetRefusals.Add(0, new KeyValuePair<string, object?>("pool", pool));

    public void Request(string pool, string backend, int status, TimeSpan duration)
    {
        var tags = new TagList
        {
            { "pool", pool },
            { "backend", backend },
            { "status_class", StatusClass(status) },
        };
        _requests.Add(1, tags);
        _duration.Record(duration.TotalSeconds, tags);
    }

    public void Try(string pool, string backend, string outcome, TimeSpan duration)
    {
        var tags = new TagList
        {
            { "pool", pool },
            { "backend", backend },
            { "outcome", outcome },
        };
        _tries.Add(1, tags);
        _tryDuration.Record(duration.TotalSeconds, tags);
    }

    public void Retry(string pool, string reason) =>
        _retries.Add(1, new KeyValuePair<string, object?>("pool", pool), new KeyValuePair<string, object?>("reason", reason));

    public void RedisCall(string operation, TimeSpan duration, string? error)
    {
        _redisDuration.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("operation", operation));
        if (error is not null)
        {
            _redisErrors.Add(1, new KeyValuePair<string, object?>("operation", operation), new KeyValuePair<string, object?>("error", error));
        }
    }

    public void RateLimit(string pool, bool limited, bool shared) =>
        _rateLimited.Add(1, new KeyValuePair<string, object?>("pool", pool), new KeyValuePair<string, object?>("result", limited ? "limited" : "allowed"),
            new KeyValuePair<string, object?>("store", shared ? "redis" : "local"));

    public void CacheRequest(string pool, string result) =>
        _cacheRequests.Add(1, new KeyValuePair<string, object?>("pool", pool), new KeyValuePair<string, object?>("result", result));

    public void CacheStore(string pool, string result) =>
        _cacheStores.Add(1, new KeyValuePair<string, object?>("pool", pool), new KeyValuePair<string, object?>("result", result));

    public void CacheEvictions(long count, string reason) => _cacheEvictions.Add(count, new KeyValuePair<string, object?>("reason", reason));

    public void WebSocketOpened(string pool)
    {
        var tag = new KeyValuePair<string, object?>("pool", pool);
        _webSockets.Add(1, tag);
        _webSocketsOpen.Add(1, tag);
    }

    public void WebSocketClosed(string pool) => _webSocketsOpen.Add(-1, new KeyValuePair<string, object?>("pool", pool));

    public void BudgetRefusal(string pool) => _budgetRefusals.Add(1, new KeyValuePair<string, object?>("pool", pool));

    public void HealthTransition(string pool, string backend, string state) =>
        _healthTransitions.Add(1, new KeyValuePair<string, object?>("pool", pool), new KeyValuePair<string, object?>("backend", backend), new KeyValuePair<string, object?>("state", state));

    public void Ejection(string pool, string backend) =>
        _ejections.Add(1, new KeyValuePair<string, object?>("pool", pool), new KeyValuePair<string, object?>("backend", backend));

    public void Registration(string source, string operation, string result) =>
        _registrations.Add(1, new KeyValuePair<string, object?>("source", source), new KeyValuePair<string, object?>("operation", operation), new KeyValuePair<string, object?>("result", result));

    public void ControlPlanePacket(string action, string result) =>
        _controlPlanePackets.Add(1, new KeyValuePair<string, object?>("action", action), new KeyValuePair<string, object?>("result", result));

    /// <summary>Counts the events that have counters of their own: health transitions and ejections.</summary>
    public void Count(BalancerEvent e)
    {
        switch (e.Kind)
        {
            case EventKinds.Up or EventKinds.Down:
                HealthTransition(e.Pool, e.Backend, e.Kind);
                break;
            case EventKinds.Ejected:
                Ejection(e.Pool, e.Backend);
                break;
        }
    }

    public static string StatusClass(int status) => status is >= 100 and < 600 ? StatusClasses[(status / 100) - 1] : "other";
}
