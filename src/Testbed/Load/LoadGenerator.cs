using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Testbed.Load;

/// <summary>
/// Offers load to one loopback address as <see cref="LoadOptions"/> say, and records every measured request. Open
/// model: requests are sent when due whatever earlier ones are doing, and their latency counts from when they were
/// due. Closed model: each client sends when its previous request is answered. Warm-up requests are sent but not
/// recorded. Runs stop by themselves: at the end of the duration, or after <see cref="LoadOptions.MaxRequests"/>.
/// </summary>
public sealed class LoadGenerator : IAsyncDisposable
{
    /// <summary>The query parameter that tags a request with its id, when <see cref="LoadOptions.TagRequests"/>.</summary>
    public const string TagParameter = "lb-request";

    /// <summary>The generator checks it keeps time every 10 ms; a beat over 100 ms late is a stall of the testbed itself.</summary>
    private static readonly TimeSpan StallBeat = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan StallThreshold = TimeSpan.FromMilliseconds(100);

    private readonly LoadOptions _options;
    private readonly TimeProvider _time;
    private readonly HttpClient[] _clients;
    private readonly ConcurrentQueue<RequestRecord> _records = new();
    private readonly TaskCompletionSource<long> _measuredStart = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _totalWeight;
    private long _inFlight;

    public LoadGenerator(LoadOptions options, TimeProvider? time = null)
    {
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", problems), nameof(options));
        }

