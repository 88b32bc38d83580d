namespace Balancer.Proxy;

/// <summary>
/// The request target as the client sent it. Kestrel decodes the path for routing but leaves <c>%2F</c> encoded, and YARP
/// then encodes the <c>%</c> again (<c>/a%2Fb</c> would reach the backend as <c>/a%252Fb</c>, YARP issue #1419). A target
/// with escapes is therefore forwarded byte for byte instead; one whose dot segments appear only when <c>%2F</c>,
/// <c>%5C</c>, <c>\</c> or an escaped dot is decoded (<c>/public/..%2Fadmin</c>) would be routed by one reading and served
/// by another, and is refused.
/// </summary>
internal static class RequestTarget
{
    /// <summary>True when the target's path needs forwarding as sent: it has percent-escapes or backslashes.</summary>
    public static bool NeedsRawForwarding(string rawTarget) =>
        rawTarget.StartsWith('/') && Path(rawTarget).IndexOfAny('%', '\\') >= 0;

    /// <summary>True when the path has a <c>.</c> or <c>..</c> segment once escapes are decoded and every separator counts.</summary>
    public static bool IsAmbiguous(string rawTarget)
    {
        if (!NeedsRawForwarding(rawTarget))
        {
            return false;
        }

        var path = Path(rawTarget);
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

    private static ReadOnlySpan<char> Path(string rawTarget)
    {
        var query = rawTarget.IndexOf('?', StringComparison.Ordinal);
        return query < 0 ? rawTarget : rawTarget.AsSpan(0, query);
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
