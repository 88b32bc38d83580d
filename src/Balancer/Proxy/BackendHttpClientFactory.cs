using System.Diagnostics.Metrics;
using Balancer.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Proxy;

/// <summary>YARP's client factory, with our connect timeout and meters.</summary>
internal sealed class BackendHttpClientFactory(BalancerOptions options, IMeterFactory meters, ILogger<ForwarderHttpClientFactory> logger)
    : ForwarderHttpClientFactory(logger)
{
    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        handler.ConnectTimeout = options.Proxy.ConnectTimeout;
        handler.MeterFactory = meters; // its http.client.* instruments come from this balancer's meter factory
    }
}
