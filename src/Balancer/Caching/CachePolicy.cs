using System.Globalization;
using Microsoft.Net.Http.Headers;

namespace Balancer.Caching;

/// <summary>
/// What RFC 9111 lets a shared cache do with a request and its response; pure, so every rule is tested on its own.
/// Only GET and HEAD are cached (a Range, an upgrade or a request that forbids storing passes through untouched);
/// request <c>no-cache</c> (or <c>Pragma: no-cache</c>, or <c>max-age=0</c>) skips the lookup but stores the answer.
/// A response is stored when its status is final and not partial, nothing forbids it (<c>no-store</c>, unqualified
/// <c>private</c> or <c>no-cache</c>, <c>Vary: *</c>, a <c>Set-Cookie</c> the response does not withhold, an
/// <c>Authorization</c> without <c>public</c>, <c>s-maxage</c> or <c>must-revalidate</c>) and it has a freshness
/// lifetime left: <c>s-maxage</c>, else <c>max-age</c>, else <c>Expires</c> − <c>Date</c>, else the pool's ttl for the
/// statuses that may be cached without one (or with <c>public</c>; not for a request with <c>Cookie</c>, whose answer
/// may be about that user, unless <c>public</c>), less the <c>Age</c> it arrived with. This cache
/// never serves a stale response (it does not revalidate): entries expire in Redis when their lifetime ends, so
/// <c>must-revalidate</c> always holds.
/// </summary>
internal static class CachePolicy
{
    /// <summary>RFC 9110 §15.1: statuses "heuristically cacheable" (206 is one, but this cache does not store ranges).</summary>
    private static readonly HashSet<int> HeuristicStatuses = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

    /// <summary>What a request allows.</summary>
    /// <param name="Cacheable">The request may be answered from the cache or its answer stored; when not, it passes through.</param>
    /// <param name="Lookup">Answer from the cache if an entry is fresh enough (false: go to the backend and store what it says).</param>
    /// <param name="MaxAge">The oldest entry the client accepts.</param>
    /// <param name="MinFresh">The freshness an entry must have left.</param>
    /// <param name="OnlyIfCached">Answer from the cache or 504, never from the backend.</param>
    /// <param name="Authorized">The request carries <c>Authorization</c>: its answer is stored only if the response allows it.</param>
    /// <param name="WithCookie">The request carries <c>Cookie</c>: its answer may be about that user, so it is stored only with a lifetime the backend gave.</param>
    public readonly record struct RequestRules(bool Cacheable, bool Lookup, TimeSpan? MaxAge, TimeSpan? MinFresh, bool OnlyIfCached, bool Authorized, bool WithCookie)
    {
        public static readonly RequestRules PassThrough = new(false, false, null, null, false, false, false);
    }

    public static RequestRules ForRequest(HttpRequest request)
    {
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        {
            return RequestRules.PassThrough;
        }

        var headers = request.Headers;
        if (headers.ContainsKey(HeaderNames.Range) || headers.ContainsKey(HeaderNames.Upgrade))
        {
            return RequestRules.PassThrough;
        }

        var control = CacheControl.Parse(headers.CacheControl);
        if (control.NoStore)
        {
            return RequestRules.PassThrough;
        }

        var pragmaNoCache = headers.CacheControl.Count == 0 && headers.Pragma.Any(p => p?.Contains("no-cache", StringComparison.OrdinalIgnoreCase) == true);
        var lookup = !control.NoCache && !pragmaNoCache && control.MaxAge != TimeSpan.Zero;
        return new RequestRules(true, lookup, control.MaxAge, control.MinFresh, control.OnlyIfCached, headers.ContainsKey(HeaderNames.Authorization), headers.ContainsKey(HeaderNames.Cookie));
    }

    /// <summary>Whether a stored entry may answer a request with these rules at <paramref name="now"/>.</summary>
    public static bool Satisfies(CacheEntry entry, RequestRules rules, DateTimeOffset now)
    {
        var age = entry.AgeAt(now);
        if (age >= entry.Lifetime)
        {
            return false;
        }

        return (rules.MaxAge is not { } maxAge || age <= maxAge) && (rules.MinFresh is not { } minFresh || entry.Lifetime - age >= minFresh);
    }

