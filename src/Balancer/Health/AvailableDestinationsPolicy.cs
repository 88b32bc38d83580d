using Balancer.Configuration;
using Balancer.Proxy;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Which backends may take new requests: weight above 0, not draining, not ejected by outlier detection, and, in a
/// pool with active checks, healthy (a backend not probed yet waits for its first probe, sent at once; without
/// active checks nothing is known against it). When none is left, or fewer than <c>panic-threshold</c> percent,
/// <c>when-all-unhealthy</c> decides: <c>reject</c> answers 503, <c>panic</c> uses every backend of weight above 0
/// that is not draining. Runs when membership or health changes, never per request.
/// </summary>
internal sealed class AvailableDestinationsPolicy(BalancerOptions options, SlowStart slowStart) : IAvailableDestinationsPolicy
{
    public const string PolicyName = "lb-available";

    /// <summary>Cluster metadata: the pool probes its backends, so "not probed yet" means "not yet".</summary>
    public const string ActiveChecksMetadata = "lb.active-checks";

    public string Name => PolicyName;

    /// <summary>
    /// Whether a change of a backend's active health can change what this policy answers, in a pool with checks (the only
    /// pools whose backends have an active health): Unknown and Unhealthy both keep a backend out, so a first probe that
    /// fails changes nothing and needs no rebuild.
    /// </summary>
    public static bool ActiveChangeMatters(DestinationHealth before, DestinationHealth after) =>
        before != after && !(before == DestinationHealth.Unknown && after == DestinationHealth.Unhealthy);

    public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations)
    {
        var probed = config.Metadata?.ContainsKey(ActiveChecksMetadata) == true;
        var candidates = allDestinations.Where(d => DestinationMetadata.WeightOf(d) > 0 && !DestinationMetadata.IsDraining(d)).ToList();
        var healthy = candidates.Where(d =>
            d.Health.Passive != DestinationHealth.Unhealthy
            && (!probed || d.Health.Active == DestinationHealth.Healthy)).ToList(); // unprobed: nothing is known against it (a reload may have turned checks off)
        var settings = options.LoadBalancing;
        var panic = settings.WhenAllUnhealthy == AllUnhealthyMode.Panic
            && candidates.Count > 0
            && (healthy.Count == 0 || healthy.Count * 100 < settings.PanicThreshold * candidates.Count);
        var available = panic ? candidates : healthy;
        slowStart.Observe(config.ClusterId, available);
        return available;
    }
}
