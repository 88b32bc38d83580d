using System.Net.ServerSentEvents;
using System.Text.Json;
using Balancer.Admin;
using Balancer.Observability;

namespace Testbed.Scenarios;

/// <summary>One of the balancer's own events (<c>GET /events</c>), placed on the run's clock.</summary>
/// <param name="At">From the start of the measured load.</param>
/// <param name="Backend">The backend's scenario name (its address when it has none).</param>
public sealed record BalancerSideEvent(TimeSpan At, string Kind, string Backend, string Pool, string Reason)
{
    /// <summary>As the report labels it: <c>b2 down (connection refused (2 failures in a row))</c>.</summary>
    public string Describe() => $"{Backend} {Kind}{(Reason.Length == 0 ? "" : $" ({Reason})")}";
}

/// <summary>
/// The testbed's subscription to the balancer's event stream for the length of a run: it reads <c>GET /events</c> in
/// the background and, when the stream ends (the balancer restarted), subscribes again and takes everything the new
/// process has kept.
/// </summary>
internal sealed class BalancerEventLog : IAsyncDisposable
{
    private readonly HttpClient _admin;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<BalancerEvent> _seen = [];
    private readonly Task _reader;
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private BalancerEventLog(HttpClient admin)
    {
        _admin = admin;
        _reader = Task.Run(ReadAsync);
    }

    /// <summary>Subscribes, and returns once the first subscription is open.</summary>
    public static async Task<BalancerEventLog> StartAsync(HttpClient admin)
    {
        var log = new BalancerEventLog(admin);
        await log._subscribed.Task.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        return log;
    }

    /// <summary>What was seen, on the run's clock (<paramref name="t0"/>: the wall-clock time the measured load began), with backend names.</summary>
    public IReadOnlyList<BalancerSideEvent> Events(DateTimeOffset t0, IReadOnlyDictionary<string, string> namesByAddress)
    {
        lock (_seen)
        {
            return [.. _seen.OrderBy(e => e.Time).Select(e => new BalancerSideEvent(
                e.Time - t0, e.Kind, namesByAddress.TryGetValue(e.Backend, out var name) ? name : e.Backend, e.Pool, e.Reason))];
        }
    }

    private async Task ReadAsync()
    {
        var seen = new HashSet<(DateTimeOffset, string, string)>();
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                using var response = await _admin.GetAsync("/events?since=0", HttpCompletionOption.ResponseHeadersRead, _stop.Token).ConfigureAwait(false);
                response.EnsureSuccessStatusCode();
                _subscribed.TrySetResult();
                await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync(_stop.Token).ConfigureAwait(false)).EnumerateAsync(_stop.Token).ConfigureAwait(false))
                {
                    if (EventKinds.Known(item.EventType) && JsonSerializer.Deserialize(item.Data, ObservabilityJson.Default.BalancerEvent) is { } e && seen.Add((e.Time, e.Kind, e.Backend)))
                    {
                        lock (_seen)
                        {
                            _seen.Add(e);
                        }
                    }
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or JsonException || (e is OperationCanceledException && !_stop.IsCancellationRequested))
            {
                // The balancer went away (a restart): subscribe again shortly.
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _reader.ConfigureAwait(false);
        _stop.Dispose();
    }

}
