using System.Globalization;
using Balancer.Configuration;

namespace Balancer.Explain;

/// <summary>
/// The last <c>observability.explain.keep</c> explained requests, by id, for <c>GET /explain/{id}</c>: a trace is
/// kept from the moment its request arrives, and the oldest is forgotten when one more would exceed the count.
/// </summary>
internal sealed class ExplainLog(BalancerOptions options)
{
    private readonly int _keep = options.Observability.Explain?.Keep ?? ExplainOptions.DefaultKeep;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, DecisionTrace> _byId = new(StringComparer.OrdinalIgnoreCase);
    private readonly Queue<DecisionTrace> _order = new();

    public int Keep => _keep;

    /// <summary>
    /// Keeps <paramref name="trace"/> under <paramref name="traceId"/>, or, when a kept request already has it (a client
    /// that sends one <c>traceparent</c> on several requests), under <c>{traceId}-2</c>, <c>-3</c>, ...; returns the id.
    /// </summary>
    public string Add(DecisionTrace trace, string traceId)
    {
        lock (_lock)
        {
            var id = traceId;
            for (var n = 2; _byId.ContainsKey(id); n++)
            {
                id = string.Create(CultureInfo.InvariantCulture, $"{traceId}-{n}");
            }

            trace.Id = id;
            _byId[id] = trace;
            _order.Enqueue(trace);
            while (_order.Count > _keep)
            {
                _byId.Remove(_order.Dequeue().Id);
            }

            return id;
        }
    }

    public DecisionTrace? Find(string id)
    {
        lock (_lock)
        {
            return _byId.GetValueOrDefault(id);
        }
    }

    /// <summary>Every trace kept, newest first.</summary>
    public IReadOnlyList<DecisionTrace> Recent()
    {
        lock (_lock)
        {
            return [.. _order.Reverse()];
        }
    }
}
