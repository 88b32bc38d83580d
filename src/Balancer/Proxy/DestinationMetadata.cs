using System.Globalization;
using Yarp.ReverseProxy.Model;

namespace Balancer.Proxy;

/// <summary>What the snapshot tells YARP about each destination beyond its address, as destination metadata.</summary>
internal static class DestinationMetadata
{
    public const string Weight = "lb.weight";
    public const string Order = "lb.order";
    public const string Draining = "lb.draining";

    public static int WeightOf(DestinationState destination) => Read(destination, Weight, 1);

    public static long OrderOf(DestinationState destination) => Read(destination, Order, long.MaxValue);

    public static bool IsDraining(DestinationState destination) => destination.Model.Config.Metadata?.ContainsKey(Draining) == true;

    private static int Read(DestinationState destination, string key, int fallback) => (int)Read(destination, key, (long)fallback);

    private static long Read(DestinationState destination, string key, long fallback) =>
        destination.Model.Config.Metadata?.TryGetValue(key, out var text) == true
        && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : fallback;
}
