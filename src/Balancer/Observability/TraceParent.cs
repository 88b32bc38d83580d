using System.Buffers;
using System.Diagnostics;

namespace Balancer.Observability;

/// <summary>
/// A request's W3C trace id: its Activity's when tracing made one (which the backends receive in <c>traceparent</c>),
/// else the one the client sent in <c>traceparent</c>, passed on to the backends as it came. With tracing off the
/// balancer starts no Activity (ASP.NET Core would spend 1.3 KB a request on one), so this reads the header itself.
/// </summary>
internal static class TraceParent
{
    public const string Header = "traceparent";

    /// <summary>The trace id, as 32 lowercase hex digits; null when the request has none.</summary>
    public static string? TraceIdOf(HttpContext context)
    {
        if (Activity.Current is { } activity)
        {
            return activity.TraceId.ToHexString();
        }

        var sent = context.Request.Headers[Header];
        return sent.Count == 1 ? TraceIdOf(sent[0]) : null;
    }

    /// <summary>The trace id of a <c>traceparent</c> value (<c>version-traceid-parentid-flags</c>); null when it is not one.</summary>
    public static string? TraceIdOf(string? value)
    {
        // 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01: version 00 is exactly 55 characters, later ones may be longer.
        if (value is null || value.Length < 55 || value[2] != '-' || value[35] != '-' || value[52] != '-' || (value.Length > 55 && value[55] != '-'))
        {
            return null;
        }

        var version = value.AsSpan(0, 2);
        var traceId = value.AsSpan(3, 32);
        if (!IsLowerHex(version) || version.SequenceEqual("ff") || (version.SequenceEqual("00") && value.Length != 55)
            || !IsLowerHex(traceId) || !traceId.ContainsAnyExcept('0')
            || !IsLowerHex(value.AsSpan(36, 16)) || !value.AsSpan(36, 16).ContainsAnyExcept('0') || !IsLowerHex(value.AsSpan(53, 2)))
        {
            return null;
        }

        return traceId.ToString();
    }

    private static readonly SearchValues<char> LowerHex = SearchValues.Create("0123456789abcdef");

    private static bool IsLowerHex(ReadOnlySpan<char> text) => !text.ContainsAnyExcept(LowerHex);
}
