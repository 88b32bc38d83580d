using Balancer.Configuration;
using Balancer.Health;
using Balancer.Proxy;
using Balancer.Tests.Kit;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Unit.Health;

/// <summary>The outlier detector as YARP drives it, its ejection timers on a manual clock.</summary>
public sealed class OutlierDetectorTests
{
    private readonly FakeTimeProvider _clock = new();
    private readonly CountingUpdater _updater = new();
    private readonly DestinationState[] _all = Destinations.Create(4);
    private readonly ClusterState _cluster;

    public OutlierDetectorTests()
    {
        _cluster = Destinations.Cluster(_all);
        foreach (var destination in _all)
        {
            _cluster.Destinations[destination.DestinationId] = destination;
        }
    }

    [Fact]
    public void ConsecutiveFailures_Eject_ForTheBaseTime_ThenTheClockBringsItBack()
    {
        var detector = Detector(Options.Default);

        Fail(detector, _all[0], times: 4);
        Assert.Equal(DestinationHealth.Unknown, _all[0].Health.Passive);
        Fail(detector, _all[0], times: 1);

        Assert.Equal(DestinationHealth.Unhealthy, _all[0].Health.Passive);
        Assert.Equal(1, _updater.Updates);
        Assert.Equal(_clock.GetUtcNow().AddSeconds(30), OutlierDetector.StateOf(_all[0])!.EjectedUntil);
        _clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(DestinationHealth.Unhealthy, _all[0].Health.Passive);
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(DestinationHealth.Unknown, _all[0].Health.Passive);
        Assert.Equal(2, _updater.Updates);

        Fail(detector, _all[0], times: 1); // on probation: one failure is enough, and the second ejection is longer
        Assert.Equal(DestinationHealth.Unhealthy, _all[0].Health.Passive);
        Assert.Equal(_clock.GetUtcNow().AddSeconds(60), OutlierDetector.StateOf(_all[0])!.EjectedUntil);
    }

    [Fact]
    public void OnceDisposed_EjectionTimersNoLongerFire()
    {
        var detector = Detector(Options.Default);
        Fail(detector, _all[0], times: 5);

        detector.Dispose(); // the balancer stopped: its pools are gone, and so is its log
        _clock.Advance(TimeSpan.FromSeconds(60));

        Assert.Equal(DestinationHealth.Unhealthy, _all[0].Health.Passive);
        Assert.Equal(1, _updater.Updates);
    }

    [Fact]
    public void ASuccess_BreaksTheStreak()
    {
        var detector = Detector(Options.Default);

        Fail(detector, _all[0], times: 4);
        detector.RequestProxied(Answered(200), _cluster, _all[0]);
        Fail(detector, _all[0], times: 4);

        Assert.Equal(DestinationHealth.Unknown, _all[0].Health.Passive);
    }

    [Fact]
    public void NeverEjectsMoreThanMaxEjectionPercent_OfThePool()
    {
        var detector = Detector(Options.Default); // 50% of 4: two

        Fail(detector, _all[0], times: 5);
        Fail(detector, _all[1], times: 5);
        Fail(detector, _all[2], times: 20);

        Assert.Equal(DestinationHealth.Unhealthy, _all[0].Health.Passive);
        Assert.Equal(DestinationHealth.Unhealthy, _all[1].Health.Passive);
        Assert.Equal(DestinationHealth.Unknown, _all[2].Health.Passive);
    }

    [Fact]
    public void Pardon_AfterTheProbesSawARecovery_EndsAnyEjectionAtOnce()
    {
        var detector = Detector(Options.Default);
        Fail(detector, _all[0], times: 5);

        detector.Pardon(_cluster, _all[0], recovered: true);

        Assert.Equal(DestinationHealth.Unknown, _all[0].Health.Passive);
        Assert.False(OutlierDetector.StateOf(_all[0])!.Ejected);
        _clock.Advance(TimeSpan.FromMinutes(1)); // the old timer is gone: nothing fires twice
        Assert.Equal(2, _updater.Updates);
    }

    [Fact]
    public void Pardon_ByAPassingProbe_EndsAnEjectionForConnectionFailures_NotOneFor5xx()
    {
        var detector = Detector(Options.Default with { OutlierDetection = Options.Default.OutlierDetection with { MaxEjectionPercent = 100 } });
        Fail(detector, _all[0], times: 5); // 503s: a probe that passes cannot vouch for those
        for (var i = 0; i < 5; i++)
        {
            var refused = new DefaultHttpContext();
            refused.Features.Set<IForwarderErrorFeature>(new ProxyErrorFeature(ForwarderError.Request, new HttpRequestException(HttpRequestError.ConnectionError, "refused")));
            detector.RequestProxied(refused, _cluster, _all[1]);
        }

        for (var i = 0; i < 5; i++)
        {
            var reset = new DefaultHttpContext(); // the request reached it, then the connection broke: a probe cannot vouch
            reset.Features.Set<IForwarderErrorFeature>(new ProxyErrorFeature(ForwarderError.Request, new HttpRequestException("reset", new IOException("Connection reset by peer"))));
            detector.RequestProxied(reset, _cluster, _all[2]);
        }

        detector.Pardon(_cluster, _all[0], recovered: false);
        detector.Pardon(_cluster, _all[1], recovered: false);
        detector.Pardon(_cluster, _all[2], recovered: false);

        Assert.Equal(DestinationHealth.Unhealthy, _all[0].Health.Passive);
        Assert.Equal(DestinationHealth.Unknown, _all[1].Health.Passive);
        Assert.Equal(DestinationHealth.Unhealthy, _all[2].Health.Passive);
    }

