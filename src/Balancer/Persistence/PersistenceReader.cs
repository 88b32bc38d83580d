using Balancer.Configuration;

namespace Balancer.Persistence;

/// <summary>
/// Reads <c>persistence</c>: a mode alone (<c>persistence: cookie</c>) or a mapping of it and the cookie's
/// attributes. A pool's section replaces only what it names of the top-level one.
/// </summary>
internal static class PersistenceReader
{
    private static readonly Dictionary<string, SameSiteMode> SameSites = new(StringComparer.OrdinalIgnoreCase)
    {
        ["lax"] = SameSiteMode.Lax, ["strict"] = SameSiteMode.Strict, ["none"] = SameSiteMode.None,
    };

    private static readonly Dictionary<string, bool?> SecureValues = new(StringComparer.OrdinalIgnoreCase)
    {
        ["auto"] = null, ["true"] = true, ["false"] = false,
    };

    private static readonly Dictionary<string, bool> Unavailable = new(StringComparer.OrdinalIgnoreCase)
    {
        ["repick"] = false, ["reject"] = true,
    };

    /// <summary><c>persistence</c> under <paramref name="parent"/>, over <paramref name="defaults"/>.</summary>
    public static PersistenceOptions Read(ConfigSection parent, PersistenceOptions defaults)
    {
        if (!parent.Has("persistence"))
        {
            return defaults;
        }

        if (!parent.IsNested("persistence"))
        {
            return parent.Value("persistence", defaults, (string raw, out PersistenceOptions value, out string error) =>
                Mode(raw, defaults, out value, out error));
        }

        var section = parent.Section("persistence");
        var options = section.Value("mode", defaults, (string raw, out PersistenceOptions value, out string error) => Mode(raw, defaults, out value, out error));
        var name = section.Value("name", options.Name, CookieName);
        if (options.Mode == PersistenceMode.Header && section.Has("name"))
        {
            section.Error("name", "is the cookie's; a header's name is in the mode (mode: header:X-Session)");
        }

        options = options with
        {
            Name = options.Mode == PersistenceMode.Header ? options.Name : name,
            Path = section.Value("path", options.Path, ValueParsers.PathPrefix),
            MaxAge = section.Value("max-age", options.MaxAge, (string raw, out TimeSpan? value, out string error) =>
            {
                var ok = ValueParsers.Duration(raw, out var duration, out error);
                value = duration == TimeSpan.Zero ? null : duration;
                return ok;
            }),
            Secure = section.Value("secure", options.Secure, ValueParsers.OneOf(SecureValues)),
            HttpOnly = section.Value("http-only", options.HttpOnly, ValueParsers.Bool),
            SameSite = section.Value("same-site", options.SameSite, ValueParsers.OneOf(SameSites)),
            Reject = section.Value("when-unavailable", options.Reject, ValueParsers.OneOf(Unavailable)),
        };
        if (options.SameSite == SameSiteMode.None && options.Secure == false)
        {
            section.Error("same-site", "none needs secure: true or auto (browsers drop a SameSite=None cookie that is not Secure)");
        }

        if (options.Reject && options.Mode is PersistenceMode.IpHash or PersistenceMode.ConsistentHash)
        {
            section.Error("when-unavailable", "reject needs cookie or header persistence: a hash moves a client to the next backend by itself");
        }

        return options;
    }

    /// <summary>Whether <paramref name="parent"/>'s own <c>persistence</c> names its cookie.</summary>
    public static bool NamesCookie(ConfigSection parent) => parent.IsNested("persistence") && parent.Section("persistence").Has("name");

    /// <summary><c>--persistence MODE</c> over the top-level persistence; a bad mode is an error naming the flag.</summary>
    public static PersistenceOptions Flag(ConfigReader reader, string mode, PersistenceOptions read)
    {
        if (Mode(mode, read, out var value, out var error))
        {
            return value;
        }

        reader.AddGeneralError($"--persistence: {error}");
        return read;
    }

    /// <summary><c>persistence.key</c>: at least 32 characters; null for a key kept in the data directory.</summary>
    public static string? Key(ConfigSection root)
    {
        if (!root.IsNested("persistence"))
        {
            return null;
        }

        var key = root.Section("persistence").String("key");
        if (key is { Length: > 0 and < 32 })
        {
            root.Section("persistence").Error("key", $"is {key.Length} characters; a signing key needs at least 32 (e.g. openssl rand -base64 32)");
            return null;
        }

        return key is { Length: > 0 } ? key : null;
    }

    private static bool Mode(string raw, PersistenceOptions defaults, out PersistenceOptions value, out string error)
    {
        error = "";
        value = defaults;
        var text = raw.Trim();
        if (text.StartsWith("header:", StringComparison.OrdinalIgnoreCase))
        {
            var header = text["header:".Length..].Trim();
            if (!CookieName(header, out _, out _))
            {
                error = $"{raw}: {header} is not a header name";
                return false;
            }

            value = defaults with { Mode = PersistenceMode.Header, Name = header };
            return true;
        }

        PersistenceMode? mode = text.Replace('_', '-').ToLowerInvariant() switch
        {
            "none" => PersistenceMode.None,
            "cookie" => PersistenceMode.Cookie,
            "ip-hash" => PersistenceMode.IpHash,
            "consistent-hash" => PersistenceMode.ConsistentHash,
            _ => null,
        };
        if (mode is null)
        {
            error = $"{raw} is not a persistence mode; use none, cookie, header:NAME, ip-hash or consistent-hash";
            return false;
        }

        value = defaults with { Mode = mode.Value, Name = defaults.Mode == PersistenceMode.Header ? PersistenceOptions.DefaultCookie : defaults.Name };
        return true;
    }

    /// <summary>A cookie's or header's name: an RFC 9110 token.</summary>
    private static bool CookieName(string raw, out string name, out string error)
    {
        var ok = ValueParsers.Token(raw, out name, out _) && raw.Length <= 64;
        error = ok ? "" : $"{raw} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)";
        return ok;
    }
}
