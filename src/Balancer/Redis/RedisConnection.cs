using System.Diagnostics;
using System.Diagnostics.Metrics;
using Balancer.Configuration;
using Balancer.Observability;
using StackExchange.Redis;
using StackExchange.Redis.KeyspaceIsolation;

namespace Balancer.Redis;

/// <summary>
/// The process's one connection to Redis (a StackExchange.Redis multiplexer), made only when something uses Redis
/// (<see cref="BalancerOptions.UsesRedis"/>). It never holds up start-up: the first attempt runs in the background, and
/// with Redis down the balancer serves without it while the multiplexer keeps reconnecting by itself. Callers ask
/// <see cref="Database"/> for each use and go on without Redis when it is null; a call that takes longer than
/// <c>redis-server.timeout</c> is given up by its caller (<see cref="CallAsync{T}"/>). The state (up, down, off) is
/// logged once per change, published on the events feed, exported as <c>balancer_redis_connected</c> and shown by
/// <c>/api/health</c>, where it never fails readiness: Redis is optional.
/// </summary>
internal sealed class RedisConnection : IHostedService, IAsyncDisposable
{
    private readonly RedisOptions _options;
    private readonly bool _enabled;
    private readonly EventFeed _events;
    private readonly BalancerMetrics _metrics;
    private readonly ILogger<RedisConnection> _log;
    private readonly TimeProvider _time;
    private readonly Lock _sync = new();
    private ConnectionMultiplexer? _multiplexer;
    private IDatabase? _database;
    private bool? _up;

    public RedisConnection(BalancerOptions options, EventFeed events, BalancerMetrics metrics, ILogger<RedisConnection> log, TimeProvider time)
    {
        _options = options.Redis;
        _enabled = options.UsesRedis;
        _events = events;
        _metrics = metrics;
        _log = log;
        _time = time;
        if (_enabled)
        {
            var endpoint = new KeyValuePair<string, object?>("endpoint", _options.Endpoint);
            metrics.Meter.CreateObservableGauge("balancer.redis.connected", () => new Measurement<int>(Connected ? 1 : 0, endpoint), "{connection}",
                "1 while the balancer is connected to Redis (redis-server, by endpoint), 0 while it is not and keeps trying");
        }
    }

    /// <summary>Whether anything uses Redis; when not, the balancer never connects.</summary>
    public bool Enabled => _enabled;

    public bool Connected => _multiplexer?.IsConnected == true;

    /// <summary><c>up</c>, <c>down</c> (connecting, or lost and reconnecting) or <c>off</c> (nothing uses Redis).</summary>
    public string State => !_enabled ? "off" : Connected ? "up" : "down";

    public string Endpoint => _options.Endpoint;

    /// <summary>The database with the key prefix applied, while connected; null while not (callers go on without Redis).</summary>
    public IDatabase? Database => Connected ? _database : null;

    /// <summary>The bound on a call made on behalf of a request.</summary>
    public TimeSpan Timeout => _options.Timeout;

