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
        var token = _header ? context.Request.Headers[config.AffinityKeyName].ToString() : context.Request.Cookies[config.AffinityKeyName];
        if (string.IsNullOrEmpty(token) || !Verified(token, out var id))
        {
            return new(null, AffinityStatus.AffinityKeyNotSet);
        }

        if (_indexes.GetValue(cluster, static _ => new Index()).Find(cluster, id, this) is { } pinned)
        {
            for (var i = 0; i < destinations.Count; i++)
            {
                if (ReferenceEquals(destinations[i], pinned))
                {
                    context.Items[Pinned] = pinned;
                    return new(pinned, AffinityStatus.OK);
                }
            }
        }

        return new(null, AffinityStatus.DestinationNotFound);
    }

    public ValueTask<AffinityResult> FindAffinitizedDestinationsAsync(HttpContext context, ClusterState cluster, SessionAffinityConfig config, IReadOnlyList<DestinationState> destinations, CancellationToken cancellationToken) =>
        ValueTask.FromResult(FindAffinitizedDestinations(context, cluster, config, destinations));

    /// <summary>A new token when the request had none for the backend that answered it (no token, a bad one, or a pinned backend replaced).</summary>
    public void AffinitizeResponse(HttpContext context, ClusterState cluster, SessionAffinityConfig config, DestinationState destination)
    {
        if (context.Items.TryGetValue(Pinned, out var pinned) && ReferenceEquals(pinned, destination))
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

    private bool Verified(string token, out string id)
    {
        var dot = token.IndexOf('.', StringComparison.Ordinal);
        id = dot > 0 ? token[..dot] : "";
        if (dot <= 0 || token.Length > 64)
        {
            return false;
        }

        var expected = Encoding.ASCII.GetBytes(Check(id));
        var given = Encoding.ASCII.GetBytes(token[(dot + 1)..]);
        return CryptographicOperations.FixedTimeEquals(expected, given);
    }

    private byte[] Mac(string text) => HMACSHA256.HashData(_key.Value.Bytes, Encoding.UTF8.GetBytes(text));

    private string IdOf(DestinationState destination) => _ids.GetValue(destination, _idOf);

    /// <summary>Each backend of a pool by id, rebuilt when YARP replaces the pool's destination list.</summary>
    private sealed class Index
    {
        private Built? _built;

        public DestinationState? Find(ClusterState cluster, string id, SignedAffinityPolicy policy)
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

                Volatile.Write(ref _built, built = new Built(all, byId));
            }

            return built.ById.GetValueOrDefault(id);
        }

        private sealed record Built(IReadOnlyList<DestinationState> Source, Dictionary<string, DestinationState> ById);
    }
}
