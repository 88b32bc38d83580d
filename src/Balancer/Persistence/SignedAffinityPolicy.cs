using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.WebUtilities;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.SessionAffinity;

namespace Balancer.Persistence;

/// <summary>
/// Sticky sessions by a signed token in a cookie (or a header the client echoes). The token is
/// <c>id.check</c>: <c>id</c> an HMAC of the backend's address (opaque: it names the backend without showing it, and
/// cannot be made for a backend without the key), <c>check</c> an HMAC of <c>id</c>. A token whose check fails was
/// not made here and is ignored (the request is placed as if it had none, and gets a new one); one whose backend is
/// gone, unhealthy or draining goes to YARP's failure policy: another backend and a new token, or 503.
/// </summary>
internal sealed class SignedAffinityPolicy : ISessionAffinityPolicy
{
    public const string CookieName = "Balancer.SignedCookie";
    public const string HeaderName = "Balancer.SignedHeader";

    private static readonly object Pinned = new();
    private readonly ConditionalWeakTable<ClusterState, Index> _indexes = [];
    private readonly ConditionalWeakTable<DestinationState, string> _ids = [];
    private readonly ConditionalWeakTable<DestinationState, string>.CreateValueCallback _idOf;

    private readonly Lazy<AffinityKey> _key;
    private readonly bool _header;
    private readonly TimeProvider _time;

    /// <param name="key">Read or made on first use: a balancer that never issues a token never writes a key file.</param>
    public SignedAffinityPolicy(Lazy<AffinityKey> key, bool header, TimeProvider time)
    {
        _key = key;
        _header = header;
        _time = time;
        _idOf = destination => IdOf(destination.Model.Config.Address);
    }

    public string Name => _header ? HeaderName : CookieName;

    public AffinityResult FindAffinitizedDestinations(HttpContext context, ClusterState cluster, SessionAffinityConfig config, IReadOnlyList<DestinationState> destinations)
    {
        var token = _header ? FirstValue(context.Request.Headers[config.AffinityKeyName]) : CookieValue(context.Request.Headers.Cookie, config.AffinityKeyName);
        if (token.IsEmpty || !Verified(token, out var id))
        {
            return new(null, AffinityStatus.AffinityKeyNotSet);
        }

        if (_indexes.GetValue(cluster, static _ => new Index()).Find(cluster, id, this) is { } pinned)
        {
            for (var i = 0; i < destinations.Count; i++)
            {
                if (ReferenceEquals(destinations[i], pinned))
                {
                    SetPinned(context, pinned);
                    return new(pinned, AffinityStatus.OK);
                }
            }
        }

        return new(null, AffinityStatus.DestinationNotFound);
    }

    /// <summary>Where the pinned backend is noted for the response: the try's feature (no allocation), else the request's items.</summary>
    private static void SetPinned(HttpContext context, DestinationState pinned)
    {
        if (context.Features.Get<Balancer.Proxy.AttemptFeature>() is { } attempt)
        {
            attempt.Pinned = pinned;
        }
        else
        {
            context.Items[Pinned] = pinned;
        }
    }

    private static object? PinnedOf(HttpContext context) =>
        context.Features.Get<Balancer.Proxy.AttemptFeature>() is { } attempt ? attempt.Pinned
        : context.Items.TryGetValue(Pinned, out var pinned) ? pinned : null;

    private static ReadOnlySpan<char> FirstValue(Microsoft.Extensions.Primitives.StringValues values) => values.Count > 0 ? values[0].AsSpan().Trim() : default;

    /// <summary>The value of cookie <paramref name="name"/> in the request's Cookie fields, read in place (ASP.NET's cookie collection allocates).</summary>
    private static ReadOnlySpan<char> CookieValue(Microsoft.Extensions.Primitives.StringValues fields, string name)
    {
        foreach (var field in fields)
        {
            var rest = field.AsSpan();
            while (!rest.IsEmpty)
            {
                var end = rest.IndexOf(';');
                var pair = (end < 0 ? rest : rest[..end]).Trim();
                rest = end < 0 ? default : rest[(end + 1)..];
                var eq = pair.IndexOf('=');
                if (eq > 0 && pair[..eq].Trim().Equals(name, StringComparison.Ordinal))
                {
                    return pair[(eq + 1)..].Trim().Trim('"');
                }
            }
        }

        return default;
    }

    public ValueTask<AffinityResult> FindAffinitizedDestinationsAsync(HttpContext context, ClusterState cluster, SessionAffinityConfig config, IReadOnlyList<DestinationState> destinations, CancellationToken cancellationToken) =>
        ValueTask.FromResult(FindAffinitizedDestinations(context, cluster, config, destinations));