    /// <summary>How a response may be stored: for how long, without which fields, keyed by which request fields.</summary>
    /// <param name="Lifetime">Its freshness lifetime.</param>
    /// <param name="InitialAge">Its age on arrival (its <c>Age</c> field).</param>
    /// <param name="Withheld">Fields stored responses go without (qualified <c>private</c>/<c>no-cache</c>).</param>
    /// <param name="Vary">Request fields that select among stored responses (lower-case, sorted); empty for none.</param>
    public sealed record Storage(TimeSpan Lifetime, TimeSpan InitialAge, IReadOnlyList<string> Withheld, IReadOnlyList<string> Vary);

    /// <summary>
    /// The storage a response allows, or null with the <paramref name="reason"/> it may not be stored.
    /// <paramref name="defaultTtl"/> is the pool's lifetime for responses whose backend gives none.
    /// </summary>
    public static Storage? ForResponse(RequestRules request, int status, IHeaderDictionary headers, DateTimeOffset now, TimeSpan defaultTtl, out string reason)
    {
        if (status is < 200 or 206 or 304 or > 599)
        {
            reason = $"status {status}";
            return null;
        }

        var control = CacheControl.Parse(headers.CacheControl);
        if (control.NoStore || control.Private || control.NoCache)
        {
            reason = control.NoStore ? "no-store" : control.Private ? "private" : "no-cache";
            return null;
        }

        var withheld = control.WithheldFields ?? [];
        if (headers.ContainsKey(HeaderNames.SetCookie) && !withheld.Contains(HeaderNames.SetCookie, StringComparer.OrdinalIgnoreCase))
        {
            reason = "Set-Cookie";
            return null;
        }

        if (request.Authorized && !control.Public && control.SharedMaxAge is null && !control.MustRevalidate)
        {
            reason = "Authorization without public, s-maxage or must-revalidate";
            return null;
        }

        var vary = VaryNames(headers);
        if (vary is null)
        {
            reason = "Vary: *";
            return null;
        }

        TimeSpan lifetime;
        if ((control.SharedMaxAge ?? control.MaxAge) is { } explicitAge)
        {
            lifetime = explicitAge;
        }
        else if (headers.ContainsKey(HeaderNames.Expires))
        {
            // An Expires that is not a date means "already expired" (RFC 9111 §5.3).
            lifetime = HttpDate(headers.Expires) is { } expires ? expires - (HttpDate(headers.Date) ?? now) : TimeSpan.Zero;
        }
        else if ((HeuristicStatuses.Contains(status) || control.Public) && (!request.WithCookie || control.Public))
        {
            lifetime = defaultTtl;
        }
        else
        {
            reason = request.WithCookie ? "a request with Cookie, answered without an explicit lifetime" : $"status {status} without an explicit lifetime";
            return null;
        }

        var initialAge = headers.Age is [{ } ageText] && long.TryParse(ageText, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? TimeSpan.FromSeconds(Math.Min(seconds, int.MaxValue))
            : TimeSpan.Zero;
        if (lifetime - initialAge < TimeSpan.FromSeconds(1))
        {
            reason = "no freshness left";
            return null;
        }

        reason = "";
        return new Storage(lifetime, initialAge, withheld, vary);
    }

    /// <summary>The request fields a response varies on, lower-case and sorted; null for <c>Vary: *</c>.</summary>
    private static List<string>? VaryNames(IHeaderDictionary headers)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var line in headers.Vary)
        {
            foreach (var name in (line ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (name == "*")
                {
                    return null;
                }

                names.Add(name.ToLowerInvariant());
            }
        }

        return [.. names];
    }

    private static DateTimeOffset? HttpDate(Microsoft.Extensions.Primitives.StringValues value) =>
        value is [{ } text] && HeaderUtilities.TryParseDate(text, out var date) ? date : null;
}
