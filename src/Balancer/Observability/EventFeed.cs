using System.Threading.Channels;

namespace Balancer.Observability;

/// <summary>
/// The balancer's decisions about backends as they happen (<see cref="BalancerEvent"/>): kept in a ring of the last
/// <see cref="Kept"/> for late subscribers, and handed to each subscriber through a bounded queue of its own. Publishing
/// never waits: a subscriber whose queue is full is cut off (its stream ends, and it may reconnect with Last-Event-ID),
/// so a slow reader costs the balancer nothing but that one queue.
/// </summary>
internal sealed class EventFeed(TimeProvider time)
{
    public const int Kept = 1024;
    public const int SubscriberQueue = 1024;

    private readonly Lock _sync = new();
    private readonly BalancerEvent?[] _ring = new BalancerEvent?[Kept];
    private readonly List<Channel<BalancerEvent>> _subscribers = [];
    private long _lastId;

    /// <summary>Raised for every event, in order, before subscribers see it (metrics count them here).</summary>
    public event Action<BalancerEvent>? Published;

    public void Publish(string kind, string pool, string backend, string reason)
    {
        BalancerEvent published;
        lock (_sync)
        {
            published = new BalancerEvent(++_lastId, time.GetUtcNow(), kind, pool, backend, reason);
            _ring[published.Id % Kept] = published;
            for (var i = _subscribers.Count - 1; i >= 0; i--)
            {
                if (!_subscribers[i].Writer.TryWrite(published))
                {
                    _subscribers[i].Writer.TryComplete(new SlowSubscriberException());
                    _subscribers.RemoveAt(i);
                }
            }
        }

        Published?.Invoke(published);
    }

    /// <summary>The kept events after <paramref name="afterId"/>, oldest first.</summary>
    public IReadOnlyList<BalancerEvent> Since(long afterId)
    {
        lock (_sync)
        {
            return KeptAfter(afterId);
        }
    }

    /// <summary>
    /// A subscription: the kept events after <paramref name="afterId"/> first (so nothing falls between a reconnect and
    /// the live stream), then every new one. Dispose it to leave.
    /// </summary>
    public Subscription Subscribe(long afterId)
    {
        var channel = Channel.CreateBounded<BalancerEvent>(new BoundedChannelOptions(SubscriberQueue) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        lock (_sync)
        {
            foreach (var kept in KeptAfter(afterId).TakeLast(SubscriberQueue / 2))
            {
                channel.Writer.TryWrite(kept);
            }

            _subscribers.Add(channel);
        }

        return new Subscription(this, channel);
    }

    public int Subscribers
    {
        get
        {
            lock (_sync)
            {
                return _subscribers.Count;
            }
        }
    }

    private List<BalancerEvent> KeptAfter(long afterId)
    {
        var list = new List<BalancerEvent>();
        if (afterId >= _lastId)
        {
            return list;
        }

        for (var id = Math.Max(Math.Max(afterId, 0) + 1, _lastId - Kept + 1); id <= _lastId; id++)
        {
            if (_ring[id % Kept] is { } kept && kept.Id == id)
            {
                list.Add(kept);
            }
        }

        return list;
    }

    private void Leave(Channel<BalancerEvent> channel)
    {
        lock (_sync)
        {
            _subscribers.Remove(channel);
        }

        channel.Writer.TryComplete();
    }

    internal sealed class Subscription(EventFeed feed, Channel<BalancerEvent> channel) : IDisposable
    {
        public ChannelReader<BalancerEvent> Reader => channel.Reader;

        public void Dispose() => feed.Leave(channel);
    }

    /// <summary>Ends the stream of a subscriber that fell <see cref="SubscriberQueue"/> events behind.</summary>
    internal sealed class SlowSubscriberException() : Exception($"this subscriber fell {SubscriberQueue} events behind and was dropped; reconnect with Last-Event-ID to resume");
}
