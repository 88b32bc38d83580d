using Balancer.Configuration;

namespace Balancer.Observability;

/// <summary>
/// The access-log file: appends lines and rotates it as <see cref="AccessLogRotation"/> says, numbered the way logrotate
/// numbers (<c>access.log.1</c> is the newest old file). A file moved or deleted from outside (logrotate without
/// <c>copytruncate</c>, an operator) is noticed within a second and created again, so no signal is needed to reopen it.
/// Used by one writer at a time; a failed write throws, and the caller opens a new instance when it wants to retry.
/// </summary>
internal sealed class AccessLogFile : IAsyncDisposable
{
    private const int BufferSize = 64 * 1024;
    private static readonly TimeSpan ExistenceCheck = TimeSpan.FromSeconds(1);

    private readonly string _path;
    private readonly AccessLogRotation _rotation;
    private readonly TimeProvider _time;
    private FileStream? _stream;
    private long _size;
    private long _periodEnds = long.MaxValue;
    private long _checkExistenceAt;

    public AccessLogFile(string path, AccessLogRotation rotation, TimeProvider time)
    {
        _path = path;
        _rotation = rotation;
        _time = time;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (rotation.Every > TimeSpan.Zero && File.Exists(path) && PeriodOf(File.GetLastWriteTimeUtc(path).Ticks) < PeriodOf(Now))
        {
            Rotate();
        }

        Open();
    }

    private long Now => _time.GetUtcNow().UtcTicks;

    /// <summary>Appends one whole line, rotating first when the line would not fit or the period has ended.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> line)
    {
        var now = Now;
        if (now >= _checkExistenceAt)
        {
            _checkExistenceAt = now + ExistenceCheck.Ticks;
            if (!File.Exists(_path))
            {
                await ReopenAsync(rotate: false).ConfigureAwait(false);
            }
        }

        if (now >= _periodEnds && _size == 0)
        {
            _periodEnds = PeriodEnd(now);
        }

        if (_size > 0 && (now >= _periodEnds || (_rotation.MaxSize > 0 && _size + line.Length > _rotation.MaxSize)))
        {
            await ReopenAsync(rotate: true).ConfigureAwait(false);
        }

        await _stream!.WriteAsync(line, CancellationToken.None).ConfigureAwait(false);
        _size += line.Length;
    }

    public Task FlushAsync() => _stream!.FlushAsync(CancellationToken.None);

    public async ValueTask DisposeAsync()
    {
        if (_stream is { } stream)
        {
            _stream = null;
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async ValueTask ReopenAsync(bool rotate)
    {
        await DisposeAsync().ConfigureAwait(false);
        if (rotate)
        {
            Rotate();
        }

        Open();
    }

    private void Open()
    {
        _stream = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, BufferSize, useAsync: true);
        _size = _stream.Length;
        var now = Now;
        _periodEnds = PeriodEnd(now);
        _checkExistenceAt = now + ExistenceCheck.Ticks;
    }

    /// <summary><c>.N-1</c> → <c>.N</c>, ..., <c>.1</c> → <c>.2</c>, the file → <c>.1</c>; what would be <c>.Keep+1</c> is deleted.</summary>
    private void Rotate()
    {
        if (_rotation.Keep == 0)
        {
            File.Delete(_path);
            return;
        }

        File.Delete(Numbered(_rotation.Keep));
        for (var n = _rotation.Keep - 1; n >= 1; n--)
        {
            if (File.Exists(Numbered(n)))
            {
                File.Move(Numbered(n), Numbered(n + 1));
            }
        }

        if (File.Exists(_path))
        {
            File.Move(_path, Numbered(1));
        }
    }

    private string Numbered(int n) => $"{_path}.{n}";

    private long PeriodOf(long utcTicks) => (utcTicks - DateTime.UnixEpoch.Ticks) / _rotation.Every.Ticks;

    /// <summary>When the period holding <paramref name="utcTicks"/> ends; never, without time rotation.</summary>
    private long PeriodEnd(long utcTicks) =>
        _rotation.Every > TimeSpan.Zero ? DateTime.UnixEpoch.Ticks + ((PeriodOf(utcTicks) + 1) * _rotation.Every.Ticks) : long.MaxValue;
}
