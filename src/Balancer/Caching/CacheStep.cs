using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Globalization;
using Balancer.Configuration;
using Balancer.Observability;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Caching;

/// <summary>
/// Proxy pipeline step, after the restrictions (a client refused a backend is refused its cached answers too) and
/// before retries, in pools with <c>cache</c> on: answers from Redis what <see cref="CachePolicy"/> lets a shared cache
/// answer, with <c>Age</c> and <c>X-Cache: HIT</c>; otherwise proxies (<c>MISS</c>, or <c>BYPASS</c> when the lookup
/// was skipped or Redis could not answer in time), copying the response as it streams to the client and storing it
/// when it may be stored. Concurrent misses for one key wait for the first (up to <c>redis-server.cache-lock-timeout</c>,
/// then go to the backend themselves): one backend request however many clients ask at once, even while Redis is down.
/// A successful unsafe request invalidates its URL. In the pipeline only when some pool caches.
/// </summary>
internal sealed class CacheStep
{
    public const string StatusHeader = "X-Cache";

    /// <summary>Never stored: hop-by-hop fields, what this cache computes, and this balancer's per-request trace.</summary>
    private static readonly FrozenSet<string> Unstored = new[]
    {
        HeaderNames.Connection, HeaderNames.KeepAlive, "Proxy-Connection", HeaderNames.TE, HeaderNames.Trailer, HeaderNames.TransferEncoding,
        HeaderNames.Upgrade, HeaderNames.Age, StatusHeader, Explain.ExplainStep.Header, "Traceparent", "Tracestate",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>Fields a 304 from the cache carries (RFC 9110 §15.4.5).</summary>
    private static readonly FrozenSet<string> NotModifiedFields = new[]
    {
        HeaderNames.CacheControl, HeaderNames.ContentLocation, HeaderNames.Date, HeaderNames.ETag, HeaderNames.Expires, HeaderNames.Vary,
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    private readonly FrozenDictionary<string, PoolCacheOptions> _pools;
    private readonly ResponseCache _cache;
    private readonly BalancerMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly long _maxObjectSize;
    private readonly TimeSpan _lockTimeout;
    private readonly ConcurrentDictionary<string, Task<Fetched?>> _inFlight = new(StringComparer.Ordinal);

    /// <summary>
    /// Keys whose last answer could not be stored (private, Set-Cookie, an error...), until when: their misses do not
    /// wait for one another (Varnish's hit-for-pass), since waiting would only delay each by the first's response.
    /// </summary>
    private readonly ConcurrentDictionary<string, DateTimeOffset> _uncacheable = new(StringComparer.Ordinal);

    private static readonly TimeSpan PassFor = TimeSpan.FromSeconds(10);
    private const int MaxUncacheable = 10_000;

    public CacheStep(BalancerOptions options, ResponseCache cache, BalancerMetrics metrics, TimeProvider time)
    {
        _pools = options.Pools.Where(p => p.Cache is not null).ToFrozenDictionary(p => p.Name, p => p.Cache!, StringComparer.OrdinalIgnoreCase);
        _cache = cache;
        _metrics = metrics;
        _time = time;
        _maxObjectSize = options.Redis.MaxObjectSize;
        _lockTimeout = options.Redis.CacheLockTimeout;
    }

    private int _waiting;

    /// <summary>Misses waiting for another to bring their response (tests watch it).</summary>
    internal int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Some pool caches: the step belongs in the pipeline.</summary>
    public bool Any => _pools.Count > 0;

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var cluster = context.GetReverseProxyFeature().Route.Cluster;
        if (cluster is null || !_pools.TryGetValue(cluster.ClusterId, out var pool))
        {
            return next(context);
        }

        var request = context.Request;
        var rules = CachePolicy.ForRequest(request);
        if (rules.Cacheable)
        {
            return CachedAsync(context, next, cluster.ClusterId, pool, rules);
        }

        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method) && !HttpMethods.IsOptions(request.Method) && !HttpMethods.IsTrace(request.Method))
        {
            return InvalidatingAsync(context, next);
        }

