namespace Testbed.Scenarios;

/// <summary>
/// A time a backend was down (killed, refusing or stopped by the timeline, or in a down period of its own behavior),
/// and when the balancer noticed and readmitted it, read from the balancer's events.
/// </summary>
/// <param name="Down">When it went down, on the run's clock.</param>
/// <param name="Up">When it came back, if it did during the run.</param>
/// <param name="Cause">What took it down: <c>kill b2</c>, <c>flap</c>.</param>
/// <param name="Detected">When the balancer took it out of rotation (a down or ejected event), if it did while it was down.</param>
/// <param name="DetectedBy">The event that did: <c>b2 down (connection refused (2 failures in a row))</c>.</param>
/// <param name="Readmitted">When the balancer let it take traffic again (healthy and not ejected), if it did before its next outage.</param>
public sealed record Outage(
    string Backend, TimeSpan Down, TimeSpan? Up, string Cause, TimeSpan? Detected, string? DetectedBy, TimeSpan? Readmitted)
{
    public TimeSpan? DetectionDelay => Detected - Down;

    /// <summary>How long the run watched it down: to its end, or to the end of the run if that came first.</summary>
    public TimeSpan Watched { get; init; }

    public TimeSpan? RecoveryDelay => Readmitted - Up;

    /// <summary>
    /// The outages of a run, each judged against the balancer's events: detection is the first moment after it went
    /// down that the balancer held it down or ejected (at once if it already did); readmission the first moment after
    /// it came back that the balancer held it neither down nor ejected, before it went down again.
    /// </summary>
    public static IReadOnlyList<Outage> Judge(IReadOnlyList<(string Backend, TimeSpan Down, TimeSpan? Up, string Cause)> periods, IReadOnlyList<BalancerSideEvent> events, TimeSpan end)
    {
        var judged = new List<Outage>();
        foreach (var byBackend in periods.GroupBy(p => p.Backend))
        {
            var ordered = byBackend.OrderBy(p => p.Down).ToList();
            var own = events.Where(e => e.Backend == byBackend.Key).OrderBy(e => e.At).ToList();
            for (var i = 0; i < ordered.Count; i++)
            {
                var (backend, down, up, cause) = ordered[i];
                var next = i + 1 < ordered.Count ? ordered[i + 1].Down : end;
                var (outBefore, _) = StateAt(own, down);
                TimeSpan? detected = outBefore ? down : null;
                string? detectedBy = outBefore ? "already out of rotation" : null;
                if (!outBefore && own.FirstOrDefault(e => e.At >= down && e.At < (up ?? end) && e.Kind is "down" or "ejected" or "drain-start" or "removed") is { } taken)
                {
                    (detected, detectedBy) = (taken.At, taken.Describe());
                }

                TimeSpan? readmitted = null;
                if (up is { } back && detected is not null)
                {
                    var (outAtUp, _) = StateAt(own, back);
                    readmitted = !outAtUp ? back : own.Where(e => e.At >= back && e.At < next && e.Kind is "up" or "returned" or "registered").Select(e => (TimeSpan?)e.At)
                        .FirstOrDefault(at => !StateAt(own, at!.Value, inclusive: true).Out);
                }

                judged.Add(new Outage(backend, down, up, cause, detected, detectedBy, readmitted) { Watched = (up is { } u && u < end ? u : end) - down });
            }
        }

        return [.. judged.OrderBy(o => o.Down).ThenBy(o => o.Backend, StringComparer.Ordinal)];
    }

    /// <summary>
    /// Whether the balancer held the backend out of rotation at <paramref name="at"/>: down by its probes, ejected, or
    /// draining or removed (a stop deregisters first). A registration brings it back; with active checks its first
    /// probe follows within moments, and a failed one is a <c>down</c> of its own.
    /// </summary>
    private static (bool Out, bool Ejected) StateAt(List<BalancerSideEvent> events, TimeSpan at, bool inclusive = false)
    {
        bool down = false, ejected = false, gone = false;
        foreach (var e in events.TakeWhile(e => inclusive ? e.At <= at : e.At < at))
        {
            switch (e.Kind)
            {
                case "down": down = true; break;
                case "up": down = false; break;
                case "ejected": ejected = true; break;
                case "returned": ejected = false; break;
                case "drain-start" or "removed": gone = true; break;
                case "registered": (gone, down, ejected) = (false, false, false); break;
            }
        }

        return (down || ejected || gone, ejected);
    }
}
