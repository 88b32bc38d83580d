namespace Balancer.Persistence;

/// <summary>
/// <c>persistence</c> at the top (every pool's default) or in a pool: the mode, the cookie's (or header's) name and
/// attributes, and what happens when the backend a client is pinned to is unhealthy, draining or gone.
/// </summary>
/// <param name="Name">The cookie's name, or the header's for <see cref="PersistenceMode.Header"/>.</param>
/// <param name="MaxAge">The cookie's Max-Age; null for a session cookie (gone when the browser closes).</param>
/// <param name="Secure">Secure: null for "when the request came over HTTPS".</param>
/// <param name="Reject">The pinned backend unavailable: 503 instead of picking another and re-issuing the cookie.</param>
public sealed record PersistenceOptions(
    PersistenceMode Mode,
    string Name,
    string Path,
    TimeSpan? MaxAge,
    bool? Secure,
    bool HttpOnly,
    SameSiteMode SameSite,
    bool Reject)
{
    public const string DefaultCookie = "lb_session";

    public static readonly PersistenceOptions None = new(PersistenceMode.None, DefaultCookie, "/", null, null, true, SameSiteMode.Lax, false);

    /// <summary>Cookie or header: the balancer issues and reads a signed token naming the backend.</summary>
    public bool IsSigned => Mode is PersistenceMode.Cookie or PersistenceMode.Header;
}
