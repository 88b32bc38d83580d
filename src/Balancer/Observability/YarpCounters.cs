using System.Diagnostics.Metrics;
using System.Diagnostics.Tracing;

namespace Balancer.Observability;

/// <summary>
/// YARP publishes its counters as EventCounters (its <c>Yarp.ReverseProxy</c> event source), not on a meter. This listener
/// asks for the counters only (at Critical, so none of YARP's per-request events are raised) once a second, and shows the
/// latest values as instruments of the <c>Yarp.ReverseProxy</c> meter. They count the whole process.
/// </summary>
internal sealed class YarpCounters : EventListener
{
    public const string MeterName = "Yarp.ReverseProxy";
    private const string SourceName = "Yarp.ReverseProxy";

    private long _started;
    private long _failed;
    private long _current;

    public YarpCounters(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        meter.CreateObservableCounter("yarp.proxy.requests.started", () => Interlocked.Read(ref _started), "{request}", "Requests YARP began to forward, in this process");
        meter.CreateObservableCounter("yarp.proxy.requests.failed", () => Interlocked.Read(ref _failed), "{request}", "Requests YARP failed to forward, in this process");
        meter.CreateObservableUpDownCounter("yarp.proxy.requests.current", () => Interlocked.Read(ref _current), "{request}", "Requests YARP is forwarding now, in this process");
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == SourceName)
        {
            EnableEvents(eventSource, EventLevel.Critical, EventKeywords.None, new Dictionary<string, string?> { ["EventCounterIntervalSec"] = "1" });
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventName != "EventCounters" || eventData.Payload is not [IDictionary<string, object?> counter, ..])
        {
            return;
        }

        if (counter.TryGetValue("Name", out var name) && counter.TryGetValue("Mean", out var mean) && mean is double value)
        {
            switch (name as string)
            {
                case "requests-started":
                    Interlocked.Exchange(ref _started, (long)value);
                    break;
                case "requests-failed":
                    Interlocked.Exchange(ref _failed, (long)value);
                    break;
                case "current-requests":
                    Interlocked.Exchange(ref _current, (long)value);
                    break;
            }
        }
    }
}
