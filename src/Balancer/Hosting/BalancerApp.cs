using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography.X509Certificates;
using Balancer.Admin;
using Balancer.Configuration;
using Balancer.Caching;
using Balancer.Explain;
using Balancer.RateLimiting;
using Balancer.Redis;
using Balancer.ControlPlane;
using Balancer.Health;
using Balancer.LoadBalancing;
using Balancer.Networking;
using Balancer.Observability;
using Balancer.Proxy;
using Balancer.Proxy.WebSockets;
using Balancer.Persistence;
using Balancer.Registry;
using Balancer.Reload;
using Balancer.Routing;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Data.Sqlite;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.SessionAffinity;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Balancer.Hosting;

/// <summary>Builds and starts the balancer: every service, listener and pipeline step, from validated options.</summary>
public static partial class BalancerApp
{
    /// <summary>Starts the balancer and returns once every listener accepts connections.</summary>
    /// <param name="options">What to run.</param>
    /// <param name="logging">Changes to logging, after the configured console logger (an embedder's own providers, say).</param>
    /// <param name="services">Additions to the services, after the balancer's own (an embedder's exporter, say).</param>
    /// <param name="cancellationToken">Gives up starting.</param>
    /// <exception cref="IOException">A listener could not be bound, or the registration database not opened.</exception>
    public static async Task<RunningBalancer> StartAsync(BalancerOptions options, Action<ILoggingBuilder>? logging = null, Action<IServiceCollection>? services = null, CancellationToken cancellationToken = default)
    {
        var store = OpenStore(options.DbPath);
        var bound = new BoundListeners();
        WebApplication app;
        try
        {
            app = Build(options, store, bound, logging, services);
        }
        catch
        {
            store.Dispose();
            throw;
        }

        try
        {
            // Know which backends are up before taking traffic: every backend's first probe is answered (or timed out).
            await app.Services.GetRequiredService<ActiveHealthChecker>().StartAsync().ConfigureAwait(false);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            app.Services.GetRequiredService<SlowStart>().Serving();
            var drains = app.Services.GetRequiredService<DrainMonitor>();
            drains.ClosingUpgrades = app.Services.GetRequiredService<UpgradedConnections>().CloseToAsync;
            drains.Start();
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new IOException(Listeners.DescribeBindFailure(e, options), e);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var proxyScheme = options.Proxy.Protocol == ProxyProtocol.Https ? "https" : "http";
        var running = new RunningBalancer(app, bound.Proxy!.IPEndPoint!, bound.Admin!.IPEndPoint!, bound.ControlPlane!.IPEndPoint!, proxyScheme) { H2cEndpoint = bound.H2c?.IPEndPoint };
        app.Services.GetRequiredService<OwnListeners>().Set(ConfigLoader.ListenersOf(
            options.Proxy with { Port = running.ProxyEndpoint.Port, H2cPort = running.H2cEndpoint?.Port },
            options.Admin with { Port = running.AdminEndpoint.Port },
            options.ControlPlane with { Port = running.ControlPlaneEndpoint.Port }));
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Balancer");

        // SIGHUP reloads the configuration (and must not do its default: end the process). Registered before the
        // listeners are announced, so no one who waits for that can hang the process up.
        var reloader = app.Services.GetRequiredService<ConfigReloader>();
        running.Hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            _ = reloader.ReloadAsync("SIGHUP");
        });
        if (options.ReloadOnChange && options.Source is { } source)
        {
            running.Watch = new ConfigFileWatch(source.Path, reloader, app.Services.GetRequiredService<TimeProvider>(), app.Services.GetRequiredService<ILogger<ConfigFileWatch>>());
        }
        var registry = app.Services.GetRequiredService<BackendRegistry>();
        LogListening(logger, "Proxy", proxyScheme, running.ProxyEndpoint);
        if (running.H2cEndpoint is { } h2cEndpoint)
        {
            LogListening(logger, "Proxy (HTTP/2 without TLS)", "http", h2cEndpoint);
        }