    /// <summary>
    /// A Redis call on behalf of a request, given up after <see cref="Timeout"/>: the value, or null when Redis is down,
    /// slow or failing (counted in <c>balancer_redis_errors_total</c> by operation; latency in <c>balancer_redis_duration_seconds</c>).
    /// </summary>
    public async ValueTask<(bool Ok, T Value)> CallAsync<T>(string operation, Func<IDatabase, Task<T>> call, CancellationToken cancellation = default)
    {
        if (Database is not { } database)
        {
            return (false, default!);
        }

        var started = Stopwatch.GetTimestamp();
        try
        {
            var value = await call(database).WaitAsync(_options.Timeout, _time, cancellation).ConfigureAwait(false);
            _metrics.RedisCall(operation, Stopwatch.GetElapsedTime(started), error: null);
            return (true, value);
        }
        catch (TimeoutException)
        {
            _metrics.RedisCall(operation, Stopwatch.GetElapsedTime(started), error: "timeout");
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // The client went away: whatever the request does next ends at once.
        }
        catch (Exception e) when (e is RedisCommandException or ObjectDisposedException)
        {
            // A command the client refused to send, or a connection closed under it (shutting down).
            _metrics.RedisCall(operation, Stopwatch.GetElapsedTime(started), error: "client");
            _log.LogDebug("Redis {Operation} failed: {Error}", operation, e.Message);
        }
        catch (OperationCanceledException e)
        {
            // The client library cancelled the command itself (its connection was being replaced).
            _metrics.RedisCall(operation, Stopwatch.GetElapsedTime(started), error: "connection");
            _log.LogDebug("Redis {Operation} was cancelled: {Error}", operation, e.Message);
        }
        catch (RedisException e)
        {
            _metrics.RedisCall(operation, Stopwatch.GetElapsedTime(started), error: e is RedisConnectionException ? "connection" : "server");
            _log.LogDebug("Redis {Operation} failed: {Error}", operation, e.Message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The client library's own failures surface as other types too (an InvalidOperationException from its pipe
            // while a connection is torn down, seen under CLIENT PAUSE): Redis is only ever an optimisation for a request.
            _metrics.RedisCall(operation, Stopwatch.GetElapsedTime(started), error: "client");
            _log.LogWarning("Redis {Operation} failed unexpectedly: {Type}: {Error}", operation, e.GetType().Name, e.Message);
        }

        return (false, default!);
    }

    /// <summary>
    /// Deletes every key under the prefix that matches <paramref name="pattern"/> (a glob, without the prefix), scanning
    /// in pages rather than blocking the server with <c>KEYS</c>; the number deleted, or null while Redis is down.
    /// </summary>
    public async Task<long?> DeleteMatchingAsync(string pattern, CancellationToken cancellation)
    {
        if (!Connected || _multiplexer is not { } multiplexer)
        {
            return null;
        }

        var database = multiplexer.GetDatabase(_options.Database);
        long deleted = 0;
        var batch = new List<RedisKey>(ScanPage);
        foreach (var endpoint in multiplexer.GetEndPoints())
        {
            var server = multiplexer.GetServer(endpoint);
            if (server.IsReplica)
            {
                continue;
            }

            await foreach (var key in server.KeysAsync(_options.Database, GlobPrefix + pattern, ScanPage).WithCancellation(cancellation).ConfigureAwait(false))
            {
                batch.Add(key);
                if (batch.Count == ScanPage)
                {
                    deleted += await database.KeyDeleteAsync([.. batch]).ConfigureAwait(false);
                    batch.Clear();
                }
            }
        }

        if (batch.Count > 0)
        {
            deleted += await database.KeyDeleteAsync([.. batch]).ConfigureAwait(false);
        }

        return deleted;
    }

    private const int ScanPage = 500;

    /// <summary>The key prefix as a glob that matches only itself.</summary>
    private string GlobPrefix => string.Concat(_options.KeyPrefix.Select(c => c is '*' or '?' or '[' or ']' or '\\' ? "\\" + c : c.ToString()));

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_enabled)
        {
            _ = ConnectAsync();
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task ConnectAsync()
    {
        var config = new ConfigurationOptions
        {
            EndPoints = { { _options.Host, _options.Port } },
            User = _options.User,
            Password = _options.Password,
            DefaultDatabase = _options.Database,
            Ssl = _options.Tls,
            SslHost = _options.Tls ? _options.Host : null,
            ConnectTimeout = (int)_options.ConnectTimeout.TotalMilliseconds,
            AsyncTimeout = Math.Max(1000, (int)_options.Timeout.TotalMilliseconds * 4),
            SyncTimeout = Math.Max(1000, (int)_options.Timeout.TotalMilliseconds * 4),
            AbortOnConnectFail = false,
            ConnectRetry = 1,
            ReconnectRetryPolicy = new ExponentialRetry(250, 2000),
            ClientName = "balancer",
            // A down server must not queue the requests' calls until it returns: they fail at once and the request goes on.
            BacklogPolicy = BacklogPolicy.FailFast,
        };
        try
        {
            var multiplexer = await ConnectionMultiplexer.ConnectAsync(config).ConfigureAwait(false);
            multiplexer.ConnectionFailed += (_, e) =>
            {
                if (e.ConnectionType == ConnectionType.Interactive)
                {
                    Report(false, e.Exception?.Message ?? e.FailureType.ToString());
                }
            };
            multiplexer.ConnectionRestored += (_, e) =>
            {
                if (e.ConnectionType == ConnectionType.Interactive)
                {
                    Report(true, "connection restored");
                }
            };
            _database = multiplexer.GetDatabase(_options.Database).WithKeyPrefix(_options.KeyPrefix);
            _multiplexer = multiplexer;
            Report(multiplexer.IsConnected, multiplexer.IsConnected ? "connected" : "not reachable; the balancer serves without it and keeps trying");
        }
        catch (Exception e) when (e is RedisException or ArgumentException or System.Net.Sockets.SocketException)
        {
            // Only a configuration the client refuses outright gets here (AbortOnConnectFail is off).
            _log.LogError("Redis at {Endpoint} cannot be used: {Error}; the balancer serves without it", _options.Endpoint, e.Message);
            Report(false, e.Message);
        }
    }

    private void Report(bool up, string reason)
    {
        lock (_sync)
        {
            if (_up == up)
            {
                return;
            }

            _up = up;
        }

        if (up)
        {
            _log.LogInformation("Redis at {Endpoint} is up ({Reason})", _options.Endpoint, reason);
        }
        else
        {
            _log.LogWarning("Redis at {Endpoint} is down ({Reason}): caching is bypassed and rate limits are local until it returns", _options.Endpoint, reason);
        }

        _events.Publish(up ? EventKinds.RedisUp : EventKinds.RedisDown, "", _options.Endpoint, reason);
    }

    public async ValueTask DisposeAsync()
    {
        if (_multiplexer is { } multiplexer)
        {
            _multiplexer = null;
            await multiplexer.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
            multiplexer.Dispose();
        }
    }
}
