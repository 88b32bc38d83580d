using System.Net;
using Balancer.Networking;

namespace Balancer.Configuration;

/// <summary>The whole validated configuration: BalanceHub's schema plus our own sections.</summary>
public sealed record BalancerOptions
{
    /// <summary>The HTTP(S) proxy listener.</summary>
    public required ProxyOptions Proxy { get; init; }

    /// <summary>The binary TCP control plane.</summary>
    public required ControlPlaneOptions ControlPlane { get; init; }

    /// <summary>The REST admin API.</summary>
    public required AdminOptions Admin { get; init; }

    /// <summary>Active health checks of backends (the defaults; each pool may override them).</summary>
    public required HealthCheckOptions HealthChecks { get; init; }

    /// <summary>Passive health: ejecting backends that keep failing real requests.</summary>
    public required OutlierDetectionOptions OutlierDetection { get; init; }

    /// <summary>Retrying failed requests on another backend.</summary>
    public required RetryOptions Retries { get; init; }

    /// <summary>Draining a backend before it leaves.</summary>
    public required DrainOptions Drain { get; init; }

    /// <summary>How algorithms behave: hashing keys, and what happens when no backend is healthy.</summary>
    public required LoadBalancingOptions LoadBalancing { get; init; }

    /// <summary>Redis, for the response cache and shared state.</summary>
    public required RedisOptions Redis { get; init; }

    /// <summary>Canonical name of the default algorithm (<c>BalanceHub.algorithm</c>).</summary>
    public required string Algorithm { get; init; }

    /// <summary>Directory for access logs, absolute; empty when access logging is off.</summary>
    public required string AccessLogsPath { get; init; }

    /// <summary>The SQLite registration database, absolute.</summary>
    public required string DbPath { get; init; }

    /// <summary>Pools of backends; the first is <c>default</c>, from the top-level <c>backends</c>.</summary>
    public required IReadOnlyList<PoolOptions> Pools { get; init; }

    /// <summary>
    /// The route table in the order routes are tried: <c>routes:</c>, pools' path prefixes, and last the default pool's
    /// catch-all (see <see cref="Balancer.Routing.RouteTable"/>).
    /// </summary>
    public required IReadOnlyList<Balancer.Routing.RouteRule> Routes { get; init; }

    /// <summary><c>persistence.key</c>, which signs persistence cookies and headers; null for a key kept in the data directory.</summary>
    public string? PersistenceKey { get; init; }

    /// <summary>Something needs Redis: a pool's response cache or a shared rate limit. Otherwise the balancer never connects.</summary>
    public bool UsesRedis => Pools.Any(p => p.Cache is not null || p.RateLimit is { Shared: true });

    /// <summary><c>reload.watch</c>: reload when the configuration file changes (besides SIGHUP and <c>POST /reload</c>).</summary>
    public bool ReloadOnChange { get; init; }

    /// <summary>Where the configuration was read from, to read it again on a reload; null when built by hand.</summary>
    public ConfigOrigin? Source { get; init; }

    /// <summary>Every key and value as read (file, environment and command line), for telling what a reload changed.</summary>
    public IReadOnlyDictionary<string, string?> Settings { get; init; } = new Dictionary<string, string?>();

    /// <summary>Debug logging (<c>--debug</c> or <c>LB_DEBUG</c>).</summary>
    public bool Debug { get; init; }

    /// <summary>Metrics, tracing and logs.</summary>
    public ObservabilityOptions Observability { get; init; } = new();
}

/// <summary>The configuration file, command line and environment a configuration was read from.</summary>
public sealed record ConfigOrigin(string Path, string[] Args, IReadOnlyDictionary<string, string> Environment);

/// <summary>What the balancer shows of itself.</summary>
public sealed record ObservabilityOptions
{
    /// <summary>Serve <c>GET /metrics</c> (Prometheus) on the admin listener and record the metrics behind it.</summary>
    public bool Metrics { get; init; } = true;

    /// <summary>Also HttpClient's per-request instruments (about 200 bytes a try, and its open-connections gauge, which changes twice a try).</summary>
    public bool HttpClientRequestMetrics { get; init; }

    /// <summary>Also ASP.NET Core's per-request counters (active requests, routing match attempts); its request-duration histogram is always on.</summary>
    public bool AspNetCoreRequestMetrics { get; init; }

    /// <summary>Console logs as one JSON object per line (the built-in JSON console formatter) instead of text.</summary>
    public bool JsonLogs { get; init; }

