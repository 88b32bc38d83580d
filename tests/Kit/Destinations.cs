using System.Globalization;
using Balancer.Proxy;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Kit;

/// <summary>YARP destination state as the proxy builds it, for testing policies without a proxy.</summary>
public static class Destinations
{
    /// <summary>Destinations d0..d(n-1), in pool order, with the given weights (1 by default).</summary>
    public static DestinationState[] Create(int count, Func<int, int>? weight = null) =>
        [.. Enumerable.Range(0, count).Select(i => new DestinationState($"d{i}", new DestinationModel(new DestinationConfig
        {
            Address = $"http://127.0.0.1:{10000 + i}",
            Metadata = new Dictionary<string, string>
            {
                [DestinationMetadata.Order] = i.ToString(CultureInfo.InvariantCulture),
                [DestinationMetadata.Weight] = (weight?.Invoke(i) ?? 1).ToString(CultureInfo.InvariantCulture),
            },
        })))];

    public static ClusterState Cluster(string id = "c") => new(id);

    public static HttpContext Context() => new DefaultHttpContext();

    /// <summary>Index of a destination created by <see cref="Create"/>.</summary>
    public static int IndexOf(DestinationState destination) => int.Parse(destination.DestinationId.AsSpan(1), CultureInfo.InvariantCulture);
}
