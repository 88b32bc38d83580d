using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;

namespace Balancer.Tests.Kit;

/// <summary>
/// YARP with nothing of ours, as a user would write it in a dozen lines, in this process on a free loopback port:
/// the yardstick the balancer's per-request costs are measured against.
/// </summary>
public sealed class PlainYarp : IAsyncDisposable
{
    private readonly WebApplication _app;

    private PlainYarp(WebApplication app, IPEndPoint endpoint)
    {
        _app = app;
        Endpoint = endpoint;
    }

    public IPEndPoint Endpoint { get; }

    public static async Task<PlainYarp> StartAsync(Uri backend)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        builder.Services.AddReverseProxy().LoadFromMemory(
            [new RouteConfig { RouteId = "all", ClusterId = "backend", Match = new RouteMatch { Path = "/{**rest}" } }],
            [new ClusterConfig { ClusterId = "backend", Destinations = new Dictionary<string, DestinationConfig> { ["b1"] = new() { Address = backend.ToString() } } }]);
        var app = builder.Build();
        app.MapReverseProxy();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new PlainYarp(app, new IPEndPoint(IPAddress.Loopback, new Uri(address).Port));
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