    /// <summary>Minimum levels by category prefix (<c>Balancer.Health</c>, <c>Yarp</c>, ...), over the defaults.</summary>
    public IReadOnlyDictionary<string, LogLevel> LogLevels { get; init; } = new Dictionary<string, LogLevel>();

    /// <summary>OpenTelemetry tracing; null when off.</summary>
    public TracingOptions? Tracing { get; init; }

    /// <summary>The access log's line format and rotation (where it is written is <c>BalanceHub.access-logs-path</c>).</summary>
    public AccessLogOptions AccessLog { get; init; } = new(AccessLogFormat.Balancer, AccessLogRotation.Default);

    /// <summary>The per-request decision trace ("why this backend"); null when off.</summary>
    public ExplainOptions? Explain { get; init; }
}

/// <summary>
/// Requests that send <c>X-Balancer-Explain: 1</c> from a trusted proxy's address (<c>proxy.trusted-proxies</c>), or with
/// <c>X-Balancer-Token</c> set to the admin token, get a compact decision trace in their response's
/// <c>X-Balancer-Explain</c> header, and the full one at <c>GET /explain/{id}</c> on the admin listener.
/// </summary>
/// <param name="Keep">How many explained requests are kept for <c>GET /explain/{id}</c>; older ones are forgotten.</param>
public sealed record ExplainOptions(int Keep)
{
    public const int DefaultKeep = 100;
}

/// <summary>How access-log lines are written.</summary>
public enum AccessLogFormat
{
    /// <summary>Our own line: time, client, request line, status, duration, pool, backend, retries, user agent.</summary>
    Balancer,

    /// <summary>The NCSA combined format of nginx and Apache, which log tools read.</summary>
    Combined,

    /// <summary>One JSON object per line.</summary>
    Json,
}

/// <param name="Format">The line format.</param>
/// <param name="Rotation">When the file is rotated and how many old ones stay.</param>
public sealed record AccessLogOptions(AccessLogFormat Format, AccessLogRotation Rotation);

/// <summary>
/// When <c>access.log</c> becomes <c>access.log.1</c> (and <c>.1</c> becomes <c>.2</c>, ...): once it would grow past
/// <paramref name="MaxSize"/> bytes, and when a period of <paramref name="Every"/> ends (periods are counted from the
/// Unix epoch, so <c>1h</c> turns on the hour and <c>24h</c> at midnight UTC); zero turns either off. <paramref name="Keep"/> old files stay; older ones are deleted.
/// </summary>
public sealed record AccessLogRotation(long MaxSize, TimeSpan Every, int Keep)
{
    /// <summary>100 MB files, ten kept: at most 1.1 GB on disk.</summary>
    public static readonly AccessLogRotation Default = new(100L * 1024 * 1024, TimeSpan.Zero, 10);

    /// <summary>One file that grows for ever (or until something outside rotates it).</summary>
    public static readonly AccessLogRotation None = new(0, TimeSpan.Zero, 0);
}

/// <summary>Where spans go, and how many.</summary>
/// <param name="OtlpEndpoint">An OTLP/HTTP receiver's base address; spans are posted to <c>v1/traces</c> under it.</param>
/// <param name="SampleRatio">The share of traces kept when the client did not say (its <c>traceparent</c> decides otherwise).</param>
public sealed record TracingOptions(Uri OtlpEndpoint, double SampleRatio);

/// <summary>HTTP or HTTPS on the proxy listener.</summary>
public enum ProxyProtocol
{
    Http,
    Https,
}

/// <summary>The proxy listener and how it forwards.</summary>
public sealed record ProxyOptions
{
    public required IPAddress Bind { get; init; }
    public required int Port { get; init; }
    public required ProxyProtocol Protocol { get; init; }

    /// <summary>PEM certificate and key files, absolute, when <see cref="Protocol"/> is HTTPS.</summary>
    public string? CertificatePath { get; init; }
    public string? CertificateKeyPath { get; init; }

    /// <summary>Peers whose X-Forwarded-* headers are believed and extended; everyone else's are replaced.</summary>
    public required NetworkList TrustedProxies { get; init; }

    /// <summary>How long shutdown waits for in-flight requests.</summary>
    public required TimeSpan DrainTimeout { get; init; }

    /// <summary>How long to wait for a TCP connection to a backend.</summary>
    public required TimeSpan ConnectTimeout { get; init; }

