using Balancer.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Proxy;

/// <summary>YARP's client factory, with our connect timeout.</summary>
internal sealed class BackendHttpClientFactory(BalancerOptions options, ILogger<ForwarderHttpClientFactory> logger)
    : ForwarderHttpClientFactory(logger)
{
    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        handler.ConnectTimeout = options.Proxy.ConnectTimeout;
    }
}
