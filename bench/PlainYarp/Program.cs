// Plain YARP in front of one backend: dotnet PlainYarp.dll <backend-url> <listen-url>
using Yarp.ReverseProxy.Configuration;

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.Services.AddReverseProxy().LoadFromMemory(
    [new RouteConfig { RouteId = "all", ClusterId = "backend", Match = new RouteMatch { Path = "/{**rest}" } }],
    [new ClusterConfig { ClusterId = "backend", Destinations = new Dictionary<string, DestinationConfig> { ["b1"] = new() { Address = args[0] } } }]);
var app = builder.Build();
app.MapReverseProxy();
app.Run(args[1]);
