using System.Net;
using Balancer.Configuration;
using Balancer.Hosting;
using Microsoft.Extensions.Logging;

namespace Testbed.Scenarios;

/// <summary>The scenario's balancer, in this process, on fixed ports so that a restart comes back where it was.</summary>
internal sealed class BalancerHost(BalancerOptions options, ILoggerProvider log) : IAsyncDisposable
{
    private RunningBalancer? _running;

    public Uri ProxyUri { get; private set; } = null!;

    public Uri AdminUri { get; private set; } = null!;

    public IPEndPoint ControlPlane { get; private set; } = null!;

    public async Task StartAsync()
    {
        // The ports were free a moment ago; after a restart the old sockets may linger a little.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                _running = await BalancerApp.StartAsync(options, logging => logging.ClearProviders().AddProvider(log)).ConfigureAwait(false);
                break;
            }
            catch (IOException) when (attempt < 50)
            {
                await Task.Delay(100).ConfigureAwait(false);
            }
        }

        ProxyUri = _running.ProxyUri;
        AdminUri = _running.AdminUri;
        ControlPlane = _running.ControlPlaneEndpoint;
    }

    /// <summary>Stops gracefully (in-flight requests finish), then starts again on the same ports with the same database.</summary>
    public async Task RestartAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await StartAsync().ConfigureAwait(false);
    }

    public async Task StopAsync()
    {
        if (_running is { } running)
        {
            _running = null;
            await running.DisposeAsync().ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());
}
