using System.Net.ServerSentEvents;
using System.Text.Json;
using System.Threading.Channels;

namespace Balancer.Tests.Kit;

/// <summary>A client of the admin API's <c>GET /events</c> (Server-Sent Events), reading in the background.</summary>
public sealed class EventSubscription : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Channel<SentEvent> _events = Channel.CreateUnbounded<SentEvent>();
    private readonly List<SentEvent> _seen = [];
    private readonly Task _reader;

    private EventSubscription(HttpResponseMessage response) => _reader = ReadAsync(response);

    /// <summary>Every event read so far (not the stream's hello).</summary>
    public IReadOnlyList<SentEvent> Seen
    {
        get
        {
            lock (_seen)
            {
                return [.. _seen];
            }
        }
    }

    public static async Task<EventSubscription> OpenAsync(HttpClient admin, string path = "/events", string? lastEventId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }

        var response = await admin.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        var stream = new EventSubscription(response);
        await stream.NextAsync(e => e.Event == "hello", TimeSpan.FromSeconds(30)); // subscribed from here on
        return stream;
    }

    /// <summary>Waits for the next event (from the ones not yet taken) that matches.</summary>
    public async Task<SentEvent> NextAsync(Func<SentEvent, bool> match, TimeSpan? timeout = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        cts.CancelAfter(timeout ?? Eventually.DefaultTimeout);
        try
        {
            while (true)
            {
                var e = await _events.Reader.ReadAsync(cts.Token);
                if (match(e))
                {
                    return e;
                }
            }
        }
        catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
        {
            throw new TimeoutException($"no matching event within {(timeout ?? Eventually.DefaultTimeout).TotalSeconds}s; seen: {string.Join("; ", Seen.Select(s => $"{s.Event} {s.Data}"))}");
        }
    }

    /// <summary>The next event of <paramref name="kind"/> about <paramref name="backend"/>.</summary>
    public Task<SentEvent> NextAsync(string kind, string backend, TimeSpan? timeout = null) =>
        NextAsync(e => e.Event == kind && e.Backend == backend, timeout);

    private async Task ReadAsync(HttpResponseMessage response)
    {
        try
        {
            using var _ = response;
            await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync(_stop.Token)).EnumerateAsync(_stop.Token))
            {
                var e = new SentEvent(item.EventType, item.Data, item.EventId);
                if (e.Event != "hello")
                {
                    lock (_seen)
                    {
                        _seen.Add(e);
                    }
                }

                _events.Writer.TryWrite(e);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException)
        {
            // Closed by us, or by the server.
        }
        finally
        {
            _events.Writer.TryComplete();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _reader;
        _stop.Dispose();
    }
}

/// <summary>One Server-Sent Event: its name, data and id; for the balancer's events, the fields of the JSON data.</summary>
public sealed record SentEvent(string Event, string Data, string? Id)
{
    private JsonElement Json => JsonDocument.Parse(Data).RootElement;

    public string Backend => Event is "hello" or "dropped" ? "" : Json.GetProperty("backend").GetString()!;

    public string Pool => Json.GetProperty("pool").GetString()!;

    public string Reason => Json.GetProperty("reason").GetString()!;

    public DateTimeOffset Time => Json.GetProperty("time").GetDateTimeOffset();
}
