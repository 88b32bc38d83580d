using Balancer.Observability;
using Balancer.Redis;
using StackExchange.Redis;

namespace Balancer.Caching;

/// <summary>
/// The stored responses, in Redis: a lookup (one round trip, two when the URL's responses vary) bounded by
/// <c>redis-server.timeout</c> like every call made for a request, stores that never hold a request up, invalidation
/// of a URL and purges by key pattern. Every failure (Redis down, slow, a value that is not an entry) is a miss.
/// </summary>
internal sealed class ResponseCache(RedisConnection redis, BalancerMetrics metrics, ILogger<ResponseCache> log)
{
    private const int MaxPendingStores = 256;

    private int _pendingStores;

    /// <summary>Stores sent and not yet answered (tests wait for none).</summary>
    public int PendingStores => Volatile.Read(ref _pendingStores);

    /// <summary>Whether lookups can be made now (connected).</summary>
    public bool Available => redis.Database is not null;

    /// <summary>
    /// The stored answer for <paramref name="key"/> and this request's values of the fields it varies on; Ok false when
    /// Redis could not be asked in time (the request goes to the backend as a bypass).
    /// </summary>
    public async ValueTask<(bool Ok, CacheEntry? Entry)> LookupAsync(string key, IHeaderDictionary request, CancellationToken cancellation)
    {
        var (ok, value) = await redis.CallAsync<byte[]?>("cache-lookup", async db =>
        {
            var stored = (byte[]?)await db.StringGetAsync(key).ConfigureAwait(false);
            if (stored is not null && VaryMarker.IsMarker(stored))
            {
                stored = VaryMarker.TryRead(stored) is { } marker ? (byte[]?)await db.StringGetAsync(marker.VariantKey(key, request)).ConfigureAwait(false) : null;
            }

            return stored;
        }, cancellation).ConfigureAwait(false);
        if (!ok)
        {
            return (false, null);
        }

        if (value is null)
        {
            return (true, null);
        }

        var entry = CacheEntry.TryRead(value);
        if (entry is null)
        {
            log.LogWarning("The cached value at {Key} is not an entry this balancer wrote; answering from the backend and replacing it", key);
        }

        return (true, entry);
    }

    /// <summary>
    /// Stores <paramref name="entry"/> in the background for as long as it stays fresh. <paramref name="varyValues"/>
    /// holds the request's values of the fields it varies on (empty when it does not vary).
    /// </summary>
    public void Store(string pool, string key, CacheEntry entry, IReadOnlyList<string> vary, IHeaderDictionary varyValues, DateTimeOffset now)
    {
        var ttl = entry.RemainingAt(now);
        if (ttl < TimeSpan.FromMilliseconds(1) || redis.Database is null)
        {
            metrics.CacheStore(pool, "failed");
            return;
        }

        // Stores never hold a request up, so a slow Redis could pile them up: past this many in flight, new ones are
        // dropped (each holds a copy of its body) until Redis catches up.
        if (Interlocked.Increment(ref _pendingStores) > MaxPendingStores)
        {
            Interlocked.Decrement(ref _pendingStores);
            metrics.CacheStore(pool, "dropped");
            return;
        }

        _ = StoreAsync(pool, key, entry.Write(), ttl, vary, varyValues);
    }

    private async Task StoreAsync(string pool, string key, byte[] value, TimeSpan ttl, IReadOnlyList<string> vary, IHeaderDictionary varyValues)
    {
        try
        {
            var (ok, _) = await redis.CallAsync("cache-store", async db =>
            {
                if (vary.Count == 0)
                {
                    return await db.StringSetAsync(key, value, ttl).ConfigureAwait(false);
                }

                var stored = (byte[]?)await db.StringGetAsync(key).ConfigureAwait(false);
                var marker = stored is not null ? VaryMarker.TryRead(stored) : null;
                if (marker is null || !marker.SameNames(vary))
                {
                    marker = new VaryMarker((ulong)Random.Shared.NextInt64(), vary);
                    await db.StringSetAsync(key, marker.Write(), ttl).ConfigureAwait(false);
                }
                else if (await db.KeyTimeToLiveAsync(key).ConfigureAwait(false) is not { } left || left < ttl)
                {
                    // The marker lives as long as its longest-lived variant (read, then set: EXPIRE GT needs Redis 7).
                    await db.KeyExpireAsync(key, ttl).ConfigureAwait(false);
                }

                return await db.StringSetAsync(marker.VariantKey(key, varyValues), value, ttl).ConfigureAwait(false);
            }).ConfigureAwait(false);
            metrics.CacheStore(pool, ok ? "stored" : "failed");
        }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException)
        {
            // Shutting down: the connection went away under the store.
            log.LogDebug("A cache store was dropped: {Error}", e.Message);
        }
        finally
        {
            Interlocked.Decrement(ref _pendingStores);
        }
    }

    /// <summary>
    /// RFC 9111 §4.4: a successful unsafe request (POST, PUT, DELETE, ...) to a URL makes its stored answers unusable:
    /// its GET and HEAD keys go, and with them the markers that lead to their variants.
    /// </summary>
    public async Task InvalidateAsync(string scheme, string host, string pathAndQuery, CancellationToken cancellation)
    {
        var keys = CacheKey.OfUrl(scheme, host, pathAndQuery);
        var (ok, deleted) = await redis.CallAsync("cache-invalidate", db => db.KeyDeleteAsync([.. keys.Select(k => (RedisKey)k)]), cancellation).ConfigureAwait(false);
        if (ok && deleted > 0)
        {
            metrics.CacheEvictions(deleted, "invalidated");
        }
    }

    /// <summary>Deletes every entry matching any of the patterns; the number deleted, or null while Redis is down.</summary>
    public async Task<long?> PurgeAsync(IReadOnlyList<string> patterns, CancellationToken cancellation)
    {
        long total = 0;
        foreach (var pattern in patterns)
        {
            long? deleted;
            try
            {
                deleted = await redis.DeleteMatchingAsync(pattern, cancellation).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or RedisCommandException or TimeoutException or ObjectDisposedException
                                          or InvalidOperationException or OperationCanceledException)
            {
                log.LogWarning("A cache purge stopped after {Deleted} entries: {Error}", total, e.Message);
                deleted = null;
            }

            if (deleted is null)
            {
                if (total > 0)
                {
                    metrics.CacheEvictions(total, "purge");
                }

                return null;
            }

            total += deleted.Value;
        }

        metrics.CacheEvictions(total, "purge");
        return total;
    }
}
