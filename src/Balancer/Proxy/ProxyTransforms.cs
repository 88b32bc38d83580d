using Yarp.ReverseProxy.Transforms.Builder;

namespace Balancer.Proxy;

/// <summary>
/// Turns YARP's own X-Forwarded-* transforms off on every route: they either always trust or never trust, where ours
/// decide per peer (<see cref="ForwardedHeaders"/>, applied by <see cref="BalancerTransformer"/>).
/// </summary>
internal sealed class ProxyTransforms : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context) => context.UseDefaultForwarders = false;
}
