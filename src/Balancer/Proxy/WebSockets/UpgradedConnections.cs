using System.Collections.Concurrent;
using Balancer.Observability;
using Microsoft.AspNetCore.Http.Features;

namespace Balancer.Proxy.WebSockets;

/// <summary>
/// Proxy pipeline step, and the WebSockets it keeps: the client stream of every proxied WebSocket (HTTP/1.1 upgrade or
/// HTTP/2 extended CONNECT) is a <see cref="ClosingStream"/>, so that when the drain timeout runs out at shutdown, each
/// is closed with a close frame (1001, going away) instead of being cut by a reset.
/// </summary>
internal sealed partial class UpgradedConnections(TimeProvider time, ILogger<UpgradedConnections> logger, BalancerMetrics metrics)
{
    private static readonly TimeSpan Patience = TimeSpan.FromMilliseconds(500);

    // Each open WebSocket's client stream, with its pool (for balancer_websockets_open) and backend (for a drain's end).
    private readonly ConcurrentDictionary<ClosingStream, (string Pool, string? Backend)> _open = new();

    /// <summary>WebSockets open now.</summary>
    public int Count => _open.Count;

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var features = context.Features;
        if (features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true } upgrade
            && context.Request.Headers.Upgrade.ToString().Contains("websocket", StringComparison.OrdinalIgnoreCase))
        {
            var tracked = new Upgrade(upgrade, this, context);
            features.Set<IHttpUpgradeFeature>(tracked);
            return ForwardAsync(context, next, tracked);
        }

        if (features.Get<IHttpExtendedConnectFeature>() is { IsExtendedConnect: true } connect
            && string.Equals(connect.Protocol, "websocket", StringComparison.OrdinalIgnoreCase))
        {
            var tracked = new ExtendedConnect(connect, this, context);
            features.Set<IHttpExtendedConnectFeature>(tracked);
            return ForwardAsync(context, next, tracked);
        }

        return next(context);
    }

    private async Task ForwardAsync(HttpContext context, RequestDelegate next, ITracked tracked)
    {
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            if (tracked.Stream is { } stream)
            {
                Forget(stream); // the WebSocket is over, whoever ended it
            }
        }
    }

    /// <summary>Closes every open WebSocket with a close frame; returns how many were closed so.</summary>
    public Task<int> CloseAllAsync() => CloseAsync(_open.Keys.ToList());

    /// <summary>Closes, with a close frame, the WebSockets open to <paramref name="backend"/> (a drain that timed out).</summary>
    public Task<int> CloseToAsync(string backend) =>
        CloseAsync([.. _open.Where(o => string.Equals(o.Value.Backend, backend, StringComparison.OrdinalIgnoreCase)).Select(o => o.Key)]);

    private async Task<int> CloseAsync(List<ClosingStream> streams)
    {
        if (streams.Count == 0)
        {
            return 0;
        }

        var results = await Task.WhenAll(streams.Select(s => s.CloseAsync(Patience, time))).ConfigureAwait(false);
        var closed = results.Count(r => r);
        LogClosed(logger, closed, streams.Count - closed);
        return closed;
    }

    internal void Forget(ClosingStream stream)
    {
        if (_open.TryRemove(stream, out var owner))
        {
            metrics.WebSocketClosed(owner.Pool);
        }
    }

    private static string PoolOf(HttpContext context) => context.GetReverseProxyFeature().Route.Cluster?.ClusterId ?? "";

    private ClosingStream Track(Stream stream, string pool, HttpContext context)
    {
        var closing = new ClosingStream(stream, this);
        _open[closing] = (pool, context.GetReverseProxyFeature().ProxiedDestination?.Model.Config.Address);
        metrics.WebSocketOpened(pool);
        return closing;
    }

    [LoggerMessage(EventId = 6201, Level = LogLevel.Information, Message = "Drain timeout: {Closed} WebSocket(s) closed with a close frame (1001 going away), {Cut} cut mid-frame")]
    private static partial void LogClosed(ILogger logger, int closed, int cut);

    private interface ITracked
    {
        ClosingStream? Stream { get; }
    }

    private sealed class Upgrade(IHttpUpgradeFeature inner, UpgradedConnections owner, HttpContext context) : IHttpUpgradeFeature, ITracked
    {
        public ClosingStream? Stream { get; private set; }

        public bool IsUpgradableRequest => inner.IsUpgradableRequest;

        public async Task<Stream> UpgradeAsync() => Stream = owner.Track(await inner.UpgradeAsync().ConfigureAwait(false), PoolOf(context), context);
    }

    private sealed class ExtendedConnect(IHttpExtendedConnectFeature inner, UpgradedConnections owner, HttpContext context) : IHttpExtendedConnectFeature, ITracked
    {
        public ClosingStream? Stream { get; private set; }

        public bool IsExtendedConnect => inner.IsExtendedConnect;

        public string? Protocol => inner.Protocol;

        public async ValueTask<Stream> AcceptAsync() => Stream = owner.Track(await inner.AcceptAsync().ConfigureAwait(false), PoolOf(context), context);
    }
}
