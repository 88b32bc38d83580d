using System.Globalization;
using System.Net;
using System.Text;
using System.Threading.Channels;
using Balancer.Configuration;

namespace Balancer.Observability;

/// <summary>One line of the access log, captured on the request path without formatting.</summary>
internal readonly record struct AccessLogEntry(
    DateTimeOffset Time,
    IPAddress? Client,
    string Method,
    string Path,
    string Query,
    string Protocol,
    int Status,
    TimeSpan Duration,
    string? Pool,
    string? Backend,
    int Retries,
    string? UserAgent);

/// <summary>
/// The access log: requests hand entries to a bounded queue and go on; one background task formats and
/// writes them to <c>{access-logs-path}/access.log</c>. When the queue is full, entries are dropped and
/// counted rather than making requests wait on the disk. The queue is closed only once every hosted
/// service has stopped, so requests that finish during the shutdown drain are still logged.
/// </summary>
internal sealed partial class AccessLog : IHostedLifecycleService
{
    public const string FileName = "access.log";

    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(5);

    private readonly Channel<AccessLogEntry> _queue = Channel.CreateBounded<AccessLogEntry>(
        new BoundedChannelOptions(64 * 1024) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly string _directory;
    private readonly ILogger<AccessLog> _logger;
    private readonly TimeProvider _time;
    private long _dropped;
    private Task _writer = Task.CompletedTask;

    public AccessLog(BalancerOptions options, ILogger<AccessLog> logger, TimeProvider time)
    {
        _directory = options.AccessLogsPath;
        _logger = logger;
        _time = time;
    }

    public bool Enabled => _directory.Length > 0;

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
        }

        return Task.CompletedTask;
    }

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        // Called once the server has stopped, however the shutdown went (the host's token may have run out already):
        // the lines of the last requests still get their own few seconds to reach the file.
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

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// The writer: formats and appends entries until the queue is closed. A write that fails (a full disk, a file that
    /// cannot be opened) is logged once, with the reason; the entries it held are counted as dropped, and the file is
    /// opened again a second later, so logging resumes by itself when the cause goes away.
    /// </summary>
    private async Task WriteAsync()
    {
        var path = Path.Combine(_directory, FileName);
        var line = new StringBuilder(256);
        var reportedDrops = 0L;
        var failing = false;
        StreamWriter? writer = null;
        try
        {
            while (await _queue.Reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                var pending = 0L;
                try
                {
                    writer ??= Open(path);
                    while (_queue.Reader.TryRead(out var entry))
                    {
                        line.Clear();
                        Format(line, entry);
                        pending++;
                        await writer.WriteAsync(line, CancellationToken.None).ConfigureAwait(false);
                    }

                    await writer.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                    if (failing)
                    {
                        failing = false;
                        LogResumed(_logger, path);
                    }
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Interlocked.Add(ref _dropped, pending);
                    if (!failing)
                    {
                        failing = true;
                        LogWriteFailed(_logger, path, e.Message);
                    }

                    writer = await CloseQuietlyAsync(writer).ConfigureAwait(false);
                    await Task.Delay(TimeSpan.FromSeconds(1), _time).ConfigureAwait(false);
                    continue;
                }

                var dropped = Dropped;
                if (dropped != reportedDrops)
                {
                    LogDropped(_logger, dropped - reportedDrops, path);
                    reportedDrops = dropped;
                }
            }
        }
        finally
        {
            await CloseQuietlyAsync(writer).ConfigureAwait(false);
        }
    }

    private static StreamWriter Open(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 64 * 1024, useAsync: true);
        return new StreamWriter(stream, new UTF8Encoding(false), 64 * 1024);
    }

    /// <summary>Closes a writer whose buffer may no longer be writable: what it still held is lost, and was counted.</summary>
    private static async Task<StreamWriter?> CloseQuietlyAsync(StreamWriter? writer)
    {
        if (writer is null)
        {
            return null;
        }

        try
        {
            await writer.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            try
            {
                writer.BaseStream.Dispose();
            }
            catch (Exception again) when (again is not OutOfMemoryException)
            {
                // Thrown away: it already failed.
            }
        }

        return null;
    }

    /// <summary><c>time client "METHOD path?query PROTOCOL" status duration_ms pool backend retries "user-agent"</c></summary>
    internal static void Format(StringBuilder line, in AccessLogEntry e)
    {
        var c = CultureInfo.InvariantCulture;
        line.Append(e.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", c)).Append(' ')
            .Append(e.Client?.ToString() ?? "-").Append(" \"")
            .Append(e.Method).Append(' ');
        AppendQuoted(line, e.Path);
        AppendQuoted(line, e.Query);
        line.Append(' ').Append(e.Protocol).Append("\" ")
            .Append(e.Status.ToString(c)).Append(' ')
            .Append(e.Duration.TotalMilliseconds.ToString("0.###", c)).Append(' ')
            .Append(e.Pool ?? "-").Append(' ')
            .Append(e.Backend ?? "-").Append(' ')
            .Append(e.Retries.ToString(c)).Append(" \"");
        AppendQuoted(line, e.UserAgent ?? "-");
        line.Append("\"\n");
    }

    private static void AppendQuoted(StringBuilder line, string text)
    {
        foreach (var ch in text)
        {
            if (ch is '"' or '\\')
            {
                line.Append('\\').Append(ch);
            }
            else if (char.IsControl(ch))
            {
                line.Append("\\x").Append(((int)ch).ToString("x2", CultureInfo.InvariantCulture));
            }
            else
            {
                line.Append(ch);
            }
        }
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