    /// <summary>How long a backend may stay silent (no headers, no body bytes) before the request fails with 504.</summary>
    public required TimeSpan ActivityTimeout { get; init; }

    /// <summary>How long one try may wait for the backend's response headers (504 when it is the last try).</summary>
    public required TimeSpan ResponseHeadersTimeout { get; init; }

    /// <summary>A backend that joins or recovers takes a share of traffic growing linearly over this window (0: at once).</summary>
    public required TimeSpan SlowStart { get; init; }

    /// <summary>
    /// A second proxy listener, HTTP/2 without TLS (h2c, prior knowledge) only, on the same address: for gRPC clients.
    /// Null when off. (Kestrel cannot serve prior-knowledge h2c beside HTTP/1.1 on one cleartext port.)
    /// </summary>
    public int? H2cPort { get; init; }

    /// <summary>The Retry-After sent with a 503 when no backend is available.</summary>
    public required TimeSpan RetryAfter { get; init; }

    public required ProxyLimits Limits { get; init; }
}

/// <summary>Kestrel limits on the proxy listener.</summary>
public sealed record ProxyLimits
{
    public required long MaxRequestBodySize { get; init; }
    public required int MaxRequestHeadersSize { get; init; }
    public required int MaxRequestHeaderCount { get; init; }
    public long? MaxConcurrentConnections { get; init; }
    public required TimeSpan RequestHeadersTimeout { get; init; }
    public required TimeSpan KeepAliveTimeout { get; init; }

    /// <summary>Requests one backend may have in flight at once; 0 for no limit.</summary>
    public required int MaxRequestsPerBackend { get; init; }

    /// <summary>How long a request waits for a backend below its limit before 503.</summary>
    public required TimeSpan QueueTimeout { get; init; }
}

/// <summary>The TCP control plane through which backends register.</summary>
public sealed record ControlPlaneOptions
{
    public required IPAddress Bind { get; init; }
    public required int Port { get; init; }

    /// <summary>Source networks allowed to register (<c>Original-Server.allow</c>).</summary>
    public required NetworkList Allow { get; init; }

    public required TimeSpan IdleTimeout { get; init; }
}

/// <summary>The admin REST API.</summary>
public sealed record AdminOptions
{
    public required IPAddress Bind { get; init; }
    public required int Port { get; init; }

    /// <summary>When set, every admin call needs <c>Authorization: Bearer {Token}</c>. Required unless bound to loopback.</summary>
    public string? Token { get; init; }

    /// <summary>Host names, besides <c>localhost</c> and the listener's addresses, that requests may name in <c>Host</c>.</summary>
    public IReadOnlyList<string> Hosts { get; init; } = [];
}

/// <summary>How a backend is probed.</summary>
public enum ProbeKind
{
    /// <summary>An HTTP request whose status must fall in the expected ranges.</summary>
    Http,

    /// <summary>A TCP connection that must be accepted.</summary>
    Tcp,
}

/// <summary>Active health probes.</summary>
public sealed record HealthCheckOptions
{
    public required bool Enabled { get; init; }
    public required ProbeKind Kind { get; init; }
    public required string Method { get; init; }
    public required string Path { get; init; }

    /// <summary>The statuses an HTTP probe counts as healthy.</summary>
    public required StatusRanges Expect { get; init; }

    public required TimeSpan Interval { get; init; }
    public required TimeSpan Timeout { get; init; }

    /// <summary>Successes in a row that bring an unhealthy backend back.</summary>
    public required int Rise { get; init; }

    /// <summary>Failures in a row that take a healthy backend down.</summary>
    public required int Fall { get; init; }
}

/// <summary>A set of HTTP status ranges, e.g. <c>200-399</c> or <c>200,204-206</c>.</summary>
public sealed record StatusRanges(IReadOnlyList<(int From, int To)> Ranges)
{
    public bool Contains(int status) => Ranges.Any(r => status >= r.From && status <= r.To);

    public override string ToString() => string.Join(",", Ranges.Select(r => r.From == r.To ? $"{r.From}" : $"{r.From}-{r.To}"));
}

/// <summary>Passive health (outlier detection).</summary>
public sealed record OutlierDetectionOptions
{
    public required bool Enabled { get; init; }

    /// <summary>Failed requests in a row (transport errors, timeouts, 5xx) that eject a backend.</summary>
    public required int ConsecutiveFailures { get; init; }

