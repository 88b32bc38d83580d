using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>A load-balancing policy that can say why it picked a backend, for the decision trace of a request that asked.</summary>
internal interface IExplainingPolicy
{
    /// <summary>
    /// Why <paramref name="picked"/> was the pick of <paramref name="available"/> for this request, in one sentence that
    /// starts with the algorithm's name. Called right after the pick, only for an explained request; may allocate.
    /// </summary>
    PickReason Explain(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> available, DestinationState picked);
}

/// <param name="Text">The reason, naming backends by address.</param>
/// <param name="Key">The hash key's value (a header's, a cookie's, the path) for the hashing algorithms; null otherwise.</param>
internal readonly record struct PickReason(string Text, string? Key = null)
{
    /// <summary>"a, b, c", or the first <paramref name="max"/> and "and N more".</summary>
    public static string Listed(IReadOnlyCollection<string> items, int max = 8) =>
        items.Count <= max ? string.Join(", ", items) : string.Join(", ", items.Take(max)) + $" and {items.Count - max} more";
}
