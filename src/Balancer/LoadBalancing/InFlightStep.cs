using Balancer.Proxy;

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

        // The try loop (which runs this step once per try, and always gives the request its AttemptFeature) releases the
        // count when the try ends: no state machine of this step's own.
        var destination = proxy.AvailableDestinations[0];
        tracker.Acquire(destination);
        context.Features.Get<AttemptFeature>()!.CountInFlight(tracker, destination);
        return next(context);
    }
}
