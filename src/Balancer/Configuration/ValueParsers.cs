using System.Globalization;
using System.Net;
using Balancer.LoadBalancing;
using Balancer.Networking;

namespace Balancer.Configuration;

/// <summary>Parsers for configuration values; each error message starts with the text that was given.</summary>
internal static class ValueParsers
{
    public static bool Port(string raw, out int port, out string error)
    {
        error = "";
        if (int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port <= 65535)
        {
            return true;
        }

        error = $"{raw} is not a port (1-65535, or 0 for any free port)";
        return false;
    }

    public static ValueParser<int> Int(int min, int max, string what) =>
        (string raw, out int value, out string error) =>
        {
            error = "";
            if (int.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value) && value >= min && value <= max)
            {
                return true;
            }

            error = $"{raw} is not {what} ({min}-{max})";
            return false;
        };

    public static ValueParser<double> Number(double min, double max, string what) =>
        (string raw, out double value, out string error) =>
        {
            error = "";
            if (double.TryParse(raw, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value) && value >= min && value <= max)
            {
                return true;
            }

            error = $"{raw} is not {what} ({min.ToString(CultureInfo.InvariantCulture)}-{max.ToString(CultureInfo.InvariantCulture)})";
            return false;
        };

    /// <summary>Any text, trimmed: for values checked later, as a whole.</summary>
    public static bool Text(string raw, out string value, out string error)
    {
        value = raw.Trim();
        error = "";
        return true;
    }

    /// <summary>A share between 0 and 1, e.g. <c>0.25</c>.</summary>
    public static bool Fraction(string raw, out double value, out string error) => Number(0, 1, "a fraction")(raw, out value, out error);

    public static bool Bool(string raw, out bool value, out string error)
    {
        error = "";
        switch (raw.ToUpperInvariant())
        {
            case "TRUE" or "YES" or "ON" or "1":
                value = true;
                return true;
            case "FALSE" or "NO" or "OFF" or "0":
                value = false;
                return true;
            default:
                value = false;
                error = $"{raw} is not true or false";
                return false;
        }
    }

    /// <summary><c>500ms</c>, <c>30s</c>, <c>5m</c>, <c>1h</c>, or a plain number of seconds.</summary>
    public static bool Duration(string raw, out TimeSpan value, out string error)
    {
        error = "";
        value = default;
        var (number, scale) = raw switch
        {
            _ when raw.EndsWith("ms", StringComparison.OrdinalIgnoreCase) => (raw[..^2], 0.001),
            _ when raw.EndsWith('s') || raw.EndsWith('S') => (raw[..^1], 1.0),
            _ when raw.EndsWith('m') || raw.EndsWith('M') => (raw[..^1], 60.0),
            _ when raw.EndsWith('h') || raw.EndsWith('H') => (raw[..^1], 3600.0),
            _ => (raw, 1.0),
        };
        if (double.TryParse(number.Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount)
            && amount * scale <= TimeSpan.FromDays(365).TotalSeconds)
        {
            value = TimeSpan.FromSeconds(amount * scale);
            return true;
        }

        error = $"{raw} is not a duration (e.g. 500ms, 30s, 5m, or a number of seconds)";
        return false;
    }

    private static readonly Dictionary<string, TimeSpan> RateUnits = new(StringComparer.OrdinalIgnoreCase)
    {
        ["s"] = TimeSpan.FromSeconds(1), ["sec"] = TimeSpan.FromSeconds(1), ["second"] = TimeSpan.FromSeconds(1),
        ["m"] = TimeSpan.FromMinutes(1), ["min"] = TimeSpan.FromMinutes(1), ["minute"] = TimeSpan.FromMinutes(1),
        ["h"] = TimeSpan.FromHours(1), ["hour"] = TimeSpan.FromHours(1),
    };

    /// <summary>A request rate: <c>100/minute</c>, <c>10/s</c>, <c>5000/h</c> (1 to 1,000,000 per period).</summary>
    public static bool Rate(string raw, out RequestRate rate, out string error)
    {
        rate = null!;
        error = $"{raw} is not a rate (e.g. 100/minute, 10/s, 5000/hour)";
        var slash = raw.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !RateUnits.TryGetValue(raw[(slash + 1)..].Trim(), out var per)
            || !int.TryParse(raw[..slash].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var count))
        {
            return false;
        }

        if (count is < 1 or > 1_000_000)
        {
            error = $"{raw}: the count must be 1 to 1000000";
            return false;
        }

        rate = new RequestRate(count, per);
        error = "";
        return true;
    }

    /// <summary>What a rate limit counts by: <c>client</c> (the client address: null) or <c>header:NAME</c> (that header's value).</summary>
    public static bool RateLimitKey(string raw, out string? header, out string error)
    {
        error = "";
        header = null;
        if (raw.Equals("client", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        const string prefix = "header:";
        var name = raw.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) ? raw[prefix.Length..].Trim() : "";
        if (name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal)))
        {
            header = name;
            return true;
        }

        error = $"{raw} is not client or header:NAME (e.g. header:X-Api-Key)";
        return false;
    }

    /// <summary>An IP address or a host name, for a server the balancer connects to.</summary>
    public static bool Host(string raw, out string host, out string error)
    {
        if (IPAddress.TryParse(raw.Trim('[', ']'), out var address))
        {
            host = address.ToString();
            error = "";
            return true;
        }

        return HostName(raw, out host, out error);
    }

    /// <summary>A duration above zero, for timeouts and intervals where zero would mean "at once, always".</summary>
    public static bool PositiveDuration(string raw, out TimeSpan value, out string error)
    {
        if (!Duration(raw, out value, out error))
        {
            return false;
        }

        if (value > TimeSpan.Zero)
        {
            return true;
        }

        error = $"{raw} must be more than 0";
        return false;
    }

    /// <summary>A duration as <see cref="Duration"/> reads it back: <c>5m</c>, <c>30s</c>, <c>250ms</c>.</summary>
    public static string FormatDuration(TimeSpan duration) =>
        duration.TotalMinutes == Math.Floor(duration.TotalMinutes) && duration >= TimeSpan.FromMinutes(1) ? $"{duration.TotalMinutes.ToString(CultureInfo.InvariantCulture)}m"
        : duration.TotalSeconds == Math.Floor(duration.TotalSeconds) ? $"{duration.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s"
        : $"{Math.Round(duration.TotalMilliseconds, 3).ToString(CultureInfo.InvariantCulture)}ms";

    /// <summary>A size as <see cref="Size"/> reads it back: <c>1GB</c>, <c>16KB</c>, <c>512</c>.</summary>
    public static string FormatSize(long bytes) =>
        bytes >= 1024L * 1024 * 1024 && bytes % (1024L * 1024 * 1024) == 0 ? $"{bytes / (1024L * 1024 * 1024)}GB"
        : bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0 ? $"{bytes / (1024 * 1024)}MB"
        : bytes >= 1024 && bytes % 1024 == 0 ? $"{bytes / 1024}KB"
        : bytes.ToString(CultureInfo.InvariantCulture);

    /// <summary><c>512</c> (bytes), <c>16KB</c>, <c>30MB</c>, <c>1GB</c> (binary multiples).</summary>
    public static bool Size(string raw, out long value, out string error)
    {
        error = "";
        value = 0;
        var upper = raw.ToUpperInvariant();
        var (number, scale) = upper switch
        {
            _ when upper.EndsWith("KB", StringComparison.Ordinal) => (upper[..^2], 1024L),
            _ when upper.EndsWith("MB", StringComparison.Ordinal) => (upper[..^2], 1024L * 1024),
            _ when upper.EndsWith("GB", StringComparison.Ordinal) => (upper[..^2], 1024L * 1024 * 1024),
            _ when upper.EndsWith('B') => (upper[..^1], 1L),
            _ => (upper, 1L),
        };
        if (long.TryParse(number.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var amount) && amount <= long.MaxValue / scale)
        {
            value = amount * scale;
            return true;
        }

        error = $"{raw} is not a size (e.g. 512, 16KB, 30MB)";
        return false;
    }

    /// <summary>A size from <paramref name="min"/> to <paramref name="max"/> bytes.</summary>
    public static ValueParser<long> SizeBetween(long min, long max) =>
        (string raw, out long value, out string error) =>
        {
            if (!Size(raw, out value, out error))
            {
                return false;
            }

            if (value >= min && value <= max)
            {
                return true;
            }

            error = $"{raw} is not a size from {FormatSize(min)} to {FormatSize(max)}";
            return false;
        };

    public static bool Network(string raw, out IPNetwork network, out string error) =>
        NetworkList.TryParseNetwork(raw, out network, out error);

    /// <summary>An address to bind to: an IP, or <c>*</c> for every interface (IPv6 and IPv4).</summary>
    public static bool BindAddress(string raw, out IPAddress address, out string error)
    {
        error = "";
        if (raw is "*")
        {
            address = IPAddress.IPv6Any;
            return true;
        }

        if (IPAddress.TryParse(raw, out address!))
        {
            return true;
        }

        error = $"{raw} is not an IP address to listen on (use an IP, or * for all interfaces)";
        return false;
    }

    public static bool Algorithm(string raw, out string canonical, out string error) =>
        AlgorithmNames.TryResolve(raw, out canonical, out error);

    /// <summary>A status or ranges of statuses: <c>200-399</c>, <c>200,204-206</c>.</summary>
    public static bool StatusRanges(string raw, out StatusRanges ranges, out string error)
    {
        error = "";
        ranges = null!;
        var list = new List<(int From, int To)>();
        foreach (var part in raw.Split(',', StringSplitOptions.TrimEntries))
        {
            var dash = part.IndexOf('-', StringComparison.Ordinal);
            var from = dash < 0 ? part : part[..dash];
            var to = dash < 0 ? part : part[(dash + 1)..];
            if (!int.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out var low)
                || !int.TryParse(to, NumberStyles.None, CultureInfo.InvariantCulture, out var high)
                || low < 100 || high > 599 || high < low)
            {
                error = $"{raw} is not a status or range of statuses (e.g. 200-399, or 200,204)";
                return false;
            }

            list.Add((low, high));
        }

        ranges = new StatusRanges(list);
        return true;
    }

    /// <summary>An HTTP method token: letters (normalized to upper case).</summary>
    public static bool Method(string raw, out string method, out string error)
    {
        error = "";
        method = raw.ToUpperInvariant();
        if (raw.Length is > 0 and <= 20 && raw.All(char.IsAsciiLetter))
        {
            return true;
        }

        error = $"{raw} is not an HTTP method";
        return false;
    }

    public static bool HashKey(string raw, out HashKey key, out string error) =>
        Balancer.LoadBalancing.HashKey.TryParse(raw, out key, out error);

    /// <summary>
    /// A backend address: <c>http://host:port</c> or <c>https://host:port</c>; a bare <c>host:port</c> means http.
    /// Normalized to scheme://host:port with no trailing slash.
    /// </summary>
    public static bool BackendAddress(string raw, out string address, out string error)
    {
        error = "";
        address = "";
        var text = raw.Contains("://", StringComparison.Ordinal) ? raw : "http://" + raw;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri)
            || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || string.IsNullOrEmpty(uri.Host))
        {
            error = $"{raw} is not an http:// or https:// address";
            return false;
        }

        if (uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0)
        {
            error = $"{raw} has a path; give scheme, host and port only";
            return false;
        }

        if (uri.Port == 0)
        {
            error = $"{raw} has port 0; give the port the backend listens on";
            return false;
        }

        address = $"{uri.Scheme}://{uri.Authority}";
        return true;
    }

    /// <summary>A DNS host name such as <c>lb.internal</c>: letters, digits, '-' and '.'; no port.</summary>
    public static bool HostName(string raw, out string name, out string error)
    {
        error = "";
        name = raw.TrimEnd('.').ToLowerInvariant();
        if (name.Length is > 0 and <= 253 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.'))
        {
            return true;
        }

        error = $"{raw} is not a host name (letters, digits, '-' and '.')";
        return false;
    }

    /// <summary>An RFC 9110 token (a header's or a cookie's name): visible ASCII but separators, at most 256 characters.</summary>
    public static bool Token(string raw, out string token, out string error)
    {
        token = raw;
        error = "";
        if (raw.Length is > 0 and <= 256 && raw.All(c => c > ' ' && c < 127 && "\"(),/:;<=>?@[\\]{}".IndexOf(c, StringComparison.Ordinal) < 0))
        {
            return true;
        }

        error = $"{raw} is not a token (letters, digits and !#$%&'*+-.^_`|~)";
        return false;
    }

    /// <summary>A path prefix such as <c>/api/v2</c>: starts with '/', no trailing '/', no query.</summary>
    public static bool PathPrefix(string raw, out string path, out string error)
    {
        error = "";
        path = raw.Length > 1 ? raw.TrimEnd('/') : raw;
        if (!raw.StartsWith('/'))
        {
            error = $"{raw} must start with /";
            return false;
        }

        if (raw.IndexOfAny(['?', '#', ' ', '*', '{', '}']) >= 0)
        {
            error = $"{raw} is not a plain path prefix (no ?, #, spaces, wildcards or braces)";
            return false;
        }

        return true;
    }

    public static ValueParser<T> OneOf<T>(IReadOnlyDictionary<string, T> choices) =>
        (string raw, out T value, out string error) =>
        {
            error = "";
            var match = choices.FirstOrDefault(c => c.Key.Equals(raw, StringComparison.OrdinalIgnoreCase));
            if (match.Key is not null)
            {
                value = match.Value;
                return true;
            }

            value = default!;
            error = $"{raw} is not one of {string.Join(", ", choices.Keys)}";
            return false;
        };
}
