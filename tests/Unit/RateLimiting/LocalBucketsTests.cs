using System.Net;
using Balancer.RateLimiting;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Unit.RateLimiting;

public sealed class LocalBucketsTests
{
    private static readonly BucketKey Alice = BucketKey.ForAddress(IPAddress.Parse("192.0.2.1"));
    private static readonly BucketKey Bob = BucketKey.ForAddress(IPAddress.Parse("192.0.2.2"));

    private readonly FakeTimeProvider _time = new();

    private static int TakeAll(LocalBuckets buckets, BucketKey key)
    {
        var taken = 0;
        while (buckets.Take(key).Allowed)
        {
            taken++;
        }

        return taken;
    }

    [Fact]
    public void AFreshClient_HasItsBurst_ThenOneRequestPerInterval()
    {
        using var buckets = new LocalBuckets(TimeSpan.FromMilliseconds(100), burst: 5, maxClients: 10, _time);

        Assert.Equal(5, TakeAll(buckets, Alice));
        Assert.Equal(5, TakeAll(buckets, Bob)); // a bucket each

        _time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.False(buckets.Take(Alice).Allowed);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(buckets.Take(Alice).Allowed);
        Assert.False(buckets.Take(Alice).Allowed);

        _time.Advance(TimeSpan.FromMilliseconds(250));
        Assert.Equal(2, TakeAll(buckets, Alice)); // two whole intervals; the half is kept for the next
        _time.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(1, TakeAll(buckets, Alice));
    }

    [Fact]
    public void AClientIdleForLong_GetsItsBurstOnce_NotTheTimeItSatFull()
    {
        using var buckets = new LocalBuckets(TimeSpan.FromSeconds(1), burst: 3, maxClients: 10, _time);
        Assert.Equal(3, TakeAll(buckets, Alice));

        _time.Advance(TimeSpan.FromHours(1));

        Assert.Equal(3, TakeAll(buckets, Alice));
        _time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Equal(0, TakeAll(buckets, Alice)); // not a second burst from the hour it sat full
    }

    [Fact]
    public void ARefusal_SaysHowLongUntilTheNextToken_AndHowManyAreLeftAfterAnAllowedOne()
    {
        using var buckets = new LocalBuckets(TimeSpan.FromMilliseconds(600), burst: 3, maxClients: 10, _time);

        Assert.Equal(2, buckets.Take(Alice).Remaining);
        Assert.Equal(1, buckets.Take(Alice).Remaining);
        Assert.Equal(0, buckets.Take(Alice).Remaining);
        _time.Advance(TimeSpan.FromMilliseconds(200));

        var refused = buckets.Take(Alice);

        Assert.False(refused.Allowed);
        Assert.Equal(TimeSpan.FromMilliseconds(400), TimeSpan.FromTicks(refused.RetryAfter));
        _time.Advance(TimeSpan.FromMilliseconds(400));
        Assert.True(buckets.Take(Alice).Allowed);
    }

    [Fact]
    public void FullBuckets_AreSweptAway_SoMemoryFollowsTheClientsBeingLimited()
    {
        using var buckets = new LocalBuckets(TimeSpan.FromSeconds(1), burst: 2, maxClients: 1000, _time);
        for (var i = 0; i < 500; i++)
        {
            buckets.Take(BucketKey.ForAddress(new IPAddress([10, 0, (byte)(i / 256), (byte)i])));
        }

        buckets.Take(Alice);
        buckets.Take(Alice);
        Assert.Equal(501, buckets.Count);

        _time.Advance(TimeSpan.FromSeconds(1)); // the one-token clients are full again; Alice still owes a second
        Assert.Equal(500, buckets.Sweep());
        Assert.Equal(1, buckets.Count);

        _time.Advance(LocalBuckets.SweepEvery); // and the timer sweeps by itself
        Assert.Equal(0, buckets.Count);
    }

    [Fact]
    public void AtItsCap_ANewClientIsRefused_UntilABucketFillsAgain_KnownClientsAreNot()
    {
        using var buckets = new LocalBuckets(TimeSpan.FromSeconds(10), burst: 2, maxClients: 2, _time);
        Assert.True(buckets.Take(Alice).Allowed);
        Assert.True(buckets.Take(Bob).Allowed);
        var carol = BucketKey.ForValue("carol");

        Assert.False(buckets.Take(carol).Allowed);
        Assert.True(buckets.Take(Alice).Allowed);
        Assert.Equal(2, buckets.Count);

        _time.Advance(TimeSpan.FromSeconds(10)); // Bob's bucket is full again: swept to make room
        Assert.True(buckets.Take(carol).Allowed);
        Assert.Equal(2, buckets.Count);
    }

    [Theory]
    [InlineData("192.0.2.1", "192.0.2.1", true)]
    [InlineData("192.0.2.1", "::ffff:192.0.2.1", true)] // one client however it is written
    [InlineData("192.0.2.1", "192.0.2.2", false)]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true)] // one /64, one bucket
    [InlineData("2001:db8:1:2::1", "2001:db8:1:3::1", false)]
    [InlineData("::c000:201", "192.0.2.1", false)] // an IPv6 address whose low bits look like an IPv4 one is not it
    public void Keys_AreByIPv4Address_OrIPv6Slash64(string a, string b, bool same)
    {
        Assert.Equal(same, BucketKey.ForAddress(IPAddress.Parse(a)) == BucketKey.ForAddress(IPAddress.Parse(b)));
    }

    [Theory]
    [InlineData("192.0.2.1", "a:192.0.2.1")]
    [InlineData("::ffff:192.0.2.1", "a:192.0.2.1")]
    [InlineData("2001:db8:1:2:3:4:5:6", "a:2001:db8:1:2::/64")]
    public void Keys_AreNamedForRedis(string address, string name)
    {
        Assert.Equal(name, BucketKey.ForAddress(IPAddress.Parse(address)).ToString());
        Assert.Equal("h:key-1", BucketKey.ForValue("key-1").ToString());
    }
}
