using System.Collections.Concurrent;
using System.Net.Http.Json;
using FakeBackends;

namespace Balancer.Tests.Kit;

/// <summary>
/// A steady stream of GETs through the balancer from a few concurrent loops, every outcome recorded, until
/// stopped or bounded (requests and time), so a test can act in the middle of it and judge it as a whole.
/// </summary>
public sealed class SteadyLoad : IAsyncDisposable
{
    private readonly ConcurrentQueue<Outcome> _outcomes = new();
    private readonly CancellationTokenSource _stop;
    private readonly Task _loops;

    private SteadyLoad(HttpClient client, int loops, string path, int maxRequests, TimeSpan maxTime)
    {
        _stop = new CancellationTokenSource(maxTime);
        var sent = 0;
        _loops = Task.WhenAll(Enumerable.Range(0, loops).Select(_ => Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested && Interlocked.Increment(ref sent) <= maxRequests)
            {
                var started = DateTime.UtcNow;
                try
                {
                    using var response = await client.GetAsync(path, _stop.Token);
                    var server = response.IsSuccessStatusCode ? (await response.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody, _stop.Token))?.Server : null;
                    _outcomes.Enqueue(new Outcome(started, (int)response.StatusCode, server, DateTime.UtcNow - started));
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (HttpRequestException e)
                {
                    _outcomes.Enqueue(new Outcome(started, 0, e.Message, DateTime.UtcNow - started));
                }
            }
        })));
    }

    /// <summary>Every request answered so far.</summary>
    public IReadOnlyList<Outcome> Outcomes => [.. _outcomes];

    public static SteadyLoad Start(HttpClient client, int loops = 4, string path = "/stream", int maxRequests = 200_000, TimeSpan? maxTime = null) =>
        new(client, loops, path, maxRequests, maxTime ?? TimeSpan.FromMinutes(2));

    /// <summary>Waits until <paramref name="count"/> more requests have been answered.</summary>
    public Task MoreAsync(int count)
    {
        var target = _outcomes.Count + count;
        return Eventually.TrueAsync(() => _outcomes.Count >= target, $"{count} more requests through the stream");
    }

    public async Task<IReadOnlyList<Outcome>> StopAsync()
    {
        await _stop.CancelAsync();
        await _loops;
        return Outcomes;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }

    /// <param name="Status">0 when no HTTP answer came at all.</param>
    /// <param name="Server">The backend that answered a 2xx, or the error.</param>
    public sealed record Outcome(DateTime Started, int Status, string? Server, TimeSpan Took);
}
