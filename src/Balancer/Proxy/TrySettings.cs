using System.Globalization;
using System.Runtime.CompilerServices;
using Balancer.Configuration;
using Yarp.ReverseProxy.Configuration;

namespace Balancer.Proxy;

/// <summary>
/// A pool's retries and per-try response-headers timeout, attached to the pool's cluster config when it is compiled.
/// Their canonical text is also in the config's metadata, so that a reload that changes them gives YARP a config that
/// differs (and that it takes), rather than one it finds equal and keeps the old object of.
/// </summary>
internal sealed record TrySettings(RetryOptions Retries, TimeSpan ResponseHeadersTimeout)
{
    public const string MetadataKey = "lb.tries";

    private static readonly ConditionalWeakTable<ClusterConfig, TrySettings> Attached = [];

    public string Canonical => string.Create(CultureInfo.InvariantCulture,
        $"{Retries.Attempts}|{Retries.BudgetPercent}|{Retries.MaxBufferedBody}|{string.Join(',', Retries.OnStatus.Order())}|{string.Join(',', Retries.Methods.Select(m => m.ToUpperInvariant()).Order(StringComparer.Ordinal))}|{ResponseHeadersTimeout.Ticks}");

    public static void Attach(ClusterConfig cluster, TrySettings settings) => Attached.AddOrUpdate(cluster, settings);

    /// <summary>The settings of the pool behind <paramref name="cluster"/>; the global ones for a config built elsewhere.</summary>
    public static TrySettings Of(ClusterConfig? cluster, BalancerOptions options) =>
        cluster is not null && Attached.TryGetValue(cluster, out var settings) ? settings : new TrySettings(options.Retries, options.Proxy.ResponseHeadersTimeout);
}
