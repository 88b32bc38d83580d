using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Balancer.Configuration;
using Balancer.Observability;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Slow start: a backend that becomes available (joins, or recovers from a failed health check or an ejection)
/// takes a share of its traffic that grows linearly from 0 to 1 over <c>proxy.slow-start</c>, so a cold cache or a
/// JIT that has not warmed up is not hit with full load at once. Availability changes are observed where YARP
/// computes them (<see cref="AvailableDestinationsPolicy"/>). Backends are not ramped when the pool had none
/// available before (the balancer just started, or the whole pool was down): there is no one to shift their load to.
/// Nor are those that become available while the balancer starts, before it takes traffic (<paramref name="starting"/>
/// until <see cref="Serving"/>): first probes that land one by one must not leave all but the first backend of each pool
/// ramping from nothing, as if they had joined a pool already under load.
/// </summary>
internal sealed class SlowStart(TimeSpan window, TimeProvider time, EventFeed? events = null, bool starting = false)
{
    private volatile bool _starting = starting;

    private readonly ConcurrentDictionary<string, HashSet<DestinationState>> _available = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConditionalWeakTable<DestinationState, StrongBox<long>> _joined = [];
    private readonly ConditionalWeakTable<DestinationState, ITimer> _rampEnds = [];

    /// <summary>Draws before <see cref="Choose"/> gives up and keeps the algorithm's pick (all very cold).</summary>
    private const int MaxDraws = 16;

    public bool Enabled => window > TimeSpan.Zero;

    /// <summary>The balancer takes traffic from now on: backends that become available from here on ramp.</summary>
    public void Serving() => _starting = false;

    /// <summary>Notes the available set of a pool; the backends new to it start ramping now.</summary>
    public void Observe(string pool, IReadOnlyList<DestinationState> available)
    {
        if (!Enabled)
        {
            return;
        }

        var now = time.GetTimestamp();
        var current = new HashSet<DestinationState>(available, ReferenceEqualityComparer.Instance);
        if (!_starting && _available.TryGetValue(pool, out var previous) && previous.Count > 0)
        {
            foreach (var destination in current.Where(d => !previous.Contains(d)))
            {
                var joined = new StrongBox<long>(now);
                _joined.AddOrUpdate(destination, joined);
                if (events is not null)
                {
                    Announce(pool, destination, joined);
                }
            }
        }

        _available[pool] = current;
    }

    /// <summary>Tells the event feed that a ramp began, and when it ends (unless the backend left and rejoined meanwhile).</summary>
    private void Announce(string pool, DestinationState destination, StrongBox<long> joined)
    {
        var address = destination.Model.Config.Address;
        events!.Publish(EventKinds.SlowStart, pool, address, $"ramping up over {ValueParsers.FormatDuration(window)}");
        var timer = time.CreateTimer(_ =>
        {
            if (_joined.TryGetValue(destination, out var current) && ReferenceEquals(current, joined)
                && _available.TryGetValue(pool, out var available) && available.Contains(destination))
            {
                events.Publish(EventKinds.SlowStartEnd, pool, address, "full share of traffic");
            }
        }, null, window, Timeout.InfiniteTimeSpan);
        // One per backend, replaced when it ramps again.
        if (_rampEnds.TryGetValue(destination, out var previous))
        {
            previous.Dispose();
        }

        _rampEnds.AddOrUpdate(destination, timer);
    }

    /// <summary>The share of its traffic a backend takes now: 1 unless it is ramping.</summary>
    public double Share(DestinationState destination)
    {
        if (!Enabled || !_joined.TryGetValue(destination, out var joined))
        {
            return 1.0;
        }

        var elapsed = time.GetElapsedTime(joined.Value);
        return elapsed >= window ? 1.0 : elapsed / window;
    }

    /// <summary>
    /// Where a request picked for <paramref name="picked"/> goes, so that over many requests each candidate gets its
    /// traffic in proportion to its share: a pick stands with probability equal to its share, else another candidate
    /// is drawn at random and judged the same way. A warm pick always stands (and costs one table lookup); when all
    /// are ramping alike, the algorithm's choice is left as it was. Expected draws: one over the average share.
    /// </summary>
    public DestinationState Choose(DestinationState picked, IReadOnlyList<DestinationState> candidates, Random random)
    {
        var choice = picked;
        for (var draw = 0; draw < MaxDraws; draw++)
        {
            var share = Share(choice);
            if (share >= 1.0 || random.NextDouble() < share)
            {
                return choice;
            }

            choice = candidates[random.Next(candidates.Count)];
        }

        return picked;
    }
}
