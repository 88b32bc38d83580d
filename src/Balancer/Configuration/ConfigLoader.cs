using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Balancer.LoadBalancing;
using Balancer.Networking;
using Balancer.Persistence;
using Balancer.Routing;

namespace Balancer.Configuration;

/// <summary>The outcome of loading: options, or every error found; or the help text when asked for.</summary>
public sealed record ConfigLoadResult(BalancerOptions? Options, IReadOnlyList<string> Errors, string? Help = null);

/// <summary>
/// Loads <c>config.yaml</c>, then applies environment overrides (<c>LB_*</c>) and command-line overrides,
/// command line winning over environment winning over file, and validates the result in one pass.
/// </summary>
public static partial class ConfigLoader
{
    public const string EnvironmentPrefix = "LB_";
    public const string DefaultPath = "config.yaml";

    private static readonly Dictionary<string, ProxyProtocol> Protocols = new() { ["HTTP"] = ProxyProtocol.Http, ["HTTPS"] = ProxyProtocol.Https };
    private static readonly Dictionary<string, AllUnhealthyMode> AllUnhealthyModes = new() { ["reject"] = AllUnhealthyMode.Reject, ["panic"] = AllUnhealthyMode.Panic };
    private static readonly Dictionary<string, BackendProtocol> BackendProtocols = new(StringComparer.OrdinalIgnoreCase)
    {
        ["auto"] = BackendProtocol.Auto, ["http1"] = BackendProtocol.Http1, ["http2"] = BackendProtocol.Http2,
    };

    private static readonly Dictionary<string, ProbeKind> ProbeKinds = new() { ["http"] = ProbeKind.Http, ["tcp"] = ProbeKind.Tcp };

    /// <summary>Health checks off: what a pool built by hand (not from config) has.</summary>
    public static readonly HealthCheckOptions NoHealthChecks = new()
    {
        Enabled = false,
        Kind = ProbeKind.Tcp,
        Method = "GET",
        Path = "/health",
        Expect = new StatusRanges([(200, 399)]),
        Interval = TimeSpan.FromSeconds(2),
        Timeout = TimeSpan.FromSeconds(1),
        Rise = 2,
        Fall = 2,
    };

    /// <summary>
    /// Health checks when config.yaml says nothing: on, with a probe every backend answers (a TCP connect) every 2 s,
    /// so a dead backend is out within two probes and a restarted one back within two.
    /// </summary>
    public static readonly HealthCheckOptions DefaultHealthChecks = NoHealthChecks with { Enabled = true };

    /// <summary>The configuration file to read: <c>--config</c>, else <c>LB_CONFIG</c>, else <c>config.yaml</c>.</summary>
    public static string ConfigPath(string[] args, IReadOnlyDictionary<string, string> environment) =>
        CommandLine.Parse(args).ConfigPath
        ?? environment.GetValueOrDefault(EnvironmentPrefix + "CONFIG")
        ?? DefaultPath;

    private static readonly Dictionary<string, bool> LogFormats = new(StringComparer.OrdinalIgnoreCase) { ["text"] = false, ["json"] = true };

    private static readonly Dictionary<string, LogLevel> Levels = new(StringComparer.OrdinalIgnoreCase)
    {
        ["trace"] = LogLevel.Trace, ["debug"] = LogLevel.Debug, ["information"] = LogLevel.Information, ["info"] = LogLevel.Information,
        ["warning"] = LogLevel.Warning, ["warn"] = LogLevel.Warning, ["error"] = LogLevel.Error, ["critical"] = LogLevel.Critical, ["none"] = LogLevel.None,
    };

    /// <summary><c>observability.tracing: { enabled: true, otlp-endpoint: http://127.0.0.1:4318, sample-ratio: 0.1 }</c>.</summary>
    private static TracingOptions? ReadTracing(ConfigSection tracing)
    {
        var enabled = tracing.Value("enabled", false, ValueParsers.Bool);
        var endpoint = tracing.Value("otlp-endpoint", new Uri("http://127.0.0.1:4318/"), HttpUrl);
        var ratio = tracing.Value("sample-ratio", 1.0, ValueParsers.Fraction);
        return enabled ? new TracingOptions(endpoint, ratio) : null;
    }

    /// <summary><c>observability.explain: { enabled: true, keep: 100 }</c>.</summary>
    private static ExplainOptions? ReadExplain(ConfigSection explain)
    {
        var enabled = explain.Value("enabled", false, ValueParsers.Bool);
        var keep = explain.Value("keep", ExplainOptions.DefaultKeep, ValueParsers.Int(1, 1000, "a number of explained requests"));
        return enabled ? new ExplainOptions(keep) : null;
    }

