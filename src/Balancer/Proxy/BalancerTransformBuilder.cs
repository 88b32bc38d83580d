using Balancer.Configuration;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Balancer.Proxy;

/// <summary>YARP's transform builder, with <see cref="BalancerTransformer"/> around every route's transformer.</summary>
internal sealed class BalancerTransformBuilder(ITransformBuilder yarps, BalancerOptions options, LoopGuard loopGuard) : ITransformBuilder
{
    public IReadOnlyList<Exception> ValidateRoute(RouteConfig route) => yarps.ValidateRoute(route);

    public IReadOnlyList<Exception> ValidateCluster(ClusterConfig cluster) => yarps.ValidateCluster(cluster);

    public HttpTransformer Create(Action<TransformBuilderContext> action) =>
        new BalancerTransformer(
            yarps.Create(context =>
            {
                context.UseDefaultForwarders = false; // ours set X-Forwarded-*, as on every route
                action(context);
            }),
            options.Proxy.TrustedProxies,
            loopGuard);

    public HttpTransformer Build(RouteConfig route, ClusterConfig? cluster) =>
        new BalancerTransformer(yarps.Build(route, cluster), options.Proxy.TrustedProxies, loopGuard);
}
