using Balancer.LoadBalancing;
using Balancer.Proxy;

namespace Balancer.Health;

/// <summary>
/// Proxy pipeline step after load balancing: a pick of a ramping backend (see <see cref="SlowStart"/>) stands with
/// probability equal to its share, and otherwise goes to another backend (<see cref="SlowStart.Choose"/>). Not
/// applied to the hashing algorithms, whose point is that a key keeps its backend.
/// </summary>
internal sealed class SlowStartStep(SlowStart slowStart, Random random)
{
    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (!slowStart.Enabled)
        {
            return next(context);
        }

        var proxy = context.GetReverseProxyFeature();
        if (proxy.AvailableDestinations.Count != 1
            || proxy.Cluster.Config.LoadBalancingPolicy is AlgorithmNames.IpHash or AlgorithmNames.ConsistentHash)
        {
            return next(context);
        }

        if (context.Features.Get<AttemptFeature>()?.Candidates is { Count: > 1 } candidates)
        {
            proxy.AvailableDestinations = slowStart.Choose(proxy.AvailableDestinations[0], candidates, random);
        }

        return next(context);
    }
}
