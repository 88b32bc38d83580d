using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http.Features;

namespace Balancer.Proxy.WebSockets;

/// <summary>
/// Proxy pipeline step, and the WebSockets it keeps: the client stream of every proxied WebSocket (HTTP/1.1 upgrade or
/// HTTP/2 extended CONNECT) is a <see cref="ClosingStream"/>, so that when the drain timeout runs out at shutdown, each
/// is closed with a close frame (1001, going away) instead of being cut by a reset.
/// </summary>
internal sealed partial class UpgradedConnections(TimeProvider time, ILogger<UpgradedConnections> logger)
{
    private static readonly TimeSpan Patience = TimeSpan.FromMilliseconds(500);
    private readonly ConcurrentDictionary<ClosingStream, byte> _open = new();

    /// <summary>WebSockets open now.</summary>
    public int Count => _open.Count;

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var features = context.Features;
        if (features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true } upgrade
            && context.Request.Headers.Upgrade.ToString().Contains("websocket", StringComparison.OrdinalIgnoreCase))
        {
            var tracked = new Upgrade(upgrade, this);
            features.Set<IHttpUpgradeFeature>(tracked);
            return ForwardAsync(context, next, tracked);
        }

        if (features.Get<IHttpExtendedConnectFeature>() is { IsExtendedConnect: true } connect
            && string.Equals(connect.Protocol, "websocket", StringComparison.OrdinalIgnoreCase))
        {
            var tracked = new ExtendedConnect(connect, this);
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
    public async Task<int> CloseAllAsync()
    {
        var streams = _open.Keys.ToList();
        var results = await Task.WhenAll(streams.Select(s => s.CloseAsync(Patience, time))).ConfigureAwait(false);
        var closed = results.Count(r => r);
        LogClosed(logger, closed, streams.Count - closed);
        return closed;
    }

    internal void Forget(ClosingStream stream) => _open.TryRemove(stream, out _);

    private ClosingStream Track(Stream stream)
    {
        var closing = new ClosingStream(stream, this);
        _open[closing] = 0;
        return closing;
    }

    [LoggerMessage(EventId = 6201, Level = LogLevel.Information, Message = "Drain timeout: {Closed} WebSocket(s) closed with a close frame (1001 going away), {Cut} cut mid-frame")]
    private static partial void LogClosed(ILogger logger, int closed, int cut);

    private interface ITracked
    {
        ClosingStream? Stream { get; }
    }

    private sealed class Upgrade(IHttpUpgradeFeature inner, UpgradedConnections owner) : IHttpUpgradeFeature, ITracked
    {
        public ClosingStream? Stream { get; private set; }

        public bool IsUpgradableRequest => inner.IsUpgradableRequest;

        public async Task<Stream> UpgradeAsync() => Stream = owner.Track(await inner.UpgradeAsync().ConfigureAwait(false));
    }

    private sealed class ExtendedConnect(IHttpExtendedConnectFeature inner, UpgradedConnections owner) : IHttpExtendedConnectFeature, ITracked
    {
        public ClosingStream? Stream { get; private set; }

        public bool IsExtendedConnect => inner.IsExtendedConnect;

        public string? Protocol => inner.Protocol;

        public async ValueTask<Stream> AcceptAsync() => Stream = owner.Track(await inner.AcceptAsync().ConfigureAwait(false));
    }
}