    /// <summary>A new token when the request had none for the backend that answered it (no token, a bad one, or a pinned backend replaced).</summary>
    public void AffinitizeResponse(HttpContext context, ClusterState cluster, SessionAffinityConfig config, DestinationState destination)
    {
        if (ReferenceEquals(PinnedOf(context), destination))
        {
            return;
        }

        var token = TokenOf(IdOf(destination));
        if (_header)
        {
            context.Response.Headers[config.AffinityKeyName] = token;
            return;
        }

        var cookie = config.Cookie;
        context.Response.Cookies.Append(config.AffinityKeyName, token, new CookieOptions
        {
            Path = cookie?.Path ?? "/",
            HttpOnly = cookie?.HttpOnly ?? true,
            SameSite = cookie?.SameSite ?? SameSiteMode.Lax,
            MaxAge = cookie?.MaxAge,
            Expires = cookie?.MaxAge is { } age ? _time.GetUtcNow() + age : null,
            Secure = cookie?.SecurePolicy switch
            {
                CookieSecurePolicy.Always => true,
                CookieSecurePolicy.None => false,
                _ => context.Request.IsHttps,
            },
        });
    }

    public ValueTask AffinitizeResponseAsync(HttpContext context, ClusterState cluster, SessionAffinityConfig config, DestinationState destination, CancellationToken cancellationToken)
    {
        AffinitizeResponse(context, cluster, config, destination);
        return default;
    }

    /// <summary>The backend's id: 16 bytes of HMAC over its address, base64url.</summary>
    internal string IdOf(string address) => WebEncoders.Base64UrlEncode(Mac("backend\n" + address), 0, 16);

    internal string TokenOf(string id) => id + "." + Check(id);

    private string Check(string id) => WebEncoders.Base64UrlEncode(Mac("token\n" + id), 0, 12);

    /// <summary>
    /// <c>id.check</c> with the check the key gives for <c>id</c>, compared in constant time; no allocation (this runs on
    /// every request of a sticky pool).
    /// </summary>
    private bool Verified(ReadOnlySpan<char> token, out ReadOnlySpan<char> id)
    {
        var dot = token.IndexOf('.');
        id = dot > 0 ? token[..dot] : default;
        if (dot <= 0 || token.Length > 64)
        {
            return false;
        }

        Span<byte> text = stackalloc byte[6 + 64];
        "token\n"u8.CopyTo(text);
        if (!System.Text.Ascii.FromUtf16(id, text[6..], out var written).Equals(System.Buffers.OperationStatus.Done))
        {
            return false;
        }

        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_key.Value.Bytes, text[..(6 + written)], mac);
        Span<byte> given = stackalloc byte[48];
        // The OperationStatus overload: the Try one throws on characters that are not base64url.
        return System.Buffers.Text.Base64Url.DecodeFromChars(token[(dot + 1)..], given, out _, out var length) == System.Buffers.OperationStatus.Done
            && length == 12
            && CryptographicOperations.FixedTimeEquals(mac[..12], given[..12]);
    }

    private byte[] Mac(string text) => HMACSHA256.HashData(_key.Value.Bytes, Encoding.UTF8.GetBytes(text));

    private string IdOf(DestinationState destination) => _ids.GetValue(destination, _idOf);

    /// <summary>Each backend of a pool by id, rebuilt when YARP replaces the pool's destination list.</summary>
    private sealed class Index
    {
        private Built? _built;

        public DestinationState? Find(ClusterState cluster, ReadOnlySpan<char> id, SignedAffinityPolicy policy)
        {
            var all = cluster.DestinationsState.AllDestinations;
            var built = Volatile.Read(ref _built);
            if (built is null || !ReferenceEquals(built.Source, all))
            {
                var byId = new Dictionary<string, DestinationState>(all.Count, StringComparer.Ordinal);
                foreach (var destination in all)
                {
                    byId[policy.IdOf(destination)] = destination;
                }

                Volatile.Write(ref _built, built = new Built(all, byId, byId.GetAlternateLookup<ReadOnlySpan<char>>()));
            }

            return built.ById.TryGetValue(id, out var found) ? found : null;
        }

        private sealed record Built(
            IReadOnlyList<DestinationState> Source, Dictionary<string, DestinationState> All, Dictionary<string, DestinationState>.AlternateLookup<ReadOnlySpan<char>> ById);
    }
}