    [Fact]
    public void ATryThatTimedOut_CountsAgainstTheBackend_WhileTheTryIsStillUnwinding()
    {
        // The passive check runs inside the try, before the retry step has closed it: the timeout must already show.
        var detector = Detector(Options.Default);
        for (var i = 0; i < 5; i++)
        {
            using var perTry = new CancellationTokenSource();
            var context = new DefaultHttpContext();
            var attempt = new AttemptFeature();
            attempt.StartTry(perTry, CancellationToken.None);
            context.Features.Set(attempt);
            context.Features.Set<IForwarderErrorFeature>(new ProxyErrorFeature(ForwarderError.RequestCanceled));
            perTry.Cancel();

            detector.RequestProxied(context, _cluster, _all[0]);
        }

        Assert.Equal(DestinationHealth.Unhealthy, _all[0].Health.Passive);
    }

    [Fact]
    public void Off_NothingIsEjected()
    {
        var detector = Detector(Options.Default with { OutlierDetection = Options.Default.OutlierDetection with { Enabled = false } });

        Fail(detector, _all[0], times: 50);

        Assert.Equal(DestinationHealth.Unknown, _all[0].Health.Passive);
        Assert.Equal(0, _updater.Updates);
    }

    [Fact]
    public void MaxEjectionPercent_HoldsUnderConcurrentFailures()
    {
        // Two backends, at most half ejected: both failing at once on two threads must never eject both.
        var settings = Options.Default with { OutlierDetection = Options.Default.OutlierDetection with { ConsecutiveFailures = 1, MaxEjectionPercent = 50 } };
        var bothEjected = 0;
        for (var round = 0; round < 3000; round++)
        {
            var pair = Destinations.Create(2);
            var cluster = Destinations.Cluster(pair);
            foreach (var destination in pair)
            {
                cluster.Destinations[destination.DestinationId] = destination;
            }

            var detector = new OutlierDetector(settings, _updater, _clock, NullLogger<OutlierDetector>.Instance);
            using var start = new Barrier(2);
            Parallel.For(0, 2, new ParallelOptions { MaxDegreeOfParallelism = 2 }, i =>
            {
                start.SignalAndWait();
                detector.RequestProxied(Answered(503), cluster, pair[i]);
            });

            bothEjected += pair.All(d => d.Health.Passive == DestinationHealth.Unhealthy) ? 1 : 0;
            detector.Dispose();
        }

        Assert.Equal(0, bothEjected);
    }

    [Fact]
    public void AnEjectionTimerThatFails_IsLogged_AndTheDetectorGoesOn()
    {
        var logger = new FakeLogger<OutlierDetector>();
        var detector = new OutlierDetector(Options.Default, _updater, _clock, logger);
        Fail(detector, _all[0], times: 5);
        _updater.FailNext = true;

        _clock.Advance(TimeSpan.FromSeconds(30)); // the timer fires; its update throws (on a real timer, that would end the process)

        Assert.Contains(logger.Collector.GetSnapshot(), r => r.Level == LogLevel.Error && r.Message.Contains("Ending the ejection of", StringComparison.Ordinal));
        Assert.Equal(DestinationHealth.Unknown, _all[0].Health.Passive); // back, and on probation:
        Fail(detector, _all[0], times: 1);
        Assert.Equal(DestinationHealth.Unhealthy, _all[0].Health.Passive);
    }

    private OutlierDetector Detector(BalancerOptions options) => new(options, _updater, _clock, NullLogger<OutlierDetector>.Instance);

    private void Fail(OutlierDetector detector, DestinationState destination, int times)
    {
        for (var i = 0; i < times; i++)
        {
            detector.RequestProxied(Answered(503), _cluster, destination);
        }
    }

    private static DefaultHttpContext Answered(int status)
    {
        var context = new DefaultHttpContext();
        context.Response.StatusCode = status;
        return context;
    }

    private sealed class CountingUpdater : IClusterDestinationsUpdater
    {
        public int Updates { get; private set; }

        /// <summary>The next update throws, as a bug or a race in YARP might.</summary>
        public bool FailNext { get; set; }

        public void UpdateAvailableDestinations(ClusterState cluster)
        {
            if (FailNext)
            {
                FailNext = false;
                throw new InvalidOperationException("the cluster changed meanwhile");
            }

            Updates++;
        }

        public void UpdateAllDestinations(ClusterState cluster) => Updates++;
    }
}
