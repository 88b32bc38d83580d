using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Proxy;

/// <summary>What a failed try tells about its backend, read the same way by retries and by outlier detection.</summary>
internal static class ForwarderFailures
{
    /// <summary>
    /// The connect itself failed (refused, unreachable, a name that does not resolve): nothing reached the backend, so
    /// the request may go anywhere, and a probe that connects shows the cause is over.
    /// </summary>
    public static bool IsConnectFailure(IForwarderErrorFeature? error) =>
        error is { Error: ForwarderError.Request, Exception: HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError } };
}
