using Balancer.Proxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Proxy pipeline step right after load balancing: counts the request against the chosen backend while it is in
/// flight, in pools whose algorithm is one of the least-connections ones. (YARP skips the policy when only one
/// backend is available, so counting cannot happen at pick time.) The try loop (<see cref="RetryStep"/>) releases the count when the try ends.
/// </summary>
internal static class InFlightStep
{
    public static Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var proxy = context.GetReverseProxyFeature();
        var cluster = proxy.Route.Cluster;
        var tracker = cluster is null ? null : InFlightTracker.ForPolicy(cluster, proxy.Cluster.Config.LoadBalancingPolicy);
        if (tracker is null || proxy.AvailableDestinations.Count != 1)
        {
            return next(context);
        }

        var destination = proxy.AvailableDestinations[0];
        if (context.Features.Get<AttemptFeature>() is { } attempt)
        {
            tracker.Acquire(destination);
            attempt.CountInFlight(tracker, destination); // released when the try ends, without a state machine of its own
            return next(context);
        }

        return CountAsync(context, tracker, destination, next);
    }

    private static async Task CountAsync(HttpContext context, InFlightTracker tracker, DestinationState destination, RequestDelegate next)
    {
        tracker.Acquire(destination);
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            tracker.Release(destination);
        }
    }
}
