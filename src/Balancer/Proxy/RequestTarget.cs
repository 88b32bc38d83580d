namespace Balancer.Proxy;

/// <summary>
/// The request target as the client sent it. Kestrel decodes the path for routing but leaves <c>%2F</c> encoded, and YARP
/// then encodes the <c>%</c> again (<c>/a%2Fb</c> would reach the backend as <c>/a%252Fb</c>, YARP issue #1419). A target
/// with escapes is therefore forwarded byte for byte instead; one whose dot segments appear only when <c>%2F</c>,
/// <c>%5C</c>, <c>\</c> or an escaped dot is decoded (<c>/public/..%2Fadmin</c>) would be routed by one reading and served
/// by another, and is refused. Both the origin form (<c>/path?query</c>) and the absolute form a client may send to a
/// proxy (<c>http://host/path?query</c>) are read for their path and query.
/// </summary>
internal static class RequestTarget
{
    /// <summary>The <c>/path?query</c> of an origin-form or absolute-form target; empty for the other forms (<c>*</c>, CONNECT's).</summary>
    public static ReadOnlySpan<char> PathAndQuery(string rawTarget)
    {
        if (rawTarget.StartsWith('/'))
        {
            return rawTarget;
        }

        var scheme = rawTarget.IndexOf("://", StringComparison.Ordinal);
        if (scheme <= 0)
        {
            return [];
        }

        var rest = rawTarget.AsSpan(scheme + 3);
        var path = rest.IndexOfAny('/', '?');
        return path < 0 ? "/" : rest[path] == '?' ? string.Concat("/", rest[path..]) : rest[path..];
    }

    /// <summary>True when the target's path needs forwarding as sent: it has percent-escapes or backslashes.</summary>
    public static bool NeedsRawForwarding(string rawTarget) => Path(PathAndQuery(rawTarget)).IndexOfAny('%', '\\') >= 0;

    /// <summary>
    /// True when the path has a <c>.</c> or <c>..</c> segment and escapes or backslashes beside it: whether that segment
    /// is one, and which segments it would remove, depends on who decodes what.
    /// </summary>
    public static bool IsAmbiguous(string rawTarget)
    {
        var path = Path(PathAndQuery(rawTarget));
        if (path.IndexOfAny('%', '\\') < 0)
        {
            return false;
        }

        var start = 0;
        for (var i = 0; i <= path.Length; i++)
        {
            var separator = i == path.Length ? 1 : SeparatorAt(path, i);
            if (separator == 0)
            {
                continue;
            }

            if (IsDotSegment(path[start..i]))
            {
                return true;
            }

            i += separator - 1;
            start = i + 1;
        }

        return false;
    }

    /// <summary>True when a decoded path still holds <c>.</c> or <c>..</c> segments (Kestrel removes them, but not from every target form).</summary>
    public static bool HasDotSegments(ReadOnlySpan<char> path)
    {
        var at = 0;
        while ((at = path.IndexOf("/.", StringComparison.Ordinal)) >= 0)
        {
            var rest = path[(at + 2)..];
            if (rest.IsEmpty || rest[0] == '/' || (rest[0] == '.' && (rest.Length == 1 || rest[1] == '/')))
            {
                return true;
            }

            path = rest;
        }

        return false;
    }

    private static ReadOnlySpan<char> Path(ReadOnlySpan<char> pathAndQuery)
    {
        var query = pathAndQuery.IndexOf('?');
        return query < 0 ? pathAndQuery : pathAndQuery[..query];
    }

    /// <summary>The length of the separator at <paramref name="i"/>: 1 for / or \, 3 for %2F or %5C, else 0.</summary>
    private static int SeparatorAt(ReadOnlySpan<char> path, int i) => path[i] switch
    {
        '/' or '\\' => 1,
        '%' when i + 2 < path.Length && (path.Slice(i + 1, 2).Equals("2f", StringComparison.OrdinalIgnoreCase) || path.Slice(i + 1, 2).Equals("5c", StringComparison.OrdinalIgnoreCase)) => 3,
        _ => 0,
    };

    /// <summary>"." or "..", each dot written as itself or as %2E.</summary>
    private static bool IsDotSegment(ReadOnlySpan<char> segment)
    {
        var dots = 0;
        for (var i = 0; i < segment.Length; dots++)
        {
            if (segment[i] == '.')
            {
                i++;
            }
            else if (segment[i] == '%' && i + 2 < segment.Length && segment.Slice(i + 1, 2).Equals("2e", StringComparison.OrdinalIgnoreCase))
            {
                i += 3;
            }
            else
            {
                return false;
            }
        }

        return dots is 1 or 2;
    }
}