        Count(context, cluster.ClusterId, "BYPASS");
        return next(context);
    }

    private async Task InvalidatingAsync(HttpContext context, RequestDelegate next)
    {
        await next(context).ConfigureAwait(false);
        if (context.Response.StatusCode is >= 200 and < 400 && Failed(context) is false)
        {
            var request = context.Request;
            await _cache.InvalidateAsync(request.Scheme, request.Host.Value ?? "", request.Path.ToUriComponent() + request.QueryString.Value, context.RequestAborted).ConfigureAwait(false);
        }
    }

    private async Task CachedAsync(HttpContext context, RequestDelegate next, string poolName, PoolCacheOptions pool, CachePolicy.RequestRules rules)
    {
        var request = context.Request;
        var key = CacheKey.Of(request);
        if (!rules.Lookup)
        {
            Count(context, poolName, "BYPASS");
            await FetchAsync(context, next, poolName, pool, rules, key).ConfigureAwait(false);
            return;
        }

        var (ok, entry) = await _cache.LookupAsync(key, request.Headers, context.RequestAborted).ConfigureAwait(false);
        if (entry is not null && CachePolicy.Satisfies(entry, rules, _time.GetUtcNow()))
        {
            Count(context, poolName, "HIT");
            await ServeAsync(context, entry).ConfigureAwait(false);
            return;
        }

        if (rules.OnlyIfCached)
        {
            Count(context, poolName, ok ? "MISS" : "BYPASS");
            context.Response.StatusCode = StatusCodes.Status504GatewayTimeout;
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync("504 not in the cache, and the request said only-if-cached\n", context.RequestAborted).ConfigureAwait(false);
            return;
        }

        if (_uncacheable.TryGetValue(key, out var passUntil))
        {
            if (passUntil > _time.GetUtcNow())
            {
                Count(context, poolName, ok ? "MISS" : "BYPASS");
                if (await FetchAsync(context, next, poolName, pool, rules, key).ConfigureAwait(false) is not null)
                {
                    _uncacheable.TryRemove(key, out _);
                }

                return;
            }

            _uncacheable.TryRemove(key, out _);
        }

        // One fetch per key at a time: the first miss fetches, the others wait for what it brings.
        var leader = new TaskCompletionSource<Fetched?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = _inFlight.GetOrAdd(key, leader.Task);
        if (running != leader.Task)
        {
            if (await FollowAsync(running, request.Headers, rules, context.RequestAborted).ConfigureAwait(false) is { } shared)
            {
                Count(context, poolName, "HIT");
                await ServeAsync(context, shared).ConfigureAwait(false);
                return;
            }

            Count(context, poolName, ok ? "MISS" : "BYPASS");
            await FetchAsync(context, next, poolName, pool, rules, key).ConfigureAwait(false);
            return;
        }

        Fetched? fetched = null;
        try
        {
            Count(context, poolName, ok ? "MISS" : "BYPASS");
            fetched = await FetchAsync(context, next, poolName, pool, rules, key).ConfigureAwait(false);
        }
        finally
        {
            if (fetched is null && !context.RequestAborted.IsCancellationRequested)
            {
                if (_uncacheable.Count >= MaxUncacheable)
                {
                    _uncacheable.Clear();
                }

                _uncacheable[key] = _time.GetUtcNow() + PassFor;
            }

            _inFlight.TryRemove(new KeyValuePair<string, Task<Fetched?>>(key, leader.Task));
            leader.SetResult(fetched);
        }
    }

    /// <summary>What the first miss brought, if it answers this request too; null to go to the backend.</summary>
    private async Task<CacheEntry?> FollowAsync(Task<Fetched?> running, IHeaderDictionary request, CachePolicy.RequestRules rules, CancellationToken aborted)
    {
        Fetched? fetched;
        Interlocked.Increment(ref _waiting);
        try
        {
            fetched = await running.WaitAsync(_lockTimeout, _time, aborted).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return null;
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            return null; // the client went away; the fetch that follows ends at once
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }

        if (fetched is null || !CachePolicy.Satisfies(fetched.Entry, rules, _time.GetUtcNow()))
        {
            return null;
        }

        for (var i = 0; i < fetched.Vary.Count; i++)
        {
            if (!StringValues.Equals(JoinValues(request[fetched.Vary[i]]), fetched.VaryValues[fetched.Vary[i]]))
            {
                return null;
            }
        }

        return fetched.Entry;
    }

    /// <summary>Proxies the request, keeping a copy of the response; stores it when it may be stored, and returns it for waiting misses.</summary>
    private async Task<Fetched?> FetchAsync(HttpContext context, RequestDelegate next, string poolName, PoolCacheOptions pool, CachePolicy.RequestRules rules, string key)
    {
        var requestedAt = _time.GetUtcNow();
        var original = context.Features.Get<IHttpResponseBodyFeature>()!;
        var capture = new CacheCapture(original, _maxObjectSize, expectedLength: null);
        context.Features.Set<IHttpResponseBodyFeature>(capture);
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            context.Features.Set(original);
        }

        var response = context.Response;
        if (Failed(context) || context.RequestAborted.IsCancellationRequested)
        {
            return null;
        }

        var storage = CachePolicy.ForResponse(rules, response.StatusCode, response.Headers, requestedAt, pool.Ttl, out _);
        if (storage is null)
        {
            return null;
        }

        var body = capture.Body;
        if (capture.Overflowed)
        {
            _metrics.CacheStore(poolName, "too-large");
            return null;
        }

        if (!HttpMethods.IsHead(context.Request.Method) && response.ContentLength is { } length && length != body.Length)
        {
            return null; // cut short: not the response the backend meant
        }

        var headers = new List<KeyValuePair<string, StringValues>>(response.Headers.Count);
        foreach (var header in response.Headers)
        {
            if (!Unstored.Contains(header.Key) && !storage.Withheld.Contains(header.Key, StringComparer.OrdinalIgnoreCase))
            {
                headers.Add(header);
            }
        }

        var entry = new CacheEntry(requestedAt, storage.InitialAge, storage.Lifetime, response.StatusCode, headers, body);
        var varyValues = new HeaderDictionary();
        foreach (var name in storage.Vary)
        {
            varyValues[name] = JoinValues(context.Request.Headers[name]);
        }

        _cache.Store(poolName, key, entry, storage.Vary, varyValues, requestedAt);
        return new Fetched(entry, storage.Vary, varyValues);
    }

    private static StringValues JoinValues(StringValues values) => values.Count <= 1 ? values : new StringValues(string.Join(',', values.Select(v => v?.Trim())));

    /// <summary>The forwarder gave up on this request (the backend failed, timed out, or the client went away).</summary>
    private static bool Failed(HttpContext context) => context.Features.Get<IForwarderErrorFeature>() is { Error: not ForwarderError.None };

    /// <summary>Answers from a stored response: its fields with <c>Age</c>, or a 304 when the client's copy is current.</summary>
    private static Task ServeAsync(HttpContext context, CacheEntry entry, DateTimeOffset now)
    {
        var response = context.Response;
        var request = context.Request;
        var notModified = NotModified(request.Headers, entry);
        response.StatusCode = notModified ? StatusCodes.Status304NotModified : entry.Status;
        foreach (var (name, values) in entry.Headers)
        {
            if (!notModified || NotModifiedFields.Contains(name))
            {
                response.Headers[name] = values;
            }
        }

        response.Headers.Age = ((long)entry.AgeAt(now).TotalSeconds).ToString(CultureInfo.InvariantCulture);
        if (notModified || HttpMethods.IsHead(request.Method) || entry.Status is StatusCodes.Status204NoContent or < 200)
        {
            return Task.CompletedTask;
        }

        response.ContentLength = entry.Body.Length;
        return response.Body.WriteAsync(entry.Body, context.RequestAborted).AsTask();
    }

    private Task ServeAsync(HttpContext context, CacheEntry entry) => ServeAsync(context, entry, _time.GetUtcNow());

    /// <summary>RFC 9110 §13.1: <c>If-None-Match</c> against the stored ETag (weak comparison), else <c>If-Modified-Since</c>.</summary>
    private static bool NotModified(IHeaderDictionary request, CacheEntry entry)
    {
        if (entry.Status != StatusCodes.Status200OK)
        {
            return false;
        }

        string? Stored(string name) => entry.Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value is [{ } value] ? value : null;
        if (request.IfNoneMatch.Count > 0)
        {
            if (Stored(HeaderNames.ETag) is not { } stored || !EntityTagHeaderValue.TryParse(stored, out var etag)
                || !EntityTagHeaderValue.TryParseList(request.IfNoneMatch, out var asked))
            {
                return false;
            }

            return asked.Any(a => a.Equals(EntityTagHeaderValue.Any) || a.Compare(etag, useStrongComparison: false));
        }

        return request.IfModifiedSince is [{ } since]
            && HeaderUtilities.TryParseDate(since, out var sinceDate)
            && Stored(HeaderNames.LastModified) is { } modified
            && HeaderUtilities.TryParseDate(modified, out var modifiedDate)
            && modifiedDate <= sinceDate;
    }

    /// <summary>Counts the request's result and says it in <c>X-Cache</c>, replacing any the backend sent.</summary>
    private void Count(HttpContext context, string pool, string result)
    {
        _metrics.CacheRequest(pool, result switch { "HIT" => "hit", "MISS" => "miss", _ => "bypass" });
        context.Response.OnStarting(static state =>
        {
            var (response, value) = ((HttpResponse, string))state;
            response.Headers[StatusHeader] = value;
            return Task.CompletedTask;
        }, (context.Response, result));
    }

    /// <summary>A response fetched for a key, with the request values of the fields it varies on.</summary>
    private sealed record Fetched(CacheEntry Entry, IReadOnlyList<string> Vary, IHeaderDictionary VaryValues);
}