    /// <summary>The first ejection lasts this long; the n-th, n times as long.</summary>
    public required TimeSpan BaseEjectionTime { get; init; }

    public required TimeSpan MaxEjectionTime { get; init; }

    /// <summary>Never eject more than this share of a pool.</summary>
    public required int MaxEjectionPercent { get; init; }
}

/// <summary>Retrying a failed request on another backend.</summary>
public sealed record RetryOptions
{
    /// <summary>Tries in all, the first included: 1 turns retries off.</summary>
    public required int Attempts { get; init; }

    /// <summary>Backend statuses worth another try.</summary>
    public required IReadOnlySet<int> OnStatus { get; init; }

    /// <summary>Methods safe to send twice. (A failed connect is retried whatever the method: nothing was sent.)</summary>
    public required IReadOnlySet<string> Methods { get; init; }

    /// <summary>Retries may add at most this percentage to the load.</summary>
    public required int BudgetPercent { get; init; }

    /// <summary>Request bodies up to this size are kept so they can be sent again; larger ones are not retried.</summary>
    public required long MaxBufferedBody { get; init; }
}

/// <summary>Draining backends.</summary>
public sealed record DrainOptions
{
    /// <summary>A draining backend is removed once idle, or after this long at the latest.</summary>
    public required TimeSpan Timeout { get; init; }
}

/// <summary>What to do when no backend of a pool is healthy.</summary>
public enum AllUnhealthyMode
{
    /// <summary>Answer 503: a request to a backend known to be failing is worse than a fast, honest refusal.</summary>
    Reject,

    /// <summary>Use every backend (Envoy's panic mode): the health checks may be what is wrong.</summary>
    Panic,
}

/// <summary>The <c>load-balancing</c> section.</summary>
public sealed record LoadBalancingOptions
{
    public const int DefaultVirtualNodes = 100;

    /// <summary>What consistent-hash hashes, unless a pool says otherwise.</summary>
    public required Balancer.LoadBalancing.HashKey HashKey { get; init; }

    /// <summary>Ring points per backend of average weight, for consistent-hash.</summary>
    public required int VirtualNodes { get; init; }

    public required AllUnhealthyMode WhenAllUnhealthy { get; init; }

    /// <summary>With <see cref="AllUnhealthyMode.Panic"/>: use every backend once fewer than this percentage are healthy (0: only when none is).</summary>
    public required int PanicThreshold { get; init; }
}

/// <summary>
/// <c>BalanceHub.redis-server</c>: BalanceHub's <c>ip</c>, <c>port</c>, <c>caching</c> and <c>cache-duration</c>, and our
/// connection keys. The balancer connects only when something uses Redis (a pool's cache, a shared rate limit).
/// </summary>
public sealed record RedisOptions
{
    public required string Host { get; init; }
    public required int Port { get; init; }

    /// <summary>The response cache in every pool that does not say otherwise (<c>cache.enabled</c> in a pool).</summary>
    public required bool Caching { get; init; }

    /// <summary>How long a response is kept when its backend says nothing; never longer than what it does say.</summary>
    public required TimeSpan CacheDuration { get; init; }

    /// <summary>Responses larger than this are passed through and not stored.</summary>
    public long MaxObjectSize { get; init; } = 1024 * 1024;

    /// <summary>How long concurrent misses for one key wait for the first to bring the response, before each goes to the backend.</summary>
    public TimeSpan CacheLockTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>AUTH password; never logged.</summary>
    public string? Password { get; init; }

    /// <summary>AUTH user name (Redis 6 ACLs), with <see cref="Password"/>.</summary>
    public string? User { get; init; }

    public int Database { get; init; }

    public bool Tls { get; init; }

    /// <summary>How long one connection attempt may take; attempts go on in the background until one succeeds.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The most a request waits for Redis (a cache lookup, a shared rate limit) before going on without it.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Prefixed to every key the balancer writes, so that several balancers or other users can share a server.</summary>
    public string KeyPrefix { get; init; } = "balancer:";

    /// <summary><c>host:port</c>, as logs and the health endpoint show it.</summary>
    public string Endpoint => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}

/// <summary>A pool's response cache: on, with <see cref="Ttl"/> for responses whose backend gives no lifetime.</summary>
public sealed record PoolCacheOptions(TimeSpan Ttl);

