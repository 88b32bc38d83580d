using Balancer.Configuration;
using Balancer.Proxy;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Which backends may take new requests: those of weight above 0 that no health check has failed (healthy, or not
/// checked yet). When none is left, or fewer than <c>panic-threshold</c> percent, <c>when-all-unhealthy</c>
/// decides: <c>reject</c> answers 503, <c>panic</c> uses every backend of weight above 0. Runs when membership or
/// health changes, never per request.
/// </summary>
internal sealed class AvailableDestinationsPolicy(BalancerOptions options) : IAvailableDestinationsPolicy
{
    public const string PolicyName = "lb-available";

    public string Name => PolicyName;

    public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations)
    {
        var candidates = allDestinations.Where(d => DestinationMetadata.WeightOf(d) > 0).ToList();
        var healthy = candidates.Where(d => d.Health.Active != DestinationHealth.Unhealthy && d.Health.Passive != DestinationHealth.Unhealthy).ToList();
        var settings = options.LoadBalancing;
        var panic = settings.WhenAllUnhealthy == AllUnhealthyMode.Panic
            && candidates.Count > 0
            && (healthy.Count == 0 || healthy.Count * 100 < settings.PanicThreshold * candidates.Count);
        return panic ? candidates : healthy;
    }
}