        LogListening(logger, "Admin API", "http", running.AdminEndpoint);
        LogListening(logger, "Control plane", "tcp", running.ControlPlaneEndpoint);
        LogStarted(
            logger,
            options.Pools.Sum(p => p.Backends.Count),
            registry.Current.Pools.Sum(p => p.Backends.Count(b => b.Source != BackendSource.Config)),
            registry.DatabasePath,
            options.Pools.Count,
            options.Algorithm);
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        lifetime.ApplicationStopping.Register(() =>
        {
            LogDraining(logger, options.Proxy.DrainTimeout.TotalSeconds);
            _ = CloseWebSocketsAtDrainTimeoutAsync(app.Services, options.Proxy.DrainTimeout, lifetime.ApplicationStopped);
        });
        lifetime.ApplicationStopped.Register(() => LogStopped(logger));

        return running;
    }

    /// <summary>How long WebSockets have to read their close frame after the drain timeout, before the rest is cut.</summary>
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(1);

    private static async Task CloseWebSocketsAtDrainTimeoutAsync(IServiceProvider services, TimeSpan drainTimeout, CancellationToken stopped)
    {
        try
        {
            await Task.Delay(drainTimeout, services.GetRequiredService<TimeProvider>(), stopped).ConfigureAwait(false);
            var upgrades = services.GetRequiredService<UpgradedConnections>();
            if (upgrades.Count > 0)
            {
                await upgrades.CloseAllAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Everything finished within the drain timeout.
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // A connection went away while being closed: nothing left to close.
        }
    }

    private static SqliteRegistrationStore OpenStore(string path)
    {
        try
        {
            return SqliteRegistrationStore.Open(path);
        }
        catch (Exception e) when (e is SqliteException or UnauthorizedAccessException or IOException or InvalidOperationException)
        {
            throw new IOException($"cannot open the registration database {path}: {e.Message}", e);
        }
    }

    private static WebApplication Build(BalancerOptions options, SqliteRegistrationStore store, BoundListeners bound, Action<ILoggingBuilder>? logging, Action<IServiceCollection>? configure)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        ConfigureLogging(builder.Logging, options, logging);
        ConfigureKestrel(builder.WebHost, options, bound);

        var services = builder.Services;
        // In-flight requests get the drain timeout; then WebSockets are sent a close frame and get a moment to read it,
        // and whatever is left is cut.
        services.Configure<HostOptions>(h => h.ShutdownTimeout = options.Proxy.DrainTimeout + CloseGrace);
        services.AddSingleton<UpgradedConnections>();
        services.AddSingleton(options);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<RoutingConfigProvider>();
        services.AddSingleton<IProxyConfigProvider>(sp => sp.GetRequiredService<RoutingConfigProvider>());
        services.AddSingleton<IConfigChangeListener>(sp => sp.GetRequiredService<RoutingConfigProvider>());
        services.AddSingleton<IRoutingPublisher>(sp => sp.GetRequiredService<RoutingConfigProvider>());
        services.AddSingleton(sp =>
        {
            var own = OwnListeners.ForThisHost();
            own.Set(ConfigLoader.ListenersOf(options.Proxy, options.Admin, options.ControlPlane));
            return own;
        });
        services.AddSingleton<LoopGuard>();
        services.AddSingleton<BalancerMetrics>();
        services.AddSingleton<TrafficStats>();
        services.AddSingleton<EventFeed>();
        services.AddSingleton<BackendStates>();
        services.AddSingleton<BackendGauges>();
        if (options.Observability.Metrics || options.Observability.Tracing is not null)
        {
            services.AddOpenTelemetry().ConfigureResource(resource => resource.AddService("balancer"));
        }

        if (options.Observability.Metrics)
        {
            MetricsExport.Add(services, options.Observability);
        }

        if (options.Observability.Tracing is { } tracing)
        {
            TracingSetup.Add(services, tracing);
        }
        services.AddSingleton(sp => new BackendRegistry(options, store, sp.GetRequiredService<IRoutingPublisher>(), sp.GetRequiredService<ILogger<BackendRegistry>>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<OwnListeners>(), sp.GetRequiredService<EventFeed>(), sp.GetRequiredService<BalancerMetrics>()));
        services.AddSingleton(sp => new ActiveHealthChecker(
            sp.GetRequiredService<BackendRegistry>(),
            sp.GetRequiredService<IProxyStateLookup>(),
            sp.GetRequiredService<SerializedDestinationsUpdater>(),
            sp.GetRequiredService<OutlierDetector>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<ActiveHealthChecker>>(),
            sp.GetRequiredService<EventFeed>()));
        services.AddSingleton<DrainMonitor>();
        services.AddSingleton<ConfigReloader>();
        services.AddSingleton(sp => new SlowStart(options.Proxy.SlowStart, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<EventFeed>(), starting: true));
        services.AddSingleton<OutlierDetector>();
        services.AddSingleton<IPassiveHealthCheckPolicy>(sp => sp.GetRequiredService<OutlierDetector>());
        services.AddSingleton(sp => new RetryStep(options, sp.GetRequiredService<TimeProvider>(), Random.Shared, sp.GetRequiredService<ILogger<RetryStep>>(), sp.GetRequiredService<BalancerMetrics>(), sp.GetRequiredService<TrafficStats>(), sp.GetRequiredService<ProxyErrors>(), sp.GetRequiredService<RequestRecorder>(), recordsRequests: !sp.GetRequiredService<CacheStep>().Any));
        services.AddSingleton(sp => new SlowStartStep(sp.GetRequiredService<SlowStart>(), Random.Shared));
        services.AddSingleton<ConcurrencyLimitStep>();
        services.AddSingleton<ControlPlaneHandler>();
        services.AddSingleton<RestrictionStep>();
        services.AddSingleton<IForwarderHttpClientFactory, BackendHttpClientFactory>();
        services.AddReverseProxy().AddTransforms<ProxyTransforms>();
        var yarpsTransforms = services.Single(d => d.ServiceType == typeof(ITransformBuilder));
        services.Remove(yarpsTransforms);
        services.AddSingleton<ITransformBuilder>(sp => new BalancerTransformBuilder(
            (ITransformBuilder)ActivatorUtilities.CreateInstance(sp, yarpsTransforms.ImplementationType!), options, sp.GetRequiredService<LoopGuard>()));
        // YARP registers data protection for affinity cookies; nothing of ours uses it yet, so keep its keys in memory
        // rather than writing unencrypted key files under the user's home directory.
        services.AddDataProtection().UseEphemeralDataProtectionProvider();
        // Ours replace YARP's built-in policies: one set, and no clash between its "Random" and our "random".
        services.RemoveAll<ILoadBalancingPolicy>();
        services.AddSingleton<ILoadBalancingPolicy, RoundRobinPolicy>();
        services.AddSingleton<ILoadBalancingPolicy, WeightedRoundRobinPolicy>();
        services.AddSingleton<ILoadBalancingPolicy, LeastConnectionsPolicy>();
        services.AddSingleton<ILoadBalancingPolicy, WeightedLeastConnectionsPolicy>();
        services.AddSingleton<ILoadBalancingPolicy>(new PowerOfTwoPolicy(Random.Shared, explain: options.Observability.Explain is not null));
        services.AddSingleton<ILoadBalancingPolicy>(new RandomPolicy(Random.Shared));
        services.AddSingleton<ILoadBalancingPolicy, IpHashPolicy>();
        services.AddSingleton<ILoadBalancingPolicy, ConsistentHashPolicy>();
        // Always there (a reload may turn persistence on); the key is read, or made, only when a token is first needed.
        // PublicationOnly: a key that could not be made is tried again next time, not cached as a failure.
        var key = new Lazy<AffinityKey>(
            () => options.PersistenceKey is { } configured ? AffinityKey.Configured(configured) : AffinityKey.InDirectory(Path.GetDirectoryName(options.DbPath)!),
            LazyThreadSafetyMode.PublicationOnly);
        services.AddSingleton(key);
        services.AddSingleton<ISessionAffinityPolicy>(sp => new SignedAffinityPolicy(key, header: false, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<ISessionAffinityPolicy>(sp => new SignedAffinityPolicy(key, header: true, sp.GetRequiredService<TimeProvider>()));
        if (options.Pools.Any(p => p.Persistence.IsSigned))
        {
            _ = key.Value; // a key file that cannot be read or made stops the start, not the first sticky request
        }

        services.AddSingleton<IAvailableDestinationsPolicy, AvailableDestinationsPolicy>();
        services.AddSingleton<SerializedDestinationsUpdater>();
        services.Replace(ServiceDescriptor.Singleton<IClusterDestinationsUpdater>(sp => sp.GetRequiredService<SerializedDestinationsUpdater>()));
        services.AddSingleton<ProxyErrors>();
        services.AddSingleton<RequestRecorder>();
        services.AddSingleton<RedisConnection>();
        services.AddSingleton<RateLimitStep>();
        services.AddSingleton<ResponseCache>();
        services.AddSingleton<CacheStep>();
        services.AddHostedService(sp => sp.GetRequiredService<RedisConnection>());
        services.AddSingleton<ExplainLog>();
        services.AddSingleton<ExplainStep>();
        services.AddSingleton<AccessLog>();
        services.AddHostedService(sp => sp.GetRequiredService<AccessLog>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, ListenerMatcherPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, RouteConditionPolicy>());
        configure?.Invoke(services);

        var app = builder.Build();
        if (options.Observability.Metrics)
        {
            app.Services.GetRequiredService<MeterProvider>(); // listening from here on, not only once the host starts
            app.Services.GetRequiredService<YarpCounters>();
            app.Services.GetRequiredService<BackendGauges>();
        }

        var metrics = app.Services.GetRequiredService<BalancerMetrics>();
        foreach (var pool in options.Pools)
        {
            metrics.Initialize(pool.Name);
        }

        app.Services.GetRequiredService<EventFeed>().Published += metrics.Count;
        // Restores every registration and hands YARP its first config: before anything is mapped or served.
        app.Services.GetRequiredService<BackendRegistry>();
        app.Use(app.Services.GetRequiredService<RequestRecorder>().InvokeAsync);
        app.UseMiddleware<RequestGuardMiddleware>();
        app.UseRouting();
        AdminEndpoints.Map(app, options);
        var restrictions = app.Services.GetRequiredService<RestrictionStep>();
        var retries = app.Services.GetRequiredService<RetryStep>();
        var slowStart = app.Services.GetRequiredService<SlowStartStep>();
        var limits = app.Services.GetRequiredService<ConcurrencyLimitStep>();
        var upgrades = app.Services.GetRequiredService<UpgradedConnections>();
        var rateLimits = app.Services.GetRequiredService<RateLimitStep>();
        var cache = app.Services.GetRequiredService<CacheStep>();
        // The decision trace's steps are in the pipeline only when it is enabled: off, it costs nothing.
        var explain = options.Observability.Explain is null ? null : app.Services.GetRequiredService<ExplainStep>();
        app.MapReverseProxy(pipeline =>
        {
            pipeline.Use(upgrades.InvokeAsync);
            pipeline.Use(RequestBodyLimit.InvokeAsync);
            if (rateLimits.Any)
            {
                pipeline.Use(rateLimits.InvokeAsync);
            }

            if (explain is not null)
            {
                pipeline.Use(explain.BeginAsync);
            }

            pipeline.Use(restrictions.InvokeAsync);
            if (explain is not null)
            {
                pipeline.Use(explain.RestrictedAsync);
            }

            if (cache.Any)
            {
                pipeline.Use(cache.InvokeAsync);
            }

            pipeline.Use(retries.InvokeAsync); // everything below runs once per try
            pipeline.UseSessionAffinity();
            if (explain is not null)
            {
                pipeline.Use(ExplainStep.BeforePickAsync);
            }

            pipeline.UseLoadBalancing();
            if (explain is not null)
            {
                pipeline.Use(explain.PickedAsync);
            }

            pipeline.Use(slowStart.InvokeAsync);
            pipeline.Use(limits.InvokeAsync);
            if (explain is not null)
            {
                pipeline.Use(explain.SentAsync);
            }

            pipeline.Use(InFlightStep.InvokeAsync);
            pipeline.UsePassiveHealthChecks();
        }).WithMetadata(new ListenerMetadata(ListenerKind.Proxy)).ConfigureEndpoints((endpoint, route) =>
        {
            if (RouteConditions.For(route) is { } conditions)
            {
                endpoint.WithMetadata(conditions);
            }
        });
        return app;
    }

    private static void ConfigureLogging(ILoggingBuilder logging, BalancerOptions options, Action<ILoggingBuilder>? configure)
    {
        logging.ClearProviders();
        if (options.Observability.JsonLogs)
        {
            logging.AddJsonConsole(o =>
            {
                o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
                o.UseUtcTimestamp = true;
            });
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff ";
                o.UseUtcTimestamp = true;
            });
        }

        logging.SetMinimumLevel(options.Debug ? LogLevel.Debug : LogLevel.Information);
        // YARP logs every proxied request at Information; that belongs in the access log, not the console.
        logging.AddFilter("Yarp", options.Debug ? LogLevel.Information : LogLevel.Warning);
        logging.AddFilter("Microsoft", options.Debug ? LogLevel.Information : LogLevel.Warning);
        // ASP.NET Core starts an Activity and a log scope for every request while this category is enabled at any level
        // (and HttpClient a child Activity for every try), though all it logs is "request starting/finished" at
        // Information: 1.3 KB per request. Off, unless debugging; trace ids come from tracing or the client (TraceParent).
        logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", options.Debug ? LogLevel.Information : LogLevel.None);
        // Every failed probe is logged with a stack trace at every interval; health state is shown by the admin API.
        logging.AddFilter("Yarp.ReverseProxy.Health.ActiveHealthCheckMonitor", options.Debug ? LogLevel.Warning : LogLevel.Error);
        // A failed try is a Warning with a 2 KB stack trace there, retried or not; ours say it in one line (ProxyErrors, RetryStep).
        logging.AddFilter("Yarp.ReverseProxy.Forwarder.HttpForwarder", options.Debug ? LogLevel.Information : LogLevel.Error);
        foreach (var (category, level) in options.Observability.LogLevels)
        {
            logging.AddFilter(category, level);
        }

        configure?.Invoke(logging);
    }

    private static void ConfigureKestrel(ConfigureWebHostBuilder webHost, BalancerOptions options, BoundListeners bound)
    {
        webHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.RequestHeaderEncodingSelector = RequestHeaderDecoding.Select;
            var limits = options.Proxy.Limits;
            kestrel.Limits.MaxRequestBodySize = limits.MaxRequestBodySize;
            kestrel.Limits.MaxRequestHeadersTotalSize = limits.MaxRequestHeadersSize;
            kestrel.Limits.MaxRequestBufferSize = Math.Max(kestrel.Limits.MaxRequestBufferSize ?? 0, limits.MaxRequestHeadersSize); // Kestrel needs room for the headers
            kestrel.Limits.MaxRequestHeaderCount = limits.MaxRequestHeaderCount;
            kestrel.Limits.MaxConcurrentConnections = limits.MaxConcurrentConnections;
            kestrel.Limits.RequestHeadersTimeout = limits.RequestHeadersTimeout;
            kestrel.Limits.KeepAliveTimeout = limits.KeepAliveTimeout;

            var proxy = options.Proxy;
            void ConfigureProxy(ListenOptions listen)
            {
                Listeners.Tag(listen, ListenerKind.Proxy);
                if (proxy.Protocol == ProxyProtocol.Https)
                {
                    listen.Protocols = HttpProtocols.Http1AndHttp2;
                    listen.UseHttps(X509Certificate2.CreateFromPemFile(proxy.CertificatePath!, proxy.CertificateKeyPath));
                }
                else
                {
                    listen.Protocols = HttpProtocols.Http1;
                }

                bound.Proxy = listen;
            }

            void ConfigureH2c(ListenOptions listen)
            {
                Listeners.Tag(listen, ListenerKind.Proxy);
                listen.Protocols = HttpProtocols.Http2; // without TLS: prior knowledge
                bound.H2c = listen;
            }

            if (proxy.Bind.Equals(IPAddress.IPv6Any))
            {
                kestrel.ListenAnyIP(proxy.Port, ConfigureProxy);
                if (proxy.H2cPort is { } h2c)
                {
                    kestrel.ListenAnyIP(h2c, ConfigureH2c);
                }
            }
            else
            {
                kestrel.Listen(proxy.Bind, proxy.Port, ConfigureProxy);
                if (proxy.H2cPort is { } h2c)
                {
                    kestrel.Listen(proxy.Bind, h2c, ConfigureH2c);
                }
            }

            kestrel.Listen(options.Admin.Bind, options.Admin.Port, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                Listeners.Tag(listen, ListenerKind.Admin);
                bound.Admin = listen;
            });

            kestrel.Listen(options.ControlPlane.Bind, options.ControlPlane.Port, listen =>
            {
                listen.UseConnectionHandler<ControlPlaneHandler>();
                bound.ControlPlane = listen;
            });
        });
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "{Listener} listening on {Scheme}://{Endpoint}")]
    private static partial void LogListening(ILogger logger, string listener, string scheme, IPEndPoint endpoint);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Balancer started: {Static} static and {Registered} registered backend(s) (from {Database}) in {Pools} pool(s), default algorithm {Algorithm}")]
    private static partial void LogStarted(ILogger logger, int @static, int registered, string database, int pools, string algorithm);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "Shutting down: no new connections; in-flight requests get up to {Seconds}s to finish")]
    private static partial void LogDraining(ILogger logger, double seconds);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Stopped")]
    private static partial void LogStopped(ILogger logger);

    /// <summary>Kestrel's listen options, captured so their bound endpoints can be read after start (port 0 included).</summary>
    private sealed class BoundListeners
    {
        public ListenOptions? Proxy { get; set; }
        public ListenOptions? H2c { get; set; }
        public ListenOptions? Admin { get; set; }
        public ListenOptions? ControlPlane { get; set; }
    }
}