/// <summary>
/// <c>rate-limit</c>: a token bucket per client holding <see cref="Burst"/> tokens, refilled at <see cref="Rate"/>; a
/// request takes one or is answered 429.
/// </summary>
/// <param name="Exempt">Client addresses never limited.</param>
/// <param name="Header">Bucket by this request header's value instead of the client address (by address when it is absent).</param>
/// <param name="Shared">Buckets live in Redis and every balancer using it shares them; local while Redis is away.</param>
/// <param name="MaxClients">Buckets kept at most per pool; a full bucket is the same as none, so only clients being limited count.</param>
public sealed record RateLimitOptions(RequestRate Rate, int Burst, NetworkList Exempt, string? Header, bool Shared, int MaxClients);

/// <summary><c>100/minute</c>, <c>10/s</c>: <see cref="Count"/> requests per <see cref="Per"/>.</summary>
public sealed record RequestRate(int Count, TimeSpan Per)
{
    /// <summary>One token's worth of time: the rate's period over its count.</summary>
    public TimeSpan Interval => Per / Count;

    public override string ToString() => $"{Count}/{ValueParsers.FormatDuration(Per)}";
}

/// <summary>The HTTP version a pool speaks to its backends.</summary>
public enum BackendProtocol
{
    /// <summary>HTTP/1.1 to <c>http://</c> backends; HTTP/2 when TLS's ALPN agrees, else 1.1, to <c>https://</c> ones.</summary>
    Auto,

    /// <summary>HTTP/1.1 only.</summary>
    Http1,

    /// <summary>HTTP/2 only: prior knowledge (h2c) to <c>http://</c> backends, as gRPC servers speak it.</summary>
    Http2,
}

/// <summary>A named set of backends with its own algorithm, serving some path prefixes and what routes send it.</summary>
public sealed record PoolOptions
{
    /// <summary>The pool every request not claimed by another pool goes to.</summary>
    public const string DefaultName = "default";

    public required string Name { get; init; }
    public required string Algorithm { get; init; }

    /// <summary>What consistent-hash hashes in this pool.</summary>
    public Balancer.LoadBalancing.HashKey HashKey { get; init; } = Balancer.LoadBalancing.HashKey.ClientIp;

    /// <summary>Ring points per backend of average weight in this pool.</summary>
    public int VirtualNodes { get; init; } = LoadBalancingOptions.DefaultVirtualNodes;

    /// <summary>How this pool's backends are probed (the global settings unless the pool overrides them).</summary>
    public HealthCheckOptions HealthChecks { get; init; } = ConfigLoader.NoHealthChecks;

    /// <summary>Path prefixes this pool serves (each a route of priority 0); empty for the default pool (everything else) and for pools only <c>routes:</c> lead to.</summary>
    public required IReadOnlyList<string> Paths { get; init; }

    /// <summary>The response cache for this pool's requests; null when off.</summary>
    public PoolCacheOptions? Cache { get; init; }

    /// <summary>Retrying this pool's failed tries (the top-level <c>retries</c> unless the pool overrides them); null in pools built by hand.</summary>
    public RetryOptions? Retries { get; init; }

    /// <summary>How long one try waits for response headers here; null: <c>proxy.response-headers-timeout</c>.</summary>
    public TimeSpan? ResponseHeadersTimeout { get; init; }

    /// <summary>How long this pool's backends may stay silent; null: <c>proxy.activity-timeout</c>.</summary>
    public TimeSpan? ActivityTimeout { get; init; }

    /// <summary>The HTTP version spoken to this pool's backends.</summary>
    public BackendProtocol BackendProtocol { get; init; }

    /// <summary>How this pool keeps a client on one backend.</summary>
    public Balancer.Persistence.PersistenceOptions Persistence { get; init; } = Balancer.Persistence.PersistenceOptions.None;

    /// <summary>Per-client rate limit for this pool's requests; null when off.</summary>
    public RateLimitOptions? RateLimit { get; init; }

    public required IReadOnlyList<BackendOptions> Backends { get; init; }
}

/// <summary>A static backend.</summary>
public sealed record BackendOptions
{
    /// <summary>Normalized <c>scheme://host:port</c>.</summary>
    public required string Address { get; init; }

    public required int Weight { get; init; }

    /// <summary>Path prefixes it is restricted to; empty for none.</summary>
    public IReadOnlyList<string> Paths { get; init; } = [];

    /// <summary>Client networks it is restricted to; empty for none.</summary>
    public NetworkList Clients { get; init; } = NetworkList.Empty;
}
