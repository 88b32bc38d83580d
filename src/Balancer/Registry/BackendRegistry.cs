using System.Collections.Immutable;
using System.Threading.Channels;
using Balancer.Configuration;
using Balancer.Networking;
using Balancer.Observability;
using Microsoft.Data.Sqlite;

namespace Balancer.Registry;

/// <summary>
/// The single owner of routing state. Changes queue up and one writer applies them in batches: each change is
/// checked against the current state, written under its own savepoint, and the batch's new snapshot is made
/// live in the data plane while the transaction is still open; only then is it committed. A caller hears
/// success only when its change is both stored and live: if making it live fails, the transaction is rolled
/// back; if the commit fails, the previous snapshot is made live again. Readers take <see cref="Current"/>.
/// </summary>
public sealed partial class BackendRegistry : IAsyncDisposable
{
    private const int MaxBatch = 1024;

    private IReadOnlyList<PoolOptions> _pools;
    private HashSet<string> _staticAddresses;
    private readonly SqliteRegistrationStore _store;
    private readonly IRoutingPublisher _publisher;
    private readonly ILogger<BackendRegistry> _logger;
    private readonly TimeProvider _time;
    private readonly OwnListeners? _own;
    private readonly EventFeed? _events;
    private readonly BalancerMetrics? _metrics;
    private readonly Channel<Pending> _queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(64 * 1024) { SingleReader = true });
    private readonly Task _writer;
    private ImmutableDictionary<string, BackendEntry> _registered;
    private RoutingSnapshot _current;
    private long _lastOrder;
    private long _lastVersion = 1;

    internal BackendRegistry(BalancerOptions options, SqliteRegistrationStore store, IRoutingPublisher publisher, ILogger<BackendRegistry> logger, TimeProvider? time = null, OwnListeners? own = null, EventFeed? events = null, BalancerMetrics? metrics = null)
    {
        _own = own;
        _events = events;
        _metrics = metrics;
        _time = time ?? TimeProvider.System;
        _pools = options.Pools;
        _staticAddresses = options.Pools.SelectMany(p => p.Backends).Select(b => b.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
        _store = store;
        _publisher = publisher;
        _logger = logger;

        var stored = store.LoadAll();
        var known = _pools.Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        Orphans = [.. stored.Where(b => !known.Contains(b.Pool)).Select(b => $"{b.Address} (pool {b.Pool})")];
        foreach (var orphan in Orphans)
        {
            LogOrphan(logger, orphan);
        }

        _registered = stored.Where(b => known.Contains(b.Pool)).ToImmutableDictionary(b => b.Address, StringComparer.OrdinalIgnoreCase);
        _lastOrder = stored.Count == 0 ? 0 : stored.Max(b => b.Order);
        _current = RoutingSnapshot.Build(1, _pools, _registered.Values, options.Routes);
        publisher.Initialize(_current);
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>The snapshot in force: static and registered backends, by pool.</summary>
    public RoutingSnapshot Current => Volatile.Read(ref _current);

    /// <summary>Stored registrations whose pool is no longer configured: kept, not routed.</summary>
    public IReadOnlyList<string> Orphans { get; }

    /// <summary>Where registrations are stored.</summary>
    public string DatabasePath => _store.Path;

    /// <summary>
    /// Raised, on the registry's writer, after each new snapshot is stored and live. Handlers must be quick:
    /// they hold up the next batch of changes.
    /// </summary>
    public event Action<RoutingSnapshot>? Published;

    /// <summary>Queues a change and completes when it is stored and live, or has been refused.</summary>
    public Task<ChangeResult> ApplyAsync(RegistryChange change, CancellationToken cancellationToken = default) => ApplyAsync(change, "api", cancellationToken);

    /// <param name="requester">Who asked, for the metrics: <c>api</c>, <c>control-plane</c>, <c>drain</c> (a drain that ended).</param>
    public async Task<ChangeResult> ApplyAsync(RegistryChange change, string requester, CancellationToken cancellationToken = default)
    {
        var result = await QueueAsync(change, cancellationToken).ConfigureAwait(false);
        _metrics?.Registration(requester, OperationName(change), result.Outcome.ToString().ToLowerInvariant());
        return result;
    }

    /// <summary>
    /// Puts a reloaded configuration in force, in turn with registrations: its pools (static backends, weights,
    /// algorithms, health checks, persistence) and routes, keeping every registration. Registrations whose pool is gone
    /// are kept stored, not routed, until a pool of that name returns; one at an address now configured yields to it.
    /// Completes when the new routing is live, or has been refused (nothing then changes).
    /// </summary>
    internal async Task<ChangeResult> ReconfigureAsync(BalancerOptions options, CancellationToken cancellationToken = default)
    {
        return await EnqueueAsync(new Pending(null) { Options = options }, cancellationToken).ConfigureAwait(false);
    }

    private async Task ReconfigureAsync(Pending pending)
    {
        var options = pending.Options!;
        var statics = options.Pools.SelectMany(p => p.Backends).Select(b => b.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var known = options.Pools.Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var routed = _registered.Values.Where(b => known.Contains(b.Pool) && !statics.Contains(b.Address)).ToList();
        var next = RoutingSnapshot.Build(++_lastVersion, options.Pools, routed, options.Routes);
        try
        {
            await _publisher.PublishAsync(next, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            pending.Result.TrySetResult(new ChangeResult(ChangeOutcome.Failed, $"the proxy refused the new configuration, nothing changed: {e.Message}"));
            return;
        }

        var previous = _current;
        _pools = options.Pools;
        _staticAddresses = statics;
        Volatile.Write(ref _current, next);
        Announce(Differences(previous, next));
        Follow(next);

        var unrouted = _registered.Count - routed.Count;
        pending.Result.TrySetResult(new ChangeResult(ChangeOutcome.Applied, unrouted == 0
            ? $"{routed.Count} registration(s) kept"
            : $"{routed.Count} registration(s) kept and routed, {unrouted} kept but not routed (their pool is gone, or config.yaml now lists their address)"));
    }

    private Task<ChangeResult> QueueAsync(RegistryChange change, CancellationToken cancellationToken) => EnqueueAsync(new Pending(change), cancellationToken);

    private async Task<ChangeResult> EnqueueAsync(Pending pending, CancellationToken cancellationToken)
    {
        try
        {
            await _queue.Writer.WriteAsync(pending, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            return new ChangeResult(ChangeOutcome.Failed, "the balancer is shutting down");
        }

        return await pending.Result.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static string OperationName(RegistryChange change) => change switch
    {
        RegistryChange.Register => "register",
        RegistryChange.Deregister => "deregister",
        RegistryChange.Update => "update",
        _ => "drain",
    };

    /// <summary>Tells the event feed what a committed batch changed.</summary>
    private void Announce(List<(BackendEntry? Before, BackendEntry? After)> changes)
    {
        if (_events is not { } events)
        {
            return;
        }

        foreach (var (before, after) in changes)
        {
            if (before is null && after is not null)
            {
                events.Publish(EventKinds.Registered, after.Pool, after.Address, $"registered through {(after.Source == BackendSource.Api ? "the admin API" : after.Source == BackendSource.ControlPlane ? "the control plane" : "config.yaml")}, weight {after.Weight}");
            }
            else if (before is not null && after is null)
            {
                if (before.DrainingSince is not null)
                {
                    events.Publish(EventKinds.DrainEnd, before.Pool, before.Address, "drained");
                }

                events.Publish(EventKinds.Removed, before.Pool, before.Address, before.DrainingSince is not null ? "removed after draining" : "deregistered");
            }
            else if (before is not null && after is not null)
            {
                if (before.DrainingSince is null && after.DrainingSince is not null)
                {
                    events.Publish(EventKinds.DrainStart, after.Pool, after.Address, "drain asked for: no new requests, removed once idle");
                }
                else
                {
                    events.Publish(EventKinds.Updated, after.Pool, after.Address, $"weight {after.Weight}, {after.Paths.Count} path(s), {after.Clients.Networks.Count} client network(s)");
                }
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<Pending>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            // A reconfiguration goes alone, between the registrations before it and those after.
            while (batch.Count < MaxBatch && _queue.Reader.TryPeek(out var next) && (next.Options is null || batch.Count == 0) && _queue.Reader.TryRead(out var pending))
            {
                batch.Add(pending);
                if (pending.Options is not null)
                {
                    break;
                }
            }

            try
            {
                if (batch is [{ Options: not null } reconfiguration])
                {
                    await ReconfigureAsync(reconfiguration).ConfigureAwait(false);
                    continue;
                }

                await ApplyBatchAsync(batch).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                LogBatchFailed(_logger, e);
                foreach (var pending in batch)
                {
                    pending.Result.TrySetResult(new ChangeResult(ChangeOutcome.Failed, $"internal error, nothing was stored: {e.Message}"));
                }

                Recover();
            }
        }
    }

    /// <summary>After a batch failed in an unexpected way, starts the store over on a fresh connection.</summary>
    private void Recover()
    {
        try
        {
            _store.Reopen();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogReopenFailed(_logger, e);
        }
    }

    private async Task ApplyBatchAsync(List<Pending> batch)
    {
        var working = _registered;
        var changes = new List<(BackendEntry? Before, BackendEntry? After)>();
        // Answers that depend on what this batch writes: given only once the batch is stored and live.
        var deferred = new List<(Pending Pending, ChangeResult Result)>();
        var touched = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var order = _lastOrder;
        RegistrationBatch transaction;
        try
        {
            transaction = _store.Begin();
        }
        catch (SqliteException e)
        {
            Fail(batch, $"database unavailable, nothing was stored: {e.Message}");
            Recover();
            return;
        }

        using var _ = transaction;
        for (var index = 0; index < batch.Count; index++)
        {
            var pending = batch[index];
            var address = pending.Change.Address;
            var (refusal, before, after, message) = Decide(pending.Change, working, ref order);
            if (refusal is not null || before == after)
            {
                // A refusal or a no-op judged against the committed state is true now; judged against a change
                // earlier in this batch, it is true only once that change is.
                var answer = refusal ?? new ChangeResult(ChangeOutcome.Applied, message, after);
                if (touched.Contains(address))
                {
                    deferred.Add((pending, answer));
                }
                else
                {
                    pending.Result.TrySetResult(answer);
                }

                continue;
            }

            try
            {
                transaction.Write(before, after);
            }
            catch (SqliteException e)
            {
                pending.Result.TrySetResult(new ChangeResult(ChangeOutcome.Failed, $"database refused the change, nothing was stored: {e.Message}"));
                if (transaction.Broken)
                {
                    // SQLite rolled the whole transaction back (as a full disk can make it): the changes written before
                    // this one are gone too, and the rest cannot be written in it.
                    Fail(deferred, $"database rolled the batch back, nothing was stored: {e.Message}");
                    Fail(batch.Skip(index + 1), $"database rolled the batch back, nothing was stored: {e.Message}");
                    return;
                }

                continue;
            }

            working = after is null ? working.Remove(address) : working.SetItem(after.Address, after);
            touched.Add(address);
            changes.Add((before, after));
            deferred.Add((pending, new ChangeResult(ChangeOutcome.Applied, message, after, Created: before is null && after is not null)));
        }

        if (changes.Count == 0)
        {
            return;
        }

        var previous = _current;
        var next = previous.Apply(++_lastVersion, changes);
        try
        {
            await _publisher.PublishAsync(next, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Fail(deferred, $"routing update failed, nothing was stored: {e.Message}");
            return; // disposing the transaction rolls it back
        }

        try
        {
            transaction.Commit();
        }
        catch (SqliteException e)
        {
            await RestoreAsync(previous).ConfigureAwait(false);
            Fail(deferred, $"database commit failed, routing restored: {e.Message}");
            return;
        }

        _registered = working;
        _lastOrder = order;
        Volatile.Write(ref _current, next);
        Announce(changes);

        // Followers first (health checks start probing new backends), then the answers.
        Follow(next);

        foreach (var (pending, result) in deferred)
        {
            pending.Result.TrySetResult(result);
        }
    }

    /// <summary>What a reconfiguration did to each backend (by pool and address), as the event feed tells it.</summary>
    private static List<(BackendEntry? Before, BackendEntry? After)> Differences(RoutingSnapshot previous, RoutingSnapshot next)
    {
        static Dictionary<(string, string), BackendEntry> Of(RoutingSnapshot snapshot) => snapshot.Pools.SelectMany(p => p.Backends)
            .ToDictionary(b => (b.Pool.ToLowerInvariant(), b.Address.ToLowerInvariant()));
        var before = Of(previous);
        var after = Of(next);
        var changes = new List<(BackendEntry? Before, BackendEntry? After)>();
        foreach (var (key, was) in before)
        {
            if (!after.TryGetValue(key, out var now))
            {
                changes.Add((was, null));
            }
            else if (was.Weight != now.Weight || !was.Paths.SequenceEqual(now.Paths) || !was.Clients.Networks.SequenceEqual(now.Clients.Networks))
            {
                changes.Add((was, now));
            }
        }

        changes.AddRange(after.Where(a => !before.ContainsKey(a.Key)).Select(a => ((BackendEntry?)null, (BackendEntry?)a.Value)));
        return changes;
    }

    /// <summary>Tells every follower of <see cref="Published"/>; one that fails is logged and the others still hear.</summary>
    private void Follow(RoutingSnapshot next)
    {
        foreach (var follower in Published?.GetInvocationList() ?? [])
        {
            try
            {
                ((Action<RoutingSnapshot>)follower)(next);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                LogFollowerFailed(_logger, e);
            }
        }
    }

    private async Task RestoreAsync(RoutingSnapshot previous)
    {
        try
        {
            await _publisher.PublishAsync(previous with { Version = ++_lastVersion }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogRestoreFailed(_logger, e);
        }
    }

    private static void Fail(List<(Pending Pending, ChangeResult Result)> deferred, string message) => Fail(deferred.Select(d => d.Pending), message);

    private static void Fail(IEnumerable<Pending> pendings, string message)
    {
        foreach (var pending in pendings)
        {
            pending.Result.TrySetResult(new ChangeResult(ChangeOutcome.Failed, message));
        }
    }

    /// <summary>What a change would do to one backend, or why it is refused. No I/O.</summary>
    private (ChangeResult? Refusal, BackendEntry? Before, BackendEntry? After, string Message) Decide(
        RegistryChange change, ImmutableDictionary<string, BackendEntry> registered, ref long order)
    {
        var address = change.Address;
        if (_staticAddresses.Contains(address))
        {
            return (new ChangeResult(ChangeOutcome.Conflict, $"{address} is configured in config.yaml; change it there"), null, null, "");
        }

        registered.TryGetValue(address, out var before);
        switch (change)
        {
            case RegistryChange.Register add:
                var pool = _pools.FirstOrDefault(p => p.Name.Equals(add.Pool, StringComparison.OrdinalIgnoreCase));
                if (pool is null)
                {
                    return (new ChangeResult(ChangeOutcome.Invalid, $"no pool named {add.Pool} (pools: {string.Join(", ", _pools.Select(p => p.Name))})"), null, null, "");
                }

                if (before is null && _own?.Refusal(address) is { } loop)
                {
                    return (new ChangeResult(ChangeOutcome.Invalid, loop), null, null, "");
                }

                if (before is null)
                {
                    var created = new BackendEntry(address, pool.Name, add.Weight ?? 1, [.. add.Paths.Distinct(StringComparer.OrdinalIgnoreCase)], new NetworkList(add.Clients.Distinct()), add.Source, ++order);
                    return (null, null, created, $"registered {address}");
                }

                if (add.MustBeNew)
                {
                    return (new ChangeResult(ChangeOutcome.Conflict, $"{address} is already registered", before), null, null, "");
                }

                if (!before.Pool.Equals(pool.Name, StringComparison.OrdinalIgnoreCase))
                {
                    return (new ChangeResult(ChangeOutcome.Conflict, $"{address} is registered in pool {before.Pool}; remove it first to move it", before), null, null, "");
                }

                var havePaths = before.Paths.ToHashSet(StringComparer.OrdinalIgnoreCase);
                var haveClients = before.Clients.Networks.ToHashSet();
                var newPaths = add.Paths.Where(havePaths.Add).ToList();
                var newClients = add.Clients.Where(haveClients.Add).ToList();
                var weight = add.Weight ?? before.Weight;
                if (newPaths.Count == 0 && newClients.Count == 0 && weight == before.Weight)
                {
                    return (null, before, before, $"{address} is already registered with these paths and clients");
                }

                var grown = before with { Weight = weight, Paths = [.. before.Paths, .. newPaths], Clients = new NetworkList([.. before.Clients.Networks, .. newClients]) };
                return (null, before, grown, $"updated {address}: {Count(newPaths.Count, "path")} and {Count(newClients.Count, "client")} added");

            case RegistryChange.Deregister remove:
                if (before is null)
                {
                    return (new ChangeResult(ChangeOutcome.NotFound, $"{address} is not registered"), null, null, "");
                }

                if (remove.Paths.Count == 0 && remove.Clients.Count == 0)
                {
                    return (null, before, null, $"removed {address}");
                }

                var dropPaths = remove.Paths.ToHashSet(StringComparer.OrdinalIgnoreCase);
                var dropClients = remove.Clients.ToHashSet();
                var keptPaths = before.Paths.Where(p => !dropPaths.Contains(p)).ToList();
                var keptClients = before.Clients.Networks.Where(c => !dropClients.Contains(c)).ToList();
                var shrunk = before with { Paths = keptPaths, Clients = new NetworkList(keptClients) };
                var message = $"updated {address}: {Count(before.Paths.Count - keptPaths.Count, "path")} and {Count(before.Clients.Networks.Count - keptClients.Count, "client")} removed";
                return keptPaths.Count == before.Paths.Count && keptClients.Count == before.Clients.Networks.Count
                    ? (null, before, before, message)
                    : (null, before, shrunk, message);

            case RegistryChange.Drain:
                if (before is null)
                {
                    return (new ChangeResult(ChangeOutcome.NotFound, $"{address} is not registered"), null, null, "");
                }

                return before.DrainingSince is not null
                    ? (null, before, before, $"{address} is already draining")
                    : (null, before, before with { DrainingSince = _time.GetUtcNow() }, $"draining {address}: no new requests; it is removed once idle");

            case RegistryChange.Update update:
                if (before is null)
                {
                    return (new ChangeResult(ChangeOutcome.NotFound, $"{address} is not registered"), null, null, "");
                }

                var paths = update.Paths is null ? before.Paths : [.. update.Paths.Distinct(StringComparer.OrdinalIgnoreCase)];
                var clients = update.Clients is null ? before.Clients : new NetworkList(update.Clients.Distinct());
                var updated = before with { Weight = update.Weight ?? before.Weight, Paths = paths, Clients = clients };
                var same = updated.Weight == before.Weight
                    && paths.SequenceEqual(before.Paths, StringComparer.OrdinalIgnoreCase)
                    && clients.Networks.SequenceEqual(before.Clients.Networks);
                return same
                    ? (null, before, before, $"{address} already has these settings")
                    : (null, before, updated, $"updated {address}: weight {updated.Weight}, {Count(paths.Count, "path")}, {Count(clients.Networks.Count, "client")}");

            default:
                throw new ArgumentOutOfRangeException(nameof(change), change, "unknown change");
        }
    }

    private static string Count(int count, string noun) => $"{count} {noun}{(count == 1 ? "" : "s")}";

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        _store.Dispose();
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Registration {Registration} names a pool that is no longer configured; it is kept in the database but not routed")]
    private static partial void LogOrphan(ILogger logger, string registration);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "A batch of registry changes failed unexpectedly")]
    private static partial void LogBatchFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Error, Message = "Reopening the registration database after a failure failed; the next change tries again")]
    private static partial void LogReopenFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Error, Message = "A follower of routing changes failed; the change itself is stored and live")]
    private static partial void LogFollowerFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Error, Message = "After a failed commit, restoring the previous routing also failed; routing may show changes the database does not hold")]
    private static partial void LogRestoreFailed(ILogger logger, Exception exception);

    private sealed class Pending(RegistryChange? change)
    {
        public RegistryChange Change { get; } = change!;

        /// <summary>A reloaded configuration to put in force, instead of a change.</summary>
        public BalancerOptions? Options { get; init; }

        public TaskCompletionSource<ChangeResult> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
