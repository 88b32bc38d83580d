using System.Diagnostics.Metrics;

namespace Balancer.Observability;

/// <summary>
/// The state of every backend as gauges on the <c>Balancer</c> meter, read when metrics are collected (one read of
/// <see cref="BackendStates"/> serves every gauge of one scrape), so keeping them costs the request path nothing.
/// </summary>
internal sealed class BackendGauges
{
    private static readonly string[] HealthStates = ["healthy", "unhealthy", "unknown"];
    private static readonly TimeSpan Fresh = TimeSpan.FromMilliseconds(500);

    private readonly BackendStates _states;
    private readonly TimeProvider _time;
    private readonly Lock _sync = new();
    private List<BackendView> _read = [];
    private long _readAt = long.MinValue;

    public BackendGauges(BalancerMetrics metrics, BackendStates states, AccessLog accessLog, TimeProvider time)
    {
        _states = states;
        _time = time;
        var meter = metrics.Meter;
        meter.CreateObservableGauge("balancer.backend.in_flight", () => Each(b => b.ActiveConnections), "{request}", "Requests in flight to the backend");
        meter.CreateObservableGauge("balancer.backend.health", Health, "1", "Active health: 1 for the state the backend is in (healthy, unhealthy, unknown), 0 for the others");
        meter.CreateObservableGauge("balancer.backend.ejected", () => Each(b => b.Ejected ? 1 : 0), "1", "1 while outlier detection has the backend ejected");
        meter.CreateObservableGauge("balancer.backend.draining", () => Each(b => b.Draining ? 1 : 0), "1", "1 while the backend drains (no new requests; removed once idle)");
        meter.CreateObservableGauge("balancer.backend.weight", () => Each(b => b.Weight), "1", "The backend's configured or registered weight");
        meter.CreateObservableGauge("balancer.backend.effective_weight", () => EachDouble(b => b.EffectiveWeight), "1", "The weight the backend takes traffic with now (below its weight while slow start ramps it)");
        meter.CreateObservableCounter("balancer.access_log.dropped", () => accessLog.Dropped, "{entry}", "Access-log entries dropped because the writer fell behind or could not write");
    }

    private List<BackendView> Read()
    {
        lock (_sync)
        {
            if (_time.GetElapsedTime(_readAt) > Fresh || _readAt == long.MinValue)
            {
                _read = [.. _states.All()];
                _readAt = _time.GetTimestamp();
            }

            return _read;
        }
    }

    private IEnumerable<Measurement<int>> Each(Func<BackendView, int> value) =>
        Read().Select(b => new Measurement<int>(value(b), new("pool", b.Pool), new("backend", b.Address)));

    private IEnumerable<Measurement<double>> EachDouble(Func<BackendView, double> value) =>
        Read().Select(b => new Measurement<double>(value(b), new("pool", b.Pool), new("backend", b.Address)));

    private IEnumerable<Measurement<int>> Health() =>
        Read().SelectMany(b => HealthStates.Select(state => new Measurement<int>(b.Health == state ? 1 : 0, new("pool", b.Pool), new("backend", b.Address), new("state", state))));
}