    private static readonly Dictionary<string, AccessLogFormat> AccessLogFormats = new(StringComparer.OrdinalIgnoreCase)
    {
        ["balancer"] = AccessLogFormat.Balancer, ["combined"] = AccessLogFormat.Combined, ["json"] = AccessLogFormat.Json,
    };

    /// <summary><c>observability.access-log: { format: json, max-size: 100MB, rotate-every: 24h, keep: 10 }</c>; 0 turns a rotation off.</summary>
    private static AccessLogOptions ReadAccessLog(ConfigSection log)
    {
        var defaults = AccessLogRotation.Default;
        var format = log.Value("format", AccessLogFormat.Balancer, ValueParsers.OneOf(AccessLogFormats));
        var maxSize = log.Value("max-size", defaults.MaxSize, ZeroOr(ValueParsers.SizeBetween(64 * 1024, 1024L * 1024 * 1024 * 1024)));
        var every = log.Value("rotate-every", defaults.Every, ZeroOr<TimeSpan>(RotationPeriod));
        var keep = log.Value("keep", defaults.Keep, ValueParsers.Int(0, 1000, "a number of old files"));
        return new AccessLogOptions(format, new AccessLogRotation(maxSize, every, keep));
    }

    private static bool RotationPeriod(string raw, out TimeSpan value, out string error)
    {
        if (!ValueParsers.Duration(raw, out value, out error))
        {
            return false;
        }

        if (value >= TimeSpan.FromMinutes(1))
        {
            return true;
        }

        error = $"{raw} is shorter than a minute (e.g. 1h, 24h; 0 = no rotation by time)";
        return false;
    }

    /// <summary><c>0</c> (off), else what <paramref name="parser"/> accepts.</summary>
    private static ValueParser<T> ZeroOr<T>(ValueParser<T> parser) =>
        (string raw, out T value, out string error) =>
        {
            if (raw.Trim() == "0")
            {
                (value, error) = (default!, "");
                return true;
            }

            return parser(raw, out value, out error);
        };

    private static bool HttpUrl(string raw, out Uri value, out string error)
    {
        if (Uri.TryCreate(raw.EndsWith('/') ? raw : raw + "/", UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Query.Length == 0)
        {
            (value, error) = (uri, "");
            return true;
        }

        (value, error) = (null!, $"'{raw}' is not an http:// or https:// URL (an OTLP/HTTP receiver, e.g. http://127.0.0.1:4318)");
        return false;
    }

    /// <summary><c>observability.logs.levels: { Balancer.Health: debug, Yarp: warning }</c>: a level per category prefix.</summary>
    private static Dictionary<string, LogLevel> ReadLogLevels(ConfigSection levels)
    {
        var read = new Dictionary<string, LogLevel>(StringComparer.Ordinal);
        foreach (var category in levels.Keys)
        {
            read[category] = levels.Value(category, LogLevel.Information, ValueParsers.OneOf(Levels));
        }

        return read;
    }

    /// <summary>Loads from the process's own command line and environment.</summary>
    public static ConfigLoadResult Load(string[] args)
    {
        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal);
        return Load(ConfigPath(args, environment), args, environment);
    }

