using System.Text.RegularExpressions;
using Balancer.Configuration;
using Balancer.Health;
using Balancer.Registry;

namespace Balancer.Reload;

/// <summary>
/// Reads config.yaml again (on SIGHUP, <c>POST /reload</c>, or a change to the file when <c>reload.watch</c> is on),
/// with the command line and environment the balancer started with. A file with mistakes changes nothing (they are
/// logged and returned). Otherwise what can change live is put in force through the registry, in turn with
/// registrations: pools, their static backends and weights, algorithms, health checks, persistence, backend
/// protocol, retries and timeouts, and routes; in-flight requests and WebSockets go on, every registration is kept.
/// What takes a restart (listeners, TLS, the admin API and control plane, Redis, caches and rate limits, outlier
/// detection, observability) is reported and left as it runs. One reload at a time.
/// </summary>
internal sealed partial class ConfigReloader(
    BalancerOptions started, BackendRegistry registry, ActiveHealthChecker health, Lazy<Balancer.Persistence.AffinityKey> key, Balancer.Observability.BalancerMetrics metrics,
    ILogger<ConfigReloader> logger) : IDisposable
{
    // Keys a reload puts in force; pools' caches and rate limits, and the signing key, are not among them.
    [GeneratedRegex(@"^(backends|routes|health-checks|persistence|retries)(:|$)|^BalanceHub:algorithm$|^proxy:(response-headers-timeout|activity-timeout)$|^load-balancing:(hash-key|virtual-nodes)$|^pools(:\d+(:(?!cache(:|$)|rate-limit(:|$)).*)?)?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Live();

    [GeneratedRegex("^persistence:key$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RestartOnly();

    private readonly SemaphoreSlim _one = new(1, 1);

    // The settings in force: the last reload's, with those that take a restart as the balancer started.
    private IReadOnlyDictionary<string, string?> _running = started.Settings;

    public async Task<ReloadResult> ReloadAsync(string trigger, CancellationToken cancellationToken = default)
    {
        await _one.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Once begun, a reload runs to its end whoever asked for it: a client that leaves must not leave it half done.
            ReloadResult result;
            try
            {
                result = await ApplyAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The file vanished between two reads (an editor's save by rename), could not be read, or worse: nothing changed.
                result = new ReloadResult(false, [$"{started.Source?.Path}: {e.Message}"], [], [], "", Invalid: e is IOException or UnauthorizedAccessException);
            }

            if (!result.Applied)
            {
                LogRefused(logger, trigger, string.Join("; ", result.Errors));
            }
            else
            {
                LogApplied(logger, trigger, result.Changed.Count == 0 ? "nothing changed" : string.Join(", ", result.Changed), result.Registrations);
                if (result.RestartNeeded.Count > 0)
                {
                    LogRestartNeeded(logger, string.Join(", ", result.RestartNeeded));
                }
            }

            return result;
        }
        finally
        {
            _one.Release();
        }
    }

    private async Task<ReloadResult> ApplyAsync(CancellationToken cancellationToken)
    {
        if (started.Source is not { } source)
        {
            return new ReloadResult(false, ["this balancer was not started from a configuration file"], [], [], "");
        }

        var loaded = ConfigLoader.Load(source.Path, source.Args, source.Environment);
        if (loaded.Options is not { } next)
        {
            return new ReloadResult(false, loaded.Errors, [], [], "", Invalid: true);
        }

        if (Unsupported(next) is { Count: > 0 } unsupported)
        {
            return new ReloadResult(false, unsupported, [], [], "", Invalid: true);
        }

        var changedKeys = _running.Keys.Union(next.Settings.Keys, StringComparer.OrdinalIgnoreCase)
            .Where(k => !string.Equals(_running.GetValueOrDefault(k), next.Settings.GetValueOrDefault(k), StringComparison.Ordinal))
            .ToList();
        var live = changedKeys.Where(k => Live().IsMatch(k) && !RestartOnly().IsMatch(k)).ToList();
        var restart = changedKeys.Except(live, StringComparer.OrdinalIgnoreCase).ToList();

        var outcome = await StageAsync(next, cancellationToken).ConfigureAwait(false);
        if (outcome.Succeeded)
        {
            outcome = await registry.ReconfigureAsync(next, cancellationToken).ConfigureAwait(false);
        }

        if (!outcome.Succeeded)
        {
            return new ReloadResult(false, [outcome.Message], [], [], "");
        }

        // What took effect is now the running value; what takes a restart keeps the value it runs with.
        var running = new Dictionary<string, string?>(next.Settings, StringComparer.OrdinalIgnoreCase);
        foreach (var key in restart)
        {
            if (_running.TryGetValue(key, out var was))
            {
                running[key] = was;
            }
            else
            {
                running.Remove(key);
            }
        }

        _running = running;
        foreach (var pool in next.Pools)
        {
            metrics.Initialize(pool.Name); // a pool the reload brought starts its rare counters at zero, as at start-up
        }

        return new ReloadResult(true, [], Shown(live), Shown(restart), outcome.Message);
    }

    /// <summary>
    /// When the new configuration brings backends the running one does not have, a first step that takes no traffic from
    /// anyone: the new backends join beside the old ones (old static backends stay for now), routes into new pools wait,
    /// and their first probes are awaited (as at start-up: at most a probe timeout and a second). Only then does the whole
    /// new configuration go in, so no request meets a pool whose backends are not known to be up.
    /// </summary>
    private async Task<ChangeResult> StageAsync(BalancerOptions next, CancellationToken cancellationToken)
    {
        var running = registry.Current.Pools.ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        var arriving = next.Pools
            .SelectMany(p => p.Backends.Where(b => !(running.TryGetValue(p.Name, out var old) && old.Backends.Any(o => o.Address.Equals(b.Address, StringComparison.OrdinalIgnoreCase))))
                .Select(b => (Pool: p, b.Address)))
            .ToList();
        if (arriving.Count == 0)
        {
            return new ChangeResult(ChangeOutcome.Applied, "");
        }

        var everywhere = next.Pools.SelectMany(p => p.Backends).Select(b => b.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var staging = next with
        {
            Pools = [.. next.Pools.Select(p => running.TryGetValue(p.Name, out var old)
                ? p with { Backends = [.. p.Backends, .. old.Settings.Backends.Where(b => !everywhere.Contains(b.Address))] }
                : p)],
            Routes = [.. next.Routes.Where(r => running.ContainsKey(r.Pool))],
        };
        var staged = await registry.ReconfigureAsync(staging, cancellationToken).ConfigureAwait(false);
        if (staged.Succeeded)
        {
            await Task.WhenAll(arriving.Where(a => a.Pool.HealthChecks.Enabled).Select(a => health.FirstProbeAsync(a.Pool.Name, a.Address, cancellationToken))).ConfigureAwait(false);
        }

        return staged;
    }

    /// <summary>
    /// What a reload cannot put in force and must not pretend to: a pool whose cache or rate limit would differ from the
    /// one running (a new pool inheriting a rate limit included: it would go unlimited), and sticky cookies without a
    /// signing key that can be read or made.
    /// </summary>
    private List<string> Unsupported(BalancerOptions next)
    {
        var problems = new List<string>();
        foreach (var pool in next.Pools)
        {
            var running = started.Pools.FirstOrDefault(p => p.Name.Equals(pool.Name, StringComparison.OrdinalIgnoreCase));
            if (Canonical(running?.Cache) != Canonical(pool.Cache) || Canonical(running?.RateLimit) != Canonical(pool.RateLimit))
            {
                problems.Add($"pool {pool.Name}: its response cache or rate limit would {(running is null ? "be new" : "change")}, and those take a restart; nothing changed");
            }
        }

        if (next.Pools.Any(p => p.Persistence.IsSigned))
        {
            try
            {
                _ = key.Value;
            }
            catch (IOException e)
            {
                problems.Add($"persistence: {e.Message}; nothing changed");
            }
        }

        return problems;
    }

    private static string Canonical(PoolCacheOptions? cache) => cache is null ? "" : cache.Ttl.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string Canonical(RateLimitOptions? limit) => limit is null ? "" : string.Join('|',
        limit.Rate, limit.Burst, string.Join(',', limit.Exempt.Networks), limit.Header, limit.Shared, limit.MaxClients);

    public void Dispose() => _one.Dispose();

    /// <summary>Key paths as error messages show them (<c>pools[0].backends[1].weight</c>), sorted, once each.</summary>
    private static List<string> Shown(IEnumerable<string> keys) =>
        [.. keys.Select(ConfigReader.DisplayPath).Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.OrdinalIgnoreCase)];

    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Configuration reloaded ({Trigger}): {Changed}; {Registrations}")]
    private static partial void LogApplied(ILogger logger, string trigger, string changed, string registrations);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Error, Message = "Configuration reload ({Trigger}) refused, nothing changed: {Errors}")]
    private static partial void LogRefused(ILogger logger, string trigger, string errors);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Warning, Message = "These changed settings take a restart and are still as they were: {Settings}")]
    private static partial void LogRestartNeeded(ILogger logger, string settings);
}
