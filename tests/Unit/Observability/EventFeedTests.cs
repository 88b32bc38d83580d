using Balancer.Observability;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Unit.Observability;

public sealed class EventFeedTests
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public void ASubscriber_GetsEveryEventInOrder_WithIdsAndTheClocksTime()
    {
        var feed = new EventFeed(_clock);
        using var subscription = feed.Subscribe(long.MaxValue);

        feed.Publish(EventKinds.Down, "default", "http://127.0.0.1:1", "connection refused (2 failures in a row)");
        _clock.Advance(TimeSpan.FromSeconds(3));
        feed.Publish(EventKinds.Up, "default", "http://127.0.0.1:1", "GET /health: 200");

        Assert.True(subscription.Reader.TryRead(out var first));
        Assert.True(subscription.Reader.TryRead(out var second));
        Assert.Equal((1, EventKinds.Down, "connection refused (2 failures in a row)"), (first.Id, first.Kind, first.Reason));
        Assert.Equal((2, EventKinds.Up), (second.Id, second.Kind));
        Assert.Equal(TimeSpan.FromSeconds(3), second.Time - first.Time);
    }

    [Fact]
    public void ASlowSubscriber_IsDropped_WithoutSlowingPublishers_OrTheOthers()
    {
        var feed = new EventFeed(_clock);
        var slow = feed.Subscribe(long.MaxValue);
        var fast = feed.Subscribe(long.MaxValue);
        var read = 0;

        for (var i = 0; i < EventFeed.SubscriberQueue + 10; i++)
        {
            feed.Publish(EventKinds.Registered, "default", $"http://127.0.0.1:{i + 1}", "registered");
            while (fast.Reader.TryRead(out _))
            {
                read++;
            }
        }

        Assert.Equal(EventFeed.SubscriberQueue + 10, read);
        Assert.Equal(1, feed.Subscribers);
        var queued = 0;
        while (slow.Reader.TryRead(out _))
        {
            queued++;
        }

        Assert.Equal(EventFeed.SubscriberQueue, queued); // what it had queued is still readable, then it ends, saying why
        Assert.True(slow.Reader.Completion.IsFaulted);
        Assert.IsType<EventFeed.SlowSubscriberException>(slow.Reader.Completion.Exception!.InnerException);
        slow.Dispose();
        fast.Dispose();
        Assert.Equal(0, feed.Subscribers);
    }

    [Fact]
    public void Subscribing_AfterAnId_ReplaysTheKeptEventsAfterIt_ThenTheLiveOnes()
    {
        var feed = new EventFeed(_clock);
        for (var i = 1; i <= 5; i++)
        {
            feed.Publish(EventKinds.Registered, "default", $"http://127.0.0.1:{i}", "registered");
        }

        using var resumed = feed.Subscribe(3);
        feed.Publish(EventKinds.Removed, "default", "http://127.0.0.1:1", "deregistered");

        var ids = new List<long>();
        while (resumed.Reader.TryRead(out var e))
        {
            ids.Add(e.Id);
        }

        Assert.Equal([4, 5, 6], ids);
        Assert.Equal([5, 6], feed.Since(4).Select(e => e.Id));
    }

    [Fact]
    public void TheRing_KeepsOnlyTheLastEvents()
    {
        var feed = new EventFeed(_clock);
        for (var i = 0; i < EventFeed.Kept + 5; i++)
        {
            feed.Publish(EventKinds.Updated, "default", "http://127.0.0.1:1", "weight 2");
        }

        var kept = feed.Since(0);

        Assert.Equal(EventFeed.Kept, kept.Count);
        Assert.Equal(6, kept[0].Id);
        Assert.Equal(EventFeed.Kept + 5, kept[^1].Id);
    }
}
