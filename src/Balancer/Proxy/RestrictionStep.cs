using Balancer.Configuration;
using Yarp.ReverseProxy.Model;

namespace Balancer.Proxy;

/// <summary>
/// Proxy pipeline step, before load balancing: narrows the available destinations to the backends that serve
/// this request's path and admit this client. Servers exist for the path but none admits the client: 403.
/// None is available: YARP answers 503.
/// </summary>
internal sealed class RestrictionStep(BalancerOptions options)
{
    private static readonly IReadOnlyList<DestinationState> Nobody = [];

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var proxy = context.GetReverseProxyFeature();
        var cluster = proxy.Cluster.Config;
        var restrictions = PoolRestrictions.For(cluster);
        if (restrictions is null)
        {
            if (cluster.Metadata?.ContainsKey(PoolRestrictions.MetadataKey) == true)
            {
                proxy.AvailableDestinations = Nobody; // fail closed: never serve a restricted pool unrestricted
            }

            return next(context);
        }

        var group = restrictions.Select(context.Request.Path.Value);
        if (!group.HasMembers)
        {
            proxy.AvailableDestinations = Nobody;
            return next(context);
        }

        var client = ClientAddress.Resolve(context, options.Proxy.TrustedProxies);
        var admitted = group.Admitting(client);
        if (admitted.IsEmpty)
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            context.Response.ContentType = "text/plain; charset=utf-8";
            return context.Response.WriteAsync("403 no backend for this path accepts this client\n", context.RequestAborted);
        }

        proxy.AvailableDestinations = admitted.Filter(proxy.AvailableDestinations);
        return next(context);
    }
}
