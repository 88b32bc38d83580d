using System.IO.Pipelines;
using System.Net;
using System.Threading.Channels;
using Balancer.Configuration;
using Balancer.Health;
using Balancer.Observability;
using Balancer.Registry;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Balancer.ControlPlane;

/// <summary>
/// The TCP control plane: backends register and leave with BalanceHub's LB/RE packets. A connection from
/// outside <c>Original-Server.allow</c> is closed without a reply. Packets may be pipelined and split across
/// reads in any way; each is answered, in order, once its change is stored and live (or refused). A payload
/// error is answered with 0x00 and the connection keeps serving; a framing error (bad magic) is answered and
/// the connection closed. An idle connection is closed after <c>control-plane.idle-timeout</c>.
/// </summary>
internal sealed partial class ControlPlaneHandler(BalancerOptions options, BackendRegistry registry, ActiveHealthChecker health, BalancerMetrics metrics, TimeProvider time, ILogger<ControlPlaneHandler> logger)
    : ConnectionHandler
{
    // Changes submitted ahead of their answers, per connection: enough to batch well, bounded memory.
    private const int MaxInFlight = 256;

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var peer = (connection.RemoteEndPoint as IPEndPoint)?.Address;
        if (peer is { IsIPv4MappedToIPv6: true })
        {
            peer = peer.MapToIPv4();
        }

        if (peer is null || !options.ControlPlane.Allow.Contains(peer))
        {
            LogRejected(logger, connection.RemoteEndPoint?.ToString() ?? "unknown");
            metrics.ControlPlanePacket("connection", "not_allowed");
            return;
        }

        // Without this, shutdown would wait out its whole timeout on every idle control connection.
        using var closing = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested
            .Register(static state => ((PipeReader)state!).CancelPendingRead(), connection.Transport.Input);

        // The reader submits changes as packets arrive; the writer answers them in order as they complete.
        var answers = Channel.CreateBounded<Task<ControlResponse>>(new BoundedChannelOptions(MaxInFlight) { SingleReader = true, SingleWriter = true });
        var writer = WriteAnswersAsync(answers.Reader, connection.Transport.Output);
        try
        {
            await ReadPacketsAsync(connection.Transport.Input, answers.Writer, peer).ConfigureAwait(false);
        }
        catch (ConnectionResetException)
        {
        }
        finally
        {
            answers.Writer.TryComplete();
            await writer.ConfigureAwait(false);
            await connection.Transport.Input.CompleteAsync().ConfigureAwait(false);
        }
    }

    private async Task ReadPacketsAsync(PipeReader input, ChannelWriter<Task<ControlResponse>> answers, IPAddress peer)
    {
        using var idle = new CancellationTokenSource(options.ControlPlane.IdleTimeout, time);
        while (true)
        {
            ReadResult read;
            try
            {
                read = await input.ReadAsync(idle.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (idle.IsCancellationRequested)
            {
                LogIdle(logger, peer, options.ControlPlane.IdleTimeout.TotalSeconds);
                return;
            }

            var buffer = read.Buffer;
            try
            {
                while (true)
                {
                    var status = ControlPlaneCodec.TryReadFrame(ref buffer, out var frame, out var framingError);
                    if (status == FrameStatus.Incomplete)
                    {
                        break;
                    }

                    if (status == FrameStatus.FramingError)
                    {
                        LogFramingError(logger, peer, framingError!);
                        metrics.ControlPlanePacket("unknown", "bad_frame");
                        await answers.WriteAsync(Task.FromResult(new ControlResponse(false, framingError!))).ConfigureAwait(false);
                        return;
                    }

                    await answers.WriteAsync(HandleAsync(frame, peer)).ConfigureAwait(false);
                }
            }
            finally
            {
                input.AdvanceTo(buffer.Start, buffer.End);
            }

            if (read.IsCompleted || read.IsCanceled)
            {
                return;
            }

            idle.TryReset();
            idle.CancelAfter(options.ControlPlane.IdleTimeout);
        }
    }

    private static async Task WriteAnswersAsync(ChannelReader<Task<ControlResponse>> answers, PipeWriter output)
    {
        try
        {
            while (await answers.WaitToReadAsync().ConfigureAwait(false))
            {
                while (answers.TryRead(out var pending))
                {
                    var answer = await pending.ConfigureAwait(false);
                    ControlPlaneCodec.WriteResponse(output, answer.Succeeded, answer.Message);
                    if (!answers.TryPeek(out var next) || !next.IsCompleted)
                    {
                        await output.FlushAsync().ConfigureAwait(false);
                    }
                }
            }
        }
        finally
        {
            await output.CompleteAsync().ConfigureAwait(false);
        }
    }

    private async Task<ControlResponse> HandleAsync(ControlFrame frame, IPAddress peer)
    {
        try
        {
            return await ApplyAsync(frame, peer).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogHandlerFailed(logger, peer, e);
            metrics.ControlPlanePacket("unknown", "failed");
            return new ControlResponse(false, $"internal error, nothing was changed: {e.Message}");
        }
    }

    private async Task<ControlResponse> ApplyAsync(ControlFrame frame, IPAddress peer)
    {
        if (!ControlPlaneCodec.TryParseRequest(frame, out var request, out var error))
        {
            LogBadPacket(logger, peer, error);
            metrics.ControlPlanePacket("unknown", "malformed");
            return new ControlResponse(false, error);
        }

        // The same normal form as every other source: http://10.0.0.5 for port 80, as the REST API writes it.
        ValueParsers.BackendAddress($"http://{new IPEndPoint(peer, request.Port)}", out var address, out _);
        RegistryChange change = request switch
        {
            { Action: ControlAction.Add } => new RegistryChange.Register(address, Configuration.PoolOptions.DefaultName, request.Weight, request.Paths, request.Clients, BackendSource.ControlPlane),
            { Drain: true } => new RegistryChange.Drain(address),
            _ => new RegistryChange.Deregister(address, request.Paths, request.Clients),
        };
        var result = await registry.ApplyAsync(change, "control-plane").ConfigureAwait(false);
        var message = result.Succeeded ? await health.AnswerAsync(result, CancellationToken.None).ConfigureAwait(false) : result.Message;
        LogChange(logger, peer, request.Action, result.Succeeded, message);
        metrics.ControlPlanePacket(request switch { { Action: ControlAction.Add } => "add", { Drain: true } => "drain", _ => "remove" }, result.Succeeded ? "applied" : "refused");
        return new ControlResponse(result.Succeeded, message);
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Control-plane connection from {Peer} refused: not in Original-Server.allow")]
    private static partial void LogRejected(ILogger logger, string peer);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "Control-plane connection from {Peer} closed: {Error}")]
    private static partial void LogFramingError(ILogger logger, IPAddress peer, string error);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Information, Message = "Control plane: {Peer} sent a bad packet: {Error}")]
    private static partial void LogBadPacket(ILogger logger, IPAddress peer, string error);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Information, Message = "Control plane: {Peer} {Action}: {Succeeded} {Message}")]
    private static partial void LogChange(ILogger logger, IPAddress peer, ControlAction action, bool succeeded, string message);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Error, Message = "Control plane: a packet from {Peer} failed unexpectedly; answered 0x00, the connection goes on")]
    private static partial void LogHandlerFailed(ILogger logger, IPAddress peer, Exception exception);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Debug, Message = "Control-plane connection from {Peer} closed after {Seconds}s idle")]
    private static partial void LogIdle(ILogger logger, IPAddress peer, double seconds);
}
