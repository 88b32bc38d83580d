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

    /// <summary>A cluster, with cluster metadata (hash key, virtual nodes) when given.</summary>
    public static ClusterState Cluster(string id = "c", Dictionary<string, string>? metadata = null) =>
        metadata is null ? new(id) : new(id, new ClusterModel(new ClusterConfig { ClusterId = id, Metadata = metadata }, new HttpMessageInvoker(new HttpClientHandler())));

    /// <summary>
    /// A cluster whose available destinations are exactly <paramref name="available"/> (the same list instance),
    /// as YARP sets it up: policies then see the cluster's whole available set, not a subset of it.
    /// </summary>
    public static ClusterState Cluster(DestinationState[] available)
    {
        var cluster = new ClusterState("c");
        cluster.DestinationsState = new ClusterDestinationsState(available, available);
        return cluster;
    }

    /// <summary>A request from 10.0.0.1 (or a random client address).</summary>
    public static HttpContext Context(Random? random = null) =>
        Context(random is null ? System.Net.IPAddress.Parse("10.0.0.1") : new System.Net.IPAddress(random.Next()));

    public static HttpContext Context(System.Net.IPAddress client)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = client;
        return context;
    }

    /// <summary>Index of a destination created by <see cref="Create"/>.</summary>
    public static int IndexOf(DestinationState destination) => int.Parse(destination.DestinationId.AsSpan(1), CultureInfo.InvariantCulture);
}
