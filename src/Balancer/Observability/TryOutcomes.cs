namespace Balancer.Observability;

/// <summary>How a try sent to a backend ended, as metrics and spans label it.</summary>
internal static class TryOutcomes
{
    /// <summary>An answer below 500.</summary>
    public const string Success = "success";

    /// <summary>The backend answered 5xx.</summary>
    public const string Status5xx = "status_5xx";

    /// <summary>A transport error: refused, reset, cut off mid-response.</summary>
    public const string Error = "error";

    /// <summary>No response headers within <c>proxy.response-headers-timeout</c>.</summary>
    public const string Timeout = "timeout";

    /// <summary>The client went away; not held against the backend.</summary>
    public const string Cancelled = "cancelled";
}
