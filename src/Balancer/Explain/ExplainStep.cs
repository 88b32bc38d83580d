using System.Collections.Frozen;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Balancer.Configuration;
using Balancer.Health;
using Balancer.LoadBalancing;
using Balancer.Observability;
using Balancer.Proxy;
using Balancer.Registry;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.Explain;

/// <summary>
/// The proxy pipeline steps of the decision trace, in the pipeline only when <c>observability.explain</c> is enabled
/// (so that, off, it costs nothing at all). <see cref="BeginAsync"/> decides whether a request asked and may ask, and
/// starts its trace with the route, the pool and every backend, available or excluded and why;
/// <see cref="RestrictedAsync"/> adds what path and client restrictions excluded; per try,
/// <see cref="BeforePickAsync"/>, <see cref="PickedAsync"/> and <see cref="SentAsync"/> note the candidates, the
/// algorithm's pick and reason, and where the try went when slow start or a concurrency limit moved it. The retry step
/// adds each try's outcome and why it was retried.
/// </summary>
internal sealed class ExplainStep(
    BalancerOptions options, ExplainLog log, BackendRegistry registry, BackendStates states, SlowStart slowStart, IEnumerable<ILoadBalancingPolicy> policies, TimeProvider time)
{
    /// <summary>Request header asking for the trace (<c>1</c>); response header carrying the compact one.</summary>
    public const string Header = "X-Balancer-Explain";

    /// <summary>Request header with the admin token, for a client that is not a trusted proxy.</summary>
    public const string TokenHeader = "X-Balancer-Token";

    private readonly byte[]? _token = string.IsNullOrEmpty(options.Admin.Token) ? null : Encoding.UTF8.GetBytes(options.Admin.Token);
    private readonly FrozenDictionary<string, ILoadBalancingPolicy> _policies = policies.ToFrozenDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    public Task BeginAsync(HttpContext context, RequestDelegate next)
    {
        // Neither header reaches a backend either way: the proxy's transforms drop them.
        var headers = context.Request.Headers;
        var asked = headers[Header];
        return asked.Count == 1 && asked[0]!.Trim() == "1" && Allowed(context.Connection.RemoteIpAddress, headers[TokenHeader])
            ? ExplainAsync(context, next)
            : next(context);
    }

    /// <summary>A trusted proxy's connection, or the admin token (compared in constant time).</summary>
    private bool Allowed(IPAddress? peer, Microsoft.Extensions.Primitives.StringValues token) =>
        options.Proxy.TrustedProxies.Contains(peer)
        || (_token is not null && token.Count == 1 && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(token[0] ?? ""), _token));

    private async Task ExplainAsync(HttpContext context, RequestDelegate next)
    {
        var started = time.GetTimestamp();
        var request = context.Request;
        var client = ClientAddress.Resolve(context, options.Proxy.TrustedProxies);
        var trace = new DecisionTrace(request.Method, request.Path.Value ?? "/", client?.ToString(), time.GetUtcNow());
        log.Add(trace, TraceParent.TraceIdOf(context) ?? ActivityTraceId.CreateRandom().ToHexString());
        context.Features.Set(trace);
        context.Response.OnStarting(static state =>
        {
            var (step, context, trace) = ((ExplainStep, HttpContext, DecisionTrace))state;
            step.NoteRefusal(context, trace);
            context.Response.Headers[Header] = trace.Compact();
            return Task.CompletedTask;
        }, (this, context, trace));

        var proxy = context.GetReverseProxyFeature();
        var cluster = proxy.Route.Cluster!;
        trace.Matched(proxy.Route.Config.RouteId, cluster.ClusterId, cluster.Model.Config.LoadBalancingPolicy ?? options.Algorithm);
        Candidates(trace, cluster, proxy.AllDestinations, proxy.AvailableDestinations);
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            NoteRefusal(context, trace); // when the response never started (the client left)
            trace.End(context.Response.StatusCode, time.GetElapsedTime(started));
        }
    }

    /// <summary>A 403 from the restriction step, which answers without going on: what each backend was restricted by.</summary>
    private void NoteRefusal(HttpContext context, DecisionTrace trace)
    {
        if (!trace.RestrictionsNoted && context.Response.StatusCode == StatusCodes.Status403Forbidden)
        {
            NoteRestrictions(context, trace, left: []);
            trace.Note($"403: no backend serving {trace.Path} admits the client {trace.Client ?? "(unknown)"}");
        }
    }

    /// <summary>Every backend of the pool: available, or why not (weight, drain, outlier ejection, active health).</summary>
    private void Candidates(DecisionTrace trace, ClusterState cluster, IReadOnlyList<DestinationState> all, IReadOnlyList<DestinationState> available)
    {
        var included = new HashSet<DestinationState>(available, ReferenceEqualityComparer.Instance);
        var probed = cluster.Model.Config.Metadata?.ContainsKey(AvailableDestinationsPolicy.ActiveChecksMetadata) == true;
        var entries = EntriesOf(cluster.ClusterId);
        var panicking = false;
        foreach (var destination in all.OrderBy(DestinationMetadata.OrderOf))
        {
            var isIncluded = included.Contains(destination);
            panicking |= isIncluded && destination.Health.Active == DestinationHealth.Unhealthy;
            if (trace.CandidatesFull)
            {
                trace.Unlisted(isIncluded);
                continue;
            }

            var address = destination.Model.Config.Address;
            var view = entries.TryGetValue(address, out var backend) ? states.View(backend) : null;
            trace.Candidate(
                address,
                DestinationMetadata.WeightOf(destination),
                view?.EffectiveWeight ?? DestinationMetadata.WeightOf(destination),
                destination.ConcurrentRequestCount,
                isIncluded ? null : Exclusion(destination, view, probed));
        }

        if (panicking)
        {
            trace.Note(options.LoadBalancing.PanicThreshold > 0
                ? $"panic: fewer than {options.LoadBalancing.PanicThreshold}% of the pool's backends are healthy, so unhealthy ones take traffic too (load-balancing.when-all-unhealthy: panic)"
                : "panic: no backend of the pool is healthy, so unhealthy ones take traffic (load-balancing.when-all-unhealthy: panic)");
        }
    }

    private static string Exclusion(DestinationState destination, BackendView? view, bool probed)
    {
        if (DestinationMetadata.WeightOf(destination) == 0)
        {
            return "weight 0";
        }

        if (DestinationMetadata.IsDraining(destination))
        {
            return view?.DrainingSince is { } since ? $"draining since {Time(since)}" : "draining";
        }

        if (destination.Health.Passive == DestinationHealth.Unhealthy)
        {
            return view?.EjectedUntil is { } until ? $"ejected by outlier detection until {Time(until)}" : "ejected by outlier detection";
        }

        if (destination.Health.Active == DestinationHealth.Unhealthy)
        {
            return $"unhealthy{(view?.HealthSince is { } since ? " since " + Time(since) : "")}: {view?.HealthReason ?? "failed its health checks"}";
        }

        return probed && destination.Health.Active == DestinationHealth.Unknown ? "not probed yet: waits for its first health check" : "not available";
    }

    /// <summary>After the restriction step: the backends it left out, each restricted by path or by client.</summary>
    public Task RestrictedAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<DecisionTrace>() is { } trace)
        {
            var left = context.GetReverseProxyFeature().AvailableDestinations.Select(d => d.Model.Config.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
            NoteRestrictions(context, trace, left);
        }

        return next(context);
    }

    private void NoteRestrictions(HttpContext context, DecisionTrace trace, HashSet<string> left)
    {
        trace.RestrictionsNoted = true;
        var cluster = context.GetReverseProxyFeature().Route.Cluster!;
        var client = trace.Client is { } text && IPAddress.TryParse(text, out var parsed) ? parsed : null;
        var backends = EntriesOf(cluster.ClusterId);
        // The restriction index's own choice of who serves the path; of those, the client restrictions decided.
        var group = PoolRestrictions.For(cluster.Model.Config)?.Select(trace.Path);
        foreach (var backend in trace.AvailableBackends().Where(b => !left.Contains(b)))
        {
            trace.Exclude(backend, backends.TryGetValue(backend, out var entry) ? Restriction(entry, trace.Path, group?.Serves(backend) == true, client) : "restricted");
        }
    }

    /// <summary>The registry's entries of a pool's backends, by address.</summary>
    private Dictionary<string, BackendEntry> EntriesOf(string pool)
    {
        var entries = new Dictionary<string, BackendEntry>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in registry.Current.Pools.FirstOrDefault(p => p.Name.Equals(pool, StringComparison.OrdinalIgnoreCase))?.Backends ?? [])
        {
            entries.TryAdd(entry.Address, entry);
        }

        return entries;
    }

    private static string Restriction(BackendEntry backend, string path, bool servesPath, IPAddress? client)
    {
        if (servesPath)
        {
            return backend.Clients.Networks.Count > 0 && !backend.Clients.Contains(client)
                ? $"restricted by client: admits only {PickReason.Listed([.. backend.Clients.Networks.Select(n => n.ToString())])}, not {client?.ToString() ?? "an unknown client"}"
                : "restricted";
        }

        if (backend.Paths.Count == 0)
        {
            return "restricted by path: serves only paths no backend registered, and backends registered a prefix of this one";
        }

        var claims = backend.Paths.Where(p => Covers(p, path)).ToList();
        return claims.Count == 0
            ? $"restricted by path: serves only {PickReason.Listed([.. backend.Paths])}"
            : $"restricted by path: serves {PickReason.Listed(claims)}, but backends registered a longer prefix of this path";
    }

    /// <summary>A path prefix covers a path on segment boundaries, case-insensitively (as the restriction index matches).</summary>
    private static bool Covers(string prefix, string path)
    {
        var trimmed = prefix.TrimEnd('/');
        return trimmed.Length == 0
            || (path.StartsWith(trimmed, StringComparison.OrdinalIgnoreCase) && (path.Length == trimmed.Length || path[trimmed.Length] == '/'));
    }

    /// <summary>Before load balancing, in every try: what it may pick from.</summary>
    public static Task BeforePickAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<DecisionTrace>() is { } trace)
        {
            var proxy = context.GetReverseProxyFeature();
            var affinity = proxy.Route.Cluster!.Model.Config.SessionAffinity?.Enabled == true ? "on" : "off";
            var attempt = context.Features.Get<AttemptFeature>();
            trace.BeginTry(attempt?.Number ?? 1, attempt is { Number: > 1 } ? attempt.Untried : proxy.AvailableDestinations.Count, affinity);
            context.Features.Set(new PickInput(proxy.AvailableDestinations));
        }

        return next(context);
    }

    /// <summary>After load balancing, in every try: the pick and the algorithm's reason.</summary>
    public Task PickedAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<DecisionTrace>() is { } trace)
        {
            var proxy = context.GetReverseProxyFeature();
            var candidates = context.Features.Get<PickInput>()?.Available ?? [];
            if (proxy.AvailableDestinations is [var picked])
            {
                var attempt = context.Features.Get<AttemptFeature>();
                var cluster = proxy.Route.Cluster!;
                var reason = attempt is { Number: > 1 }
                    ? new PickReason("retry: of the backends not tried yet, two drawn at random and the one with fewer in flight")
                    : candidates.Count == 1
                        ? new PickReason($"{trace.Algorithm}: the only backend available")
                        : _policies.TryGetValue(cluster.Model.Config.LoadBalancingPolicy ?? options.Algorithm, out var policy) && policy is IExplainingPolicy explaining
                            ? explaining.Explain(context, cluster, candidates, picked)
                            : new PickReason($"{trace.Algorithm}: picked");
                trace.Picked(picked.Model.Config.Address, reason.Text, reason.Key);
                context.Features.Set(new PickInput(candidates, picked));
            }
        }

        return next(context);
    }

    /// <summary>After slow start and the concurrency limit, in every try: where the try goes, when not to the pick.</summary>
    public Task SentAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<DecisionTrace>() is { } trace
            && context.Features.Get<PickInput>()?.Picked is { } picked
            && context.GetReverseProxyFeature().AvailableDestinations is [var sent]
            && sent != picked)
        {
            var share = slowStart.Share(picked);
            trace.SentTo(sent.Model.Config.Address, share < 1.0
                ? string.Create(CultureInfo.InvariantCulture, $"slow start: {picked.Model.Config.Address} is ramping up and takes {share:P0} of its share now")
                : $"{picked.Model.Config.Address} was at its limit of {options.Proxy.Limits.MaxRequestsPerBackend} requests in flight");
        }

        return next(context);
    }

    private static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Per try: the candidates load balancing picked from, and its pick.</summary>
    private sealed record PickInput(IReadOnlyList<DestinationState> Available, DestinationState? Picked = null);
}