/// <summary>A started balancer: where it listens, and how to stop it.</summary>
public sealed class RunningBalancer : IAsyncDisposable
{
    internal RunningBalancer(WebApplication app, IPEndPoint proxy, IPEndPoint admin, IPEndPoint controlPlane, string proxyScheme)
    {
        App = app;
        ProxyEndpoint = proxy;
        AdminEndpoint = admin;
        ControlPlaneEndpoint = controlPlane;
        ProxyUri = ToUri(proxyScheme, proxy);
        AdminUri = ToUri("http", admin);
    }

    public WebApplication App { get; }
    public IPEndPoint ProxyEndpoint { get; }

    /// <summary>The h2c proxy listener (<c>proxy.h2c-port</c>), when on.</summary>
    public IPEndPoint? H2cEndpoint { get; init; }

    public IPEndPoint AdminEndpoint { get; }
    public IPEndPoint ControlPlaneEndpoint { get; }

    /// <summary>The proxy's base address; for a wildcard bind, the loopback address on the same port.</summary>
    public Uri ProxyUri { get; }
    public Uri AdminUri { get; }

    /// <summary>Stops accepting, lets in-flight requests finish (up to the drain timeout), then stops.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => App.StopAsync(cancellationToken);

    /// <summary>SIGHUP's handler (a reload) while the balancer runs.</summary>
    internal PosixSignalRegistration? Hangup { get; set; }

    /// <summary>The configuration file's watch, with <c>reload.watch</c>.</summary>
    internal IDisposable? Watch { get; set; }

    public async ValueTask DisposeAsync()
    {
        Hangup?.Dispose();
        Watch?.Dispose();
        await App.StopAsync().ConfigureAwait(false);
        await App.DisposeAsync().ConfigureAwait(false);
    }

    private static Uri ToUri(string scheme, IPEndPoint endpoint)
    {
        var address = endpoint.Address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback
            : endpoint.Address.Equals(IPAddress.Any) ? IPAddress.Loopback
            : endpoint.Address;
        return new Uri($"{scheme}://{new IPEndPoint(address, endpoint.Port)}/");
    }
}