        _options = options;
        _time = time ?? TimeProvider.System;
        _totalWeight = options.Paths.Sum(p => p.Weight);
        _clients = [.. options.Clients.Select(CreateClient)];
    }

    /// <summary>Completes when the measured time begins, with that moment's timestamp (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public Task<long> MeasuredStart => _measuredStart.Task;

    /// <summary>The measured requests answered (or failed) so far, in the order they finished.</summary>
    public IReadOnlyCollection<RequestRecord> Completed => _records;

    /// <summary>Requests sent and not yet answered.</summary>
    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>Runs the load to its end; every request sent has been answered or given up on when this returns.</summary>
    public async Task<LoadResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var start = _time.GetTimestamp();
        var measuredFrom = start + Ticks(_options.Warmup);
        var until = measuredFrom + Ticks(_options.Duration);
        var watch = new StallWatch(_time, measuredFrom, StallBeat, StallThreshold);
        using var stopWatching = new CancellationTokenSource();
        var watching = watch.RunAsync(stopWatching.Token);
        var signal = Task.Run(async () =>
        {
            var wait = _time.GetElapsedTime(start, measuredFrom);
            await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
            _measuredStart.TrySetResult(measuredFrom);
        }, cancellationToken);
        try
        {
            if (_options.Model == LoadModel.Open)
            {
                await RunOpenAsync(start, measuredFrom, until, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await RunClosedAsync(measuredFrom, until, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _measuredStart.TrySetResult(measuredFrom); // a run cut short still has a start
        }

        await signal.ConfigureAwait(false);
        await stopWatching.CancelAsync().ConfigureAwait(false);
        await watching.ConfigureAwait(false);
        return new LoadResult(_options, [.. _records.OrderBy(r => r.Due).ThenBy(r => r.Id)], watch.Stalls);
    }

    private async Task RunOpenAsync(long start, long measuredFrom, long until, CancellationToken cancellationToken)
    {
        var sending = new List<Task>();
        long next = 0;
        var measured = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var due = (long)Math.Floor(_time.GetElapsedTime(start).TotalSeconds * _options.Rate) + 1;
            for (; next < due; next++)
            {
                var dueAt = start + Ticks(TimeSpan.FromSeconds(next / _options.Rate));
                if (dueAt >= until || measured >= _options.MaxRequests)
                {
                    await Task.WhenAll(sending).ConfigureAwait(false);
                    return;
                }

                var isMeasured = dueAt >= measuredFrom;
                measured += isMeasured ? 1 : 0;
                if (Interlocked.Read(ref _inFlight) >= _options.MaxInFlight)
                {
                    if (isMeasured)
                    {
                        var request = Describe(next);
                        _records.Enqueue(new RequestRecord(next, Since(measuredFrom, dueAt), TimeSpan.Zero, request.Client, request.Method, request.Path, 0, null,
                            $"not sent: {_options.MaxInFlight} requests already in flight"));
                    }

                    continue;
                }

                sending.Add(SendAsync(next, dueAt, measuredFrom, isMeasured, cancellationToken));
            }

            if (sending.Count > 4096)
            {
                sending.RemoveAll(t => t.IsCompleted);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(1), _time, cancellationToken).ConfigureAwait(false);
        }

        await Task.WhenAll(sending).ConfigureAwait(false);
    }

    private async Task RunClosedAsync(long measuredFrom, long until, CancellationToken cancellationToken)
    {
        long next = -1;
        var measured = 0;
        await Task.WhenAll(Enumerable.Range(0, _options.Concurrency).Select(_ => Task.Run(async () =>
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var now = _time.GetTimestamp();
                if (now >= until)
                {
                    return;
                }

                var isMeasured = now >= measuredFrom;
                if (isMeasured && Interlocked.Increment(ref measured) > _options.MaxRequests)
                {
                    return;
                }

                await SendAsync(Interlocked.Increment(ref next), now, measuredFrom, isMeasured, cancellationToken).ConfigureAwait(false);
            }
        }, cancellationToken))).ConfigureAwait(false);
    }

    private async Task SendAsync(long id, long dueAt, long measuredFrom, bool measured, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _inFlight);
        var (client, method, path) = Describe(id);
        var status = 0;
        string? backend = null;
        string? cache = null;
        string? error = null;
        using var timeout = new CancellationTokenSource(_options.Timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        try
        {
            var target = _options.TagRequests ? $"{path}{(path.Contains('?', StringComparison.Ordinal) ? '&' : '?')}{TagParameter}={id.ToString(CultureInfo.InvariantCulture)}" : path;
            using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(_options.Target, target));
            if (method is "POST" or "PUT" or "PATCH")
            {
                request.Content = new StringContent($"{{\"request\":{id.ToString(CultureInfo.InvariantCulture)}}}", Encoding.UTF8, "application/json");
            }

            using var response = await _clients[id % _clients.Length].SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
            await response.Content.CopyToAsync(Stream.Null, linked.Token).ConfigureAwait(false);
            status = (int)response.StatusCode;
            backend = response.Headers.TryGetValues(FakeBackends.FakeBackend.BackendHeader, out var names) ? names.FirstOrDefault() : null;
            cache = response.Headers.TryGetValues("X-Cache", out var results) ? results.FirstOrDefault() : null;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            error = $"no answer within {_options.Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s";
        }
        catch (HttpRequestException e)
        {
            error = Describe(e);
        }
        catch (IOException e)
        {
            error = e.Message;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            error = "run cancelled";
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }

        if (measured)
        {
            _records.Enqueue(new RequestRecord(id, Since(measuredFrom, dueAt), _time.GetElapsedTime(dueAt), client, method, path, status, backend, error, Cache: cache));
        }
    }

    private static string Describe(Exception error)
    {
        for (var inner = error; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
            {
                return socket.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => "connection refused",
                    SocketError.ConnectionReset => "connection reset",
                    _ => socket.Message,
                };
            }
        }

        return error.InnerException?.Message ?? error.Message;
    }

    /// <summary>Which client sends request <paramref name="id"/>, with which method, to which path: fixed by the seed.</summary>
    private (string Client, string Method, string Path) Describe(long id)
    {
        var hash = Mix((ulong)_options.Seed, (ulong)id);
        var pick = (int)(hash % (ulong)_totalWeight);
        var path = _options.Paths[^1].Path;
        foreach (var candidate in _options.Paths)
        {
            if (pick < candidate.Weight)
            {
                path = candidate.Path;
                break;
            }

            pick -= candidate.Weight;
        }

        var method = _options.Methods[(int)((hash >> 32) % (ulong)_options.Methods.Count)];
        return (_options.Clients[(int)(id % _options.Clients.Count)].ToString(), method, path);
    }

    /// <summary>SplitMix64 of a seed and a counter: cheap, and well spread.</summary>
    private static ulong Mix(ulong seed, ulong counter)
    {
        var z = seed + (counter * 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private TimeSpan Since(long measuredFrom, long timestamp) =>
        timestamp >= measuredFrom ? _time.GetElapsedTime(measuredFrom, timestamp) : -_time.GetElapsedTime(timestamp, measuredFrom);

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    private HttpClient CreateClient(IPAddress source)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = _options.Cookies, // one handler per client address, so one cookie jar per client
            MaxConnectionsPerServer = int.MaxValue,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(source.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new IPEndPoint(source, 0));
                    var host = context.DnsEndPoint.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
                        ? (source.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback)
                        : IPAddress.Parse(context.DnsEndPoint.Host.Trim('[', ']'));
                    await socket.ConnectAsync(new IPEndPoint(host, context.DnsEndPoint.Port), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
    }

    public ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        return ValueTask.CompletedTask;
    }
}
