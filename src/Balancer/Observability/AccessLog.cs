using System.Buffers;
using System.Threading.Channels;
using Balancer.Configuration;

namespace Balancer.Observability;

/// <summary>
/// The access log: requests hand entries to a bounded queue and go on; one background task formats and
/// writes them to <c>{access-logs-path}/access.log</c>, in the configured format, rotating it as configured. When the
/// queue is full, entries are dropped and counted rather than making requests wait on the disk. The queue is closed only once every hosted
/// service has stopped, so requests that finish during the shutdown drain are still logged.
/// </summary>
internal sealed partial class AccessLog : IHostedLifecycleService, IDisposable
{
    public const string FileName = "access.log";

    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(5);

    private readonly Channel<AccessLogEntry> _queue = Channel.CreateBounded<AccessLogEntry>(
        new BoundedChannelOptions(64 * 1024) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly string _directory;
    private readonly AccessLogOptions _options;
    private readonly ILogger<AccessLog> _logger;
    private readonly TimeProvider _time;
    /// <summary>How long a line may wait in the file's buffer before it is written.</summary>
    public static readonly TimeSpan FlushEvery = TimeSpan.FromMilliseconds(200);

    /// <summary>How long the writer lets entries gather in the queue between passes.</summary>
    private static readonly TimeSpan GatherFor = TimeSpan.FromMilliseconds(20);

    private long _dropped;
    private bool _unflushed;
    private ITimer? _flusher;
    private readonly CancellationTokenSource _stopping = new();
    private Task _writer = Task.CompletedTask;

    public AccessLog(BalancerOptions options, ILogger<AccessLog> logger, TimeProvider time)
    {
        _directory = options.AccessLogsPath;
        _options = options.Observability.AccessLog;
        _logger = logger;
        _time = time;
    }

    public bool Enabled => _directory.Length > 0;

    /// <summary>Whether entries need the response's body bytes (the formats that show them).</summary>
    public bool CountsBytes => Enabled && _options.Format != AccessLogFormat.Balancer;

    /// <summary>Whether entries need the request's trace id (only JSON shows it: the id's string may be made for it).</summary>
    public bool WritesTraceIds => Enabled && _options.Format == AccessLogFormat.Json;

    /// <summary>Entries dropped because the writer fell behind.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void Write(in AccessLogEntry entry)
    {
        if (!_queue.Writer.TryWrite(entry))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (Enabled)
        {
            _writer = Task.Run(WriteAsync, CancellationToken.None);
            // A line reaches the file within FlushEvery; flushing every batch instead would cost each request a write
            // to the file whenever requests come one at a time.
            _flusher = _time.CreateTimer(
                static state =>
                {
                    var log = (AccessLog)state!;
                    if (Volatile.Read(ref log._unflushed))
                    {
                        log._queue.Writer.TryWrite(default);
                    }
                },
                this,
                FlushEvery,
                FlushEvery);
        }

        return Task.CompletedTask;
    }

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        // Called once the server has stopped, however the shutdown went (the host's token may have run out already):
        // the lines of the last requests still get their own few seconds to reach the file.
        _flusher?.Dispose();
        await _stopping.CancelAsync().ConfigureAwait(false);
        _queue.Writer.TryComplete();
        try
        {
            await _writer.WaitAsync(FlushTimeout, _time, CancellationToken.None).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            LogStopTimedOut(_logger, _queue.Reader.CanCount ? _queue.Reader.Count : -1);
        }
    }

    public void Dispose()
    {
        _flusher?.Dispose();
        _stopping.Dispose();
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// The writer: formats and appends entries until the queue is closed, in passes at most every <see cref="GatherFor"/>,
    /// flushing the file's buffer when the flush timer says so (<see cref="FlushEvery"/>), when the buffer fills, and at
    /// the end. A write that fails (a full disk, a file
    /// that cannot be opened) is logged once, with the reason; the entries not yet flushed are counted as dropped, and the
    /// file is opened again a second later, so logging resumes by itself when the cause goes away.
    /// </summary>
    private async Task WriteAsync()
    {
        var path = Path.Combine(_directory, FileName);
        using var formatter = new AccessLogFormatter(_options.Format);
        var line = new ArrayBufferWriter<byte>(1024);
        var reportedDrops = 0L;
        var failing = false;
        var unflushed = 0L;
        AccessLogFile? file = null;
        try
        {
            while (await _queue.Reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                try
                {
                    file ??= new AccessLogFile(path, _options.Rotation, _time);
                    var flush = false;
                    while (_queue.Reader.TryRead(out var entry))
                    {
                        if (IsFlushMarker(entry))
                        {
                            flush = true;
                            continue;
                        }

                        unflushed++;
                        line.ResetWrittenCount();
                        formatter.Format(entry, line);
                        await file.WriteAsync(line.WrittenMemory).ConfigureAwait(false);
                    }

                    Volatile.Write(ref _unflushed, unflushed > 0);
                    if (flush && unflushed > 0)
                    {
                        await file.FlushAsync().ConfigureAwait(false);
                        unflushed = 0;
                        Volatile.Write(ref _unflushed, false);
                        if (failing)
                        {
                            failing = false;
                            LogResumed(_logger, path);
                        }
                    }
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Interlocked.Add(ref _dropped, unflushed);
                    unflushed = 0;
                    Volatile.Write(ref _unflushed, false);
                    if (!failing)
                    {
                        failing = true;
                        LogWriteFailed(_logger, path, e.Message);
                    }

                    file = await CloseQuietlyAsync(file).ConfigureAwait(false);
                    await Task.Delay(TimeSpan.FromSeconds(1), _time).ConfigureAwait(false);
                    continue;
                }

                var dropped = Dropped;
                if (dropped != reportedDrops)
                {
                    LogDropped(_logger, dropped - reportedDrops, path);
                    reportedDrops = dropped;
                }

                // Let entries gather before the next pass: a writer woken by every entry would cost each request a
                // thread-pool wake-up.
                try
                {
                    await Task.Delay(GatherFor, _time, _stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Stopping: drain what is left now, whatever the clock does.
                }
            }
        }
        finally
        {
            if (file is not null && unflushed > 0)
            {
                try
                {
                    await file.FlushAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Interlocked.Add(ref _dropped, unflushed); // the last lines, lost with the file's buffer
                    LogDropped(_logger, unflushed, path);
                }
            }

            await CloseQuietlyAsync(file).ConfigureAwait(false);
        }
    }

    /// <summary>The flush timer's entry: a request always has a method.</summary>
    private static bool IsFlushMarker(in AccessLogEntry entry) => entry.Method is null;

    /// <summary>Closes a file whose buffer may no longer be writable: what it still held is lost, and was counted.</summary>
    private static async Task<AccessLogFile?> CloseQuietlyAsync(AccessLogFile? file)
    {
        if (file is null)
        {
            return null;
        }

        try
        {
            await file.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Thrown away: it already failed, and the file is closed.
        }

        return null;
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Access log fell behind: {Count} entries dropped (writing {Path})")]
    private static partial void LogDropped(ILogger logger, long count, string path);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Error, Message = "Access log: cannot write {Path}: {Reason}; requests are still served, and writing resumes by itself once it can")]
    private static partial void LogWriteFailed(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "Access log: writing {Path} again")]
    private static partial void LogResumed(ILogger logger, string path);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Access log: the last entries could not be written in time at shutdown ({Count} still queued)")]
    private static partial void LogStopTimedOut(ILogger logger, int count);
}