    public static ConfigLoadResult Load(string path, string[] args, IReadOnlyDictionary<string, string> environment)
    {
        var commandLine = CommandLine.Parse(args);
        if (commandLine.Help is not null)
        {
            return new ConfigLoadResult(null, [], commandLine.Help);
        }

        var fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
        {
            return new ConfigLoadResult(null, [.. commandLine.Errors, $"{path}: file not found"]);
        }

        if (YamlConfigProvider.ReadFile(fullPath, path, out var tooLarge) is not { } text)
        {
            return new ConfigLoadResult(null, [.. commandLine.Errors, tooLarge]);
        }

        var syntaxErrors = new List<string>();
        IConfigurationSource file = LoadBalancerConfProvider.Handles(fullPath)
            ? new LoadBalancerConfSource(LoadBalancerConfProvider.Parse(text, Path.GetFileName(fullPath), syntaxErrors))
            : new YamlConfigSource(YamlConfigProvider.Parse(text, Path.GetFileName(fullPath), syntaxErrors));
        if (syntaxErrors.Count > 0)
        {
            return new ConfigLoadResult(null, [.. commandLine.Errors, .. syntaxErrors]);
        }

        var root = new ConfigurationBuilder()
            .Add(file)
            .Add(new OverridesSource(OverridesProvider.FromEnvironment(environment)))
            .Add(new OverridesSource(new OverridesProvider(commandLine.Overrides)))
            .Build();
        var reader = new ConfigReader(root);
        foreach (var error in commandLine.Errors)
        {
            reader.AddGeneralError(error);
        }

        var debug = commandLine.Debug || (environment.TryGetValue(EnvironmentPrefix + "DEBUG", out var flag) && ValueParsers.Bool(flag, out var on, out _) && on);
        var options = Read(reader.Root, Path.GetDirectoryName(fullPath)!, debug, commandLine.Persistence) with
        {
            Source = new ConfigOrigin(path, args, environment),
            Settings = root.AsEnumerable().Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.OrdinalIgnoreCase),
        };
        reader.ReportUnknownKeys();
        return reader.Errors.Count > 0 ? new ConfigLoadResult(null, reader.Errors) : new ConfigLoadResult(options, []);
    }

    private static BalancerOptions Read(ConfigSection root, string baseDirectory, bool debug, string? persistenceFlag)
    {
        var original = root.Section("Original-Server");
        var allow = original.Values<IPNetwork>("allow", ValueParsers.Network);

        var hub = root.Section("BalanceHub");
        var listen = hub.Value("listen", 5000, ValueParsers.Port);
        var tcpListener = hub.Value("tcpListener", 5050, ValueParsers.Port);
        var protocol = hub.Value("protocol", ProxyProtocol.Http, ValueParsers.OneOf(Protocols));
        var certificate = ExistingFile(hub, "ssl_certificate", protocol, baseDirectory);
        var certificateKey = ExistingFile(hub, "ssl_certificate_key", protocol, baseDirectory);
        if (certificate is not null && certificateKey is not null)
        {
            try
            {
                using var loaded = X509Certificate2.CreateFromPemFile(certificate, certificateKey);
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException or IOException or UnauthorizedAccessException)
            {
                hub.Error("ssl_certificate", $"{certificate} is not a PEM certificate with a matching PEM private key in {certificateKey}: {e.Message}");
            }
        }
        var algorithm = hub.Value("algorithm", AlgorithmNames.RoundRobin, ValueParsers.Algorithm);
        var accessLogs = hub.String("access-logs-path");
        var dbPath = hub.String("db-path");
        var redis = ReadRedis(hub.Section("redis-server"));

        var proxy = root.Section("proxy");
        var limits = proxy.Section("limits");
        var proxyOptions = new ProxyOptions
        {
            Bind = proxy.Value("bind", IPAddress.IPv6Any, ValueParsers.BindAddress),
            Port = listen,
            Protocol = protocol,
            CertificatePath = certificate,
            CertificateKeyPath = certificateKey,
            TrustedProxies = new NetworkList(proxy.Values<IPNetwork>("trusted-proxies", ValueParsers.Network) ?? []),
            DrainTimeout = proxy.Value("drain-timeout", TimeSpan.FromSeconds(30), ValueParsers.Duration),
            ConnectTimeout = proxy.Value("connect-timeout", TimeSpan.FromSeconds(5), ValueParsers.PositiveDuration),
            ActivityTimeout = proxy.Value("activity-timeout", TimeSpan.FromSeconds(100), ValueParsers.PositiveDuration),
            ResponseHeadersTimeout = proxy.Value("response-headers-timeout", TimeSpan.FromSeconds(30), ValueParsers.PositiveDuration),
            SlowStart = proxy.Value("slow-start", TimeSpan.Zero, ValueParsers.Duration),
            H2cPort = proxy.Has("h2c-port") ? proxy.Value<int?>("h2c-port", null, (string raw, out int? value, out string error) =>
            {
                var ok = ValueParsers.Port(raw, out var port, out error);
                value = port;
                return ok;
            }) : null,
            RetryAfter = proxy.Value("retry-after", TimeSpan.FromSeconds(5), ValueParsers.Duration),
            Limits = new ProxyLimits
            {
                MaxRequestBodySize = limits.Value("max-request-body-size", 30L * 1024 * 1024, ValueParsers.Size),
                MaxRequestHeadersSize = (int)limits.Value("max-request-headers-size", 32L * 1024, ValueParsers.SizeBetween(1, 64L * 1024 * 1024)),
                MaxRequestHeaderCount = limits.Value("max-request-header-count", 100, ValueParsers.Int(1, 10_000, "a header count")),
                MaxConcurrentConnections = limits.Has("max-concurrent-connections")
                    ? limits.Value("max-concurrent-connections", 0, ValueParsers.Int(1, 10_000_000, "a connection count"))
                    : null,
                RequestHeadersTimeout = limits.Value("request-headers-timeout", TimeSpan.FromSeconds(30), ValueParsers.PositiveDuration),
                KeepAliveTimeout = limits.Value("keep-alive-timeout", TimeSpan.FromSeconds(130), ValueParsers.PositiveDuration),
                MaxRequestsPerBackend = limits.Value("max-requests-per-backend", 0, ValueParsers.Int(0, 1_000_000, "a number of requests")),
                QueueTimeout = limits.Value("queue-timeout", TimeSpan.FromSeconds(1), ValueParsers.Duration),
            },
        };

        var controlPlane = root.Section("control-plane");
        var controlPlaneOptions = new ControlPlaneOptions
        {
            Bind = controlPlane.Value("bind", IPAddress.Loopback, ValueParsers.BindAddress),
            Port = tcpListener,
            Allow = allow is null ? NetworkList.Loopback : new NetworkList(allow),
            IdleTimeout = controlPlane.Value("idle-timeout", TimeSpan.FromSeconds(30), ValueParsers.PositiveDuration),
        };

        var admin = root.Section("admin");
        var adminOptions = new AdminOptions
        {
            Bind = admin.Value("bind", IPAddress.Loopback, ValueParsers.BindAddress),
            Port = admin.Value("port", 8081, ValueParsers.Port),
            Token = admin.String("token") is { Length: > 0 } token ? token : null,
            Hosts = admin.Values<string>("hosts", ValueParsers.HostName) ?? [],
        };
        if (!IPAddress.IsLoopback(adminOptions.Bind) && adminOptions.Token is null)
        {
            admin.Error("bind", $"{(adminOptions.Bind.Equals(IPAddress.IPv6Any) ? "*" : adminOptions.Bind)} is not a loopback address: set admin.token, or anyone who can reach the admin API could change the backends");
        }

        var healthOptions = ReadHealthChecks(root, DefaultHealthChecks);
        var rateLimit = ReadRateLimit(root, null);
        var persistence = PersistenceReader.Read(root, PersistenceOptions.None);
        if (persistenceFlag is not null)
        {
            persistence = PersistenceReader.Flag(root.Reader, persistenceFlag, persistence);
        }
        var persistenceKey = PersistenceReader.Key(root);
        var outliers = root.Section("outlier-detection");
        var outlierOptions = new OutlierDetectionOptions
        {
            Enabled = outliers.Value("enabled", true, ValueParsers.Bool),
            ConsecutiveFailures = outliers.Value("consecutive-failures", 5, ValueParsers.Int(1, 1000, "a count")),
            BaseEjectionTime = outliers.Value("base-ejection-time", TimeSpan.FromSeconds(30), ValueParsers.PositiveDuration),
            MaxEjectionTime = outliers.Value("max-ejection-time", TimeSpan.FromMinutes(5), ValueParsers.PositiveDuration),
            MaxEjectionPercent = outliers.Value("max-ejection-percent", 50, ValueParsers.Int(0, 100, "a percentage")),
        };
        if (outlierOptions.MaxEjectionTime < outlierOptions.BaseEjectionTime)
        {
            outliers.Error("max-ejection-time", $"is shorter than base-ejection-time ({ValueParsers.FormatDuration(outlierOptions.BaseEjectionTime)})");
        }

        var retryOptions = ReadRetries(root, new RetryOptions
        {
            Attempts = 3,
            OnStatus = new HashSet<int> { 502, 503, 504 },
            Methods = new HashSet<string>(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"], StringComparer.OrdinalIgnoreCase),
            BudgetPercent = 20,
            MaxBufferedBody = 64L * 1024,
        });
        var drain = root.Section("drain");
        var drainOptions = new DrainOptions { Timeout = drain.Value("timeout", TimeSpan.FromSeconds(60), ValueParsers.Duration) };

        var observability = root.Section("observability");
        var observabilityOptions = new ObservabilityOptions
        {
            Metrics = observability.Value("metrics", true, ValueParsers.Bool),
            HttpClientRequestMetrics = observability.Value("http-client-request-metrics", false, ValueParsers.Bool),
            AspNetCoreRequestMetrics = observability.Value("aspnetcore-request-metrics", false, ValueParsers.Bool),
            JsonLogs = observability.Section("logs").Value("format", false, ValueParsers.OneOf(LogFormats)),
            LogLevels = ReadLogLevels(observability.Section("logs").Section("levels")),
            Tracing = ReadTracing(observability.Section("tracing")),
            AccessLog = ReadAccessLog(observability.Section("access-log")),
            Explain = ReadExplain(observability.Section("explain")),
        };

        var balancing = root.Section("load-balancing");
        var loadBalancing = new LoadBalancingOptions
        {
            HashKey = balancing.Value("hash-key", HashKey.ClientIp, ValueParsers.HashKey),
            VirtualNodes = balancing.Value("virtual-nodes", LoadBalancingOptions.DefaultVirtualNodes, ValueParsers.Int(1, 10_000, "a number of virtual nodes")),
            WhenAllUnhealthy = balancing.Value("when-all-unhealthy", AllUnhealthyMode.Reject, ValueParsers.OneOf(AllUnhealthyModes)),
            PanicThreshold = balancing.Value("panic-threshold", 0, ValueParsers.Int(0, 100, "a percentage")),
        };
        if (loadBalancing.PanicThreshold > 0 && loadBalancing.WhenAllUnhealthy != AllUnhealthyMode.Panic)
        {
            balancing.Error("panic-threshold", "only applies with when-all-unhealthy: panic");
        }

        var own = OwnListeners.ForThisHost();
        own.Set(ListenersOf(proxyOptions, adminOptions, controlPlaneOptions));
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var pools = new List<PoolOptions>
        {
            new()
            {
                Name = PoolOptions.DefaultName,
                Algorithm = PersistentAlgorithm(algorithm, persistence),
                Persistence = persistence,
                Retries = retryOptions,
                ResponseHeadersTimeout = proxyOptions.ResponseHeadersTimeout,
                ActivityTimeout = proxyOptions.ActivityTimeout,
                HashKey = loadBalancing.HashKey,
                VirtualNodes = loadBalancing.VirtualNodes,
                HealthChecks = healthOptions,
                Cache = ReadCache(root, redis),
                RateLimit = rateLimit,
                Paths = [],
                Backends = ReadBackends(root, seen, own),
            },
        };
        pools.AddRange(ReadPools(root, algorithm, loadBalancing, healthOptions, redis, rateLimit, persistence, retryOptions, proxyOptions, seen, own, out var poolOrigins));
        var routes = ReadRoutes(root, pools, poolOrigins);

        CheckDistinctPorts(root, ("BalanceHub:listen", "BalanceHub.listen", listen), ("BalanceHub:tcpListener", "BalanceHub.tcpListener", tcpListener), ("admin:port", "admin.port", adminOptions.Port),
            ("proxy:h2c-port", "proxy.h2c-port", proxyOptions.H2cPort ?? 0));
        if (proxyOptions.H2cPort is not null && protocol == ProxyProtocol.Https)
        {
            proxy.Error("h2c-port", "is for a plain-HTTP proxy: with HTTPS, clients get HTTP/2 on BalanceHub.listen through TLS");
        }

        return new BalancerOptions
        {
            Proxy = proxyOptions,
            ControlPlane = controlPlaneOptions,
            Admin = adminOptions,
            HealthChecks = healthOptions,
            OutlierDetection = outlierOptions,
            Retries = retryOptions,
            Drain = drainOptions,
            LoadBalancing = loadBalancing,
            Redis = redis,
            Algorithm = algorithm,
            AccessLogsPath = accessLogs is { Length: > 0 } ? Path.GetFullPath(accessLogs, baseDirectory) : "",
            DbPath = Path.GetFullPath(dbPath is { Length: > 0 } ? dbPath : Path.Combine("data", "balancer.db"), baseDirectory),
            Pools = pools,
            Routes = routes,
            PersistenceKey = persistenceKey,
            ReloadOnChange = root.Section("reload").Value("watch", false, ValueParsers.Bool),
            Debug = debug,
            Observability = observabilityOptions,
        };
    }

    /// <summary>
    /// The <c>health-checks</c> section of <paramref name="parent"/> read over <paramref name="defaults"/>: a pool's
    /// section overrides only what it names, and a pool that has the section means checks on unless it says not.
    /// </summary>
    private static HealthCheckOptions ReadHealthChecks(ConfigSection parent, HealthCheckOptions defaults)
    {
        var present = parent.Path.Length > 0 && parent.Has("health-checks");
        var health = parent.Section("health-checks");
        // An HTTP probe when anything HTTP about it is configured (here or inherited), a TCP connect otherwise.
        var http = defaults.Kind == ProbeKind.Http || health.Has("path") || health.Has("method") || health.Has("expect");
        return new HealthCheckOptions
        {
            Enabled = health.Value("enabled", defaults.Enabled || present, ValueParsers.Bool),
            Kind = health.Value("type", http ? ProbeKind.Http : ProbeKind.Tcp, ValueParsers.OneOf(ProbeKinds)),
            Method = health.Value("method", defaults.Method, ValueParsers.Method),
            Path = health.Value("path", defaults.Path, ValueParsers.PathPrefix),
            Expect = health.Value("expect", defaults.Expect, ValueParsers.StatusRanges),
            Interval = health.Value("interval", defaults.Interval, ValueParsers.PositiveDuration),
            Timeout = health.Value("timeout", defaults.Timeout, ValueParsers.PositiveDuration),
            Rise = health.Value("rise", defaults.Rise, ValueParsers.Int(1, 100, "a count")),
            Fall = health.Value("fall", defaults.Fall, ValueParsers.Int(1, 100, "a count")),
        };
    }

    private static RedisOptions ReadRedis(ConfigSection redis)
    {
        var password = redis.String("password");
        var user = redis.String("user");
        if (user is { Length: > 0 } && password is not { Length: > 0 })
        {
            redis.Error("user", "needs a password");
        }

        return new RedisOptions
        {
            Host = redis.Value("ip", "127.0.0.1", ValueParsers.Host),
            Port = redis.Value("port", 6379, ValueParsers.Port),
            Caching = redis.Value("caching", false, ValueParsers.Bool),
            CacheDuration = redis.Value("cache-duration", TimeSpan.FromSeconds(900), ValueParsers.PositiveDuration),
            CacheLockTimeout = redis.Value("cache-lock-timeout", TimeSpan.FromSeconds(5), ValueParsers.PositiveDuration),
            MaxObjectSize = redis.Value("max-object-size", 1024L * 1024, ValueParsers.SizeBetween(1, 512L * 1024 * 1024)),
            Password = password is { Length: > 0 } ? password : null,
            User = user is { Length: > 0 } ? user : null,
            Database = redis.Value("database", 0, ValueParsers.Int(0, 1000, "a database number")),
            Tls = redis.Value("tls", false, ValueParsers.Bool),
            ConnectTimeout = redis.Value("connect-timeout", TimeSpan.FromSeconds(5), ValueParsers.PositiveDuration),
            Timeout = redis.Value("timeout", TimeSpan.FromMilliseconds(50), ValueParsers.PositiveDuration),
            KeyPrefix = redis.Value("key-prefix", "balancer:", ValueParsers.Text),
        };
    }

    /// <summary>
    /// A pool's <c>cache</c> over the default from <c>BalanceHub.redis-server</c> (<c>caching</c>, <c>cache-duration</c>):
    /// <c>enabled</c> turns it on or off there, <c>ttl</c> replaces the duration.
    /// </summary>
    private static PoolCacheOptions? ReadCache(ConfigSection pool, RedisOptions redis)
    {
        var section = pool.Section("cache");
        var enabled = section.Value("enabled", redis.Caching || section.Has("ttl"), ValueParsers.Bool);
        var ttl = section.Value("ttl", redis.CacheDuration, ValueParsers.PositiveDuration);
        return enabled ? new PoolCacheOptions(ttl) : null;
    }

    /// <summary>
    /// <c>rate-limit</c> at the top (every pool's default) or in a pool: a pool's own keys replace what it inherits
    /// (a rate of its own comes with a burst of its own), and <c>enabled: false</c> turns it off there.
    /// </summary>
    private static RateLimitOptions? ReadRateLimit(ConfigSection parent, RateLimitOptions? defaults)
    {
        var section = parent.Section("rate-limit");
        var enabled = section.Value("enabled", true, ValueParsers.Bool);
        var rate = section.Value("rate", defaults?.Rate!, ValueParsers.Rate);
        var burst = section.Value("burst", section.Has("rate") ? 0 : defaults?.Burst ?? 0, ValueParsers.Int(1, 1_000_000, "a number of requests"));
        var exempt = section.Values<IPNetwork>("exempt", ValueParsers.Network);
        var header = section.Value("key", section.Has("key") ? null : defaults?.Header, ValueParsers.RateLimitKey);
        var shared = section.Value("shared", defaults?.Shared ?? false, ValueParsers.Bool);
        var maxClients = section.Value("max-clients", defaults?.MaxClients ?? 100_000, ValueParsers.Int(1, 10_000_000, "a number of clients"));
        if (!enabled)
        {
            return null;
        }

        if (rate is null)
        {
            if (section.Keys.Count > 0)
            {
                section.Error("rate", "is required: how many requests a client may send, e.g. 100/minute");
            }

            return null;
        }

        return new RateLimitOptions(
            rate, burst > 0 ? burst : rate.Count, exempt is null ? defaults?.Exempt ?? NetworkList.Empty : new NetworkList(exempt), header, shared, maxClients);
    }

    private static string? ExistingFile(ConfigSection hub, string key, ProxyProtocol protocol, string baseDirectory)
    {
        var value = hub.String(key);
        if (protocol != ProxyProtocol.Https)
        {
            return null;
        }

        if (string.IsNullOrWhiteSpace(value))
        {
            hub.Error(key, "is required when protocol is HTTPS");
            return null;
        }

        var full = Path.GetFullPath(value.Trim(), baseDirectory);
        if (!File.Exists(full))
        {
            hub.Error(key, $"{full} does not exist");
            return null;
        }

        return full;
    }

    /// <summary>The balancer's listeners, named as messages about them name them.</summary>
    internal static IEnumerable<OwnListeners.Listener> ListenersOf(ProxyOptions proxy, AdminOptions admin, ControlPlaneOptions controlPlane) =>
    [
        new("proxy listener (BalanceHub.listen)", new IPEndPoint(proxy.Bind, proxy.Port)),
        .. proxy.H2cPort is { } h2c ? [new OwnListeners.Listener("h2c proxy listener (proxy.h2c-port)", new IPEndPoint(proxy.Bind, h2c))] : Array.Empty<OwnListeners.Listener>(),
        new("admin API (admin.port)", new IPEndPoint(admin.Bind, admin.Port)),
        new("control plane (BalanceHub.tcpListener)", new IPEndPoint(controlPlane.Bind, controlPlane.Port)),
    ];

    private static List<BackendOptions> ReadBackends(ConfigSection parent, HashSet<string> seen, OwnListeners own)
    {
        var backends = new List<BackendOptions>();
        foreach (var item in parent.Items("backends"))
        {
            var address = item.Value("address", "", ValueParsers.BackendAddress);
            var weight = item.Value("weight", 1, ValueParsers.Int(0, 1_000_000, "a weight"));
            var paths = item.Values<string>("paths", ValueParsers.PathPrefix) ?? [];
            var clients = item.Values<IPNetwork>("clients", ValueParsers.Network) ?? [];
            if (!item.Has("address"))
            {
                item.Error("address", "is required");
                continue;
            }

            if (address.Length == 0)
            {
                continue;
            }

            if (!seen.Add(address))
            {
                item.Error("address", $"{address} is listed twice");
                continue;
            }

            if (own.Refusal(address) is { } loop)
            {
                item.Error("address", loop);
                continue;
            }

            backends.Add(new BackendOptions
            {
                Address = address,
                Weight = weight,
                Paths = [.. paths.Distinct(StringComparer.OrdinalIgnoreCase)],
                Clients = new NetworkList(clients.Distinct()),
            });
        }

        return backends;
    }

    /// <summary>
    /// The route table: <c>routes:</c>, then each pool's path prefixes (routes of priority 0), then the default pool's
    /// catch-all, ordered as <see cref="RouteTable"/> says. A pool nothing leads to is an error, and so is a route
    /// matching exactly what another does.
    /// </summary>
    private static IReadOnlyList<RouteRule> ReadRoutes(ConfigSection root, List<PoolOptions> pools, Dictionary<string, string> poolOrigins)
    {
        var routes = RouteReader.Read(root, pools.Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase));
        foreach (var pool in pools.Skip(1))
        {
            var origin = poolOrigins[pool.Name];
            if (pool.Paths.Count == 0 && !routes.Any(r => r.Pool == pool.Name))
            {
                root.Reader.AddError(ConfigurationPath.Combine(origin, "paths"), "is required unless routes send to this pool: the path prefixes it serves");
            }

            routes.AddRange(pool.Paths.Select((path, i) => new RouteRule
            {
                Name = $"{pool.Name}#{i}",
                Pool = pool.Name,
                Path = new PathMatch(PathMatchKind.Prefix, path),
                Origin = ConfigurationPath.Combine(origin, "paths", i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            }));
        }

        routes.Add(new RouteRule { Name = PoolOptions.DefaultName, Pool = PoolOptions.DefaultName, IsCatchAll = true, Origin = "backends" });
        var cookies = new Dictionary<(string, string), string>();
        foreach (var pool in pools.Where(p => p.Persistence.Mode == PersistenceMode.Cookie))
        {
            if (!cookies.TryAdd((pool.Persistence.Name.ToLowerInvariant(), pool.Persistence.Path), pool.Name))
            {
                var where = pool.Name == PoolOptions.DefaultName ? "persistence" : ConfigurationPath.Combine(poolOrigins[pool.Name], "persistence");
                root.Reader.AddError(where, $"cookie {pool.Persistence.Name} is also pool {cookies[(pool.Persistence.Name.ToLowerInvariant(), pool.Persistence.Path)]}'s: two pools with one cookie would overwrite each other's pins; give each its own name");
            }
        }

        RouteReader.CheckIdentical(root.Reader, routes);
        return RouteTable.Order(routes);
    }

    /// <summary><c>retries</c> under <paramref name="parent"/> over <paramref name="defaults"/>: a pool's replaces only what it names.</summary>
    private static RetryOptions ReadRetries(ConfigSection parent, RetryOptions defaults)
    {
        var retries = parent.Section("retries");
        return new RetryOptions
        {
            Attempts = retries.Value("attempts", defaults.Attempts, ValueParsers.Int(1, 10, "a number of tries")),
            OnStatus = retries.Values("on-status", ValueParsers.Int(400, 599, "an error status"))?.ToHashSet() ?? defaults.OnStatus,
            Methods = retries.Values<string>("methods", ValueParsers.Method)?.ToHashSet(StringComparer.OrdinalIgnoreCase) ?? defaults.Methods,
            BudgetPercent = retries.Value("budget-percent", defaults.BudgetPercent, ValueParsers.Int(0, 100, "a percentage")),
            MaxBufferedBody = retries.Value("max-buffered-body", defaults.MaxBufferedBody, ValueParsers.Size),
        };
    }

    /// <summary>Hash persistence is its hash's algorithm, whatever the pool names: the hash is what keeps a client in place.</summary>
    private static string PersistentAlgorithm(string algorithm, PersistenceOptions persistence) => persistence.Mode switch
    {
        PersistenceMode.IpHash => AlgorithmNames.IpHash,
        PersistenceMode.ConsistentHash => AlgorithmNames.ConsistentHash,
        _ => algorithm,
    };

    private static List<PoolOptions> ReadPools(
        ConfigSection root, string defaultAlgorithm, LoadBalancingOptions defaults, HealthCheckOptions health, RedisOptions redis, RateLimitOptions? rateLimit,
        PersistenceOptions persistence, RetryOptions retries, ProxyOptions proxy, HashSet<string> seenBackends, OwnListeners own, out Dictionary<string, string> origins)
    {
        origins = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var pools = new List<PoolOptions>();
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var item in root.Items("pools"))
        {
            var name = item.String("name")?.Trim();
            var algorithm = item.Value("algorithm", defaultAlgorithm, ValueParsers.Algorithm);
            var hashKey = item.Value("hash-key", defaults.HashKey, ValueParsers.HashKey);
            var virtualNodes = item.Value("virtual-nodes", defaults.VirtualNodes, ValueParsers.Int(1, 10_000, "a number of virtual nodes"));
            var healthChecks = ReadHealthChecks(item, health);
            var cache = ReadCache(item, redis);
            var poolRateLimit = ReadRateLimit(item, rateLimit);
            var poolPersistence = PersistenceReader.Read(item, persistence);
            if (poolPersistence.Mode == PersistenceMode.Cookie && !PersistenceReader.NamesCookie(item) && !string.IsNullOrEmpty(name))
            {
                // Each pool its own cookie unless it names one: two pools sharing one would overwrite each other's pins.
                poolPersistence = poolPersistence with { Name = $"{poolPersistence.Name}_{name}" };
            }
            var backendProtocol = item.Value("backend-protocol", BackendProtocol.Auto, ValueParsers.OneOf(BackendProtocols));
            var poolRetries = ReadRetries(item, retries);
            var responseHeadersTimeout = item.Value("response-headers-timeout", proxy.ResponseHeadersTimeout, ValueParsers.PositiveDuration);
            var activityTimeout = item.Value("activity-timeout", proxy.ActivityTimeout, ValueParsers.PositiveDuration);
            var paths = item.Values<string>("paths", ValueParsers.PathPrefix);
            var backends = ReadBackends(item, seenBackends, own);
            if (string.IsNullOrEmpty(name))
            {
                item.Error("name", "is required");
                continue;
            }

            if (name.Equals(PoolOptions.DefaultName, StringComparison.OrdinalIgnoreCase))
            {
                item.Error("name", $"{name} is reserved for the top-level backends");
                continue;
            }

            if (!PoolName().IsMatch(name))
            {
                item.Error("name", $"{name} is not a pool name (letters, digits, - and _)");
                continue;
            }

            if (!names.Add(name))
            {
                item.Error("name", $"{name} is used by another pool");
                continue;
            }

            paths ??= []; // a path in two places is an error of the route table's (ReadRoutes)
            origins[name] = item.Path;
            pools.Add(new PoolOptions { Name = name, Algorithm = PersistentAlgorithm(algorithm, poolPersistence), Persistence = poolPersistence, BackendProtocol = backendProtocol, Retries = poolRetries, ResponseHeadersTimeout = responseHeadersTimeout, ActivityTimeout = activityTimeout, HashKey = hashKey, VirtualNodes = virtualNodes, HealthChecks = healthChecks, Cache = cache, RateLimit = poolRateLimit, Paths = paths, Backends = backends });
        }

        return pools;
    }

    private static void CheckDistinctPorts(ConfigSection root, params (string Key, string Display, int Port)[] listeners)
    {
        for (var i = 0; i < listeners.Length; i++)
        {
            for (var j = 0; j < i; j++)
            {
                if (listeners[i].Port != 0 && listeners[i].Port == listeners[j].Port)
                {
                    root.Reader.AddError(listeners[i].Key, $"{listeners[i].Port} is also {listeners[j].Display}; each listener needs its own port");
                }
            }
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]*$")]
    private static partial Regex PoolName();
}
