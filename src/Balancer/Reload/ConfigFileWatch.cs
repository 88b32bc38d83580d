namespace Balancer.Reload;

/// <summary>
/// <c>reload.watch: true</c>: reloads when the configuration file is written, created or renamed into place (as
/// editors and <c>kubectl</c>'s ConfigMap updates do), once the changes have been quiet for half a second.
/// </summary>
internal sealed partial class ConfigFileWatch : IDisposable
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(500);

    private readonly FileSystemWatcher _watcher;
    private readonly ITimer _timer;

    public ConfigFileWatch(string path, ConfigReloader reloader, TimeProvider time, ILogger<ConfigFileWatch> logger)
    {
        var full = Path.GetFullPath(path);
        _timer = time.CreateTimer(_ => _ = reloader.ReloadAsync("the file changed"), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        var name = Path.GetFileName(full);
        // The whole directory: a Kubernetes ConfigMap volume swaps its ..data link, and the file's own name sees nothing.
        _watcher = new FileSystemWatcher(Path.GetDirectoryName(full)!)
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        bool Ours(string? changed) => changed is not null && (changed.Equals(name, StringComparison.Ordinal) || changed.Equals("..data", StringComparison.Ordinal));
        _watcher.Changed += (_, e) => Touched(Ours(e.Name));
        _watcher.Created += (_, e) => Touched(Ours(e.Name));
        _watcher.Renamed += (_, e) => Touched(Ours(e.Name) || Ours(e.OldName));
        _watcher.Error += (_, e) => LogWatchFailed(logger, e.GetException());
        _watcher.EnableRaisingEvents = true;
        LogWatching(logger, full);
    }

    private void Touched(bool ours)
    {
        if (ours)
        {
            _timer.Change(Quiet, Timeout.InfiniteTimeSpan);
        }
    }

    public void Dispose()
    {
        _watcher.Dispose();
        _timer.Dispose();
    }

    [LoggerMessage(EventId = 1104, Level = LogLevel.Information, Message = "Watching {Path}: a change reloads it")]
    private static partial void LogWatching(ILogger logger, string path);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Warning, Message = "Watching the configuration file failed; SIGHUP and POST /reload still reload it")]
    private static partial void LogWatchFailed(ILogger logger, Exception exception);
}
