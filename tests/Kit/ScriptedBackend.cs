using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Balancer.Tests.Kit;

/// <summary>
/// A backend on real Kestrel (loopback, a free port) that answers as the test scripts it, for tests that need exact
/// response fields (cache rules); it counts the requests it sees per path and query.
/// </summary>
public sealed class ScriptedBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, int> _seen = new(StringComparer.Ordinal);

    private ScriptedBackend(WebApplication app) => _app = app;

    public string Address { get; private set; } = "";

    /// <summary>Requests seen for a path and query (<c>/c/1?a=b</c>).</summary>
    public int Seen(string pathAndQuery) => _seen.GetValueOrDefault(pathAndQuery);

    /// <param name="http2Only">Speak HTTP/2 only, without TLS (prior knowledge), as gRPC servers do.</param>
    public static async Task<ScriptedBackend> StartAsync(Func<HttpContext, int, Task> answer, bool http2Only = false)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = http2Only
                ? Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2
                : Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1AndHttp2);
        });
        var app = builder.Build();
        var backend = new ScriptedBackend(app);
        app.Run(context =>
        {
            var count = backend._seen.AddOrUpdate(context.Request.Path.ToUriComponent() + context.Request.QueryString.Value, 1, (_, n) => n + 1);
            return answer(context, count);
        });
        await app.StartAsync();
        backend.Address = app.Urls.First();
        return backend;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
