using Microsoft.AspNetCore.Routing.Matching;

namespace Balancer.Routing;

/// <summary>Invalidates candidate routes whose <see cref="RouteConditions"/> do not hold; routes without any are untouched (and unslowed).</summary>
internal sealed class RouteConditionPolicy : MatcherPolicy, IEndpointSelectorPolicy
{
    // After YARP's host, method, header and query policies: the cheap checks first.
    public override int Order => 1000;

    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) =>
        endpoints.Any(e => e.Metadata.GetMetadata<RouteConditions>() is not null);

    public Task ApplyAsync(HttpContext httpContext, CandidateSet candidates)
    {
        for (var i = 0; i < candidates.Count; i++)
        {
            if (candidates.IsValidCandidate(i) && candidates[i].Endpoint.Metadata.GetMetadata<RouteConditions>() is { } conditions && !conditions.Holds(httpContext.Request))
            {
                candidates.SetValidity(i, false);
            }
        }

        return Task.CompletedTask;
    }
}
