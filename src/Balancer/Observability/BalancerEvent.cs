namespace Balancer.Observability;

/// <summary>
/// Something the balancer decided about a backend, as <c>GET /events</c> sends it.
/// </summary>
/// <param name="Id">Increasing from 1 in this process; SSE's event id, so a client can resume with Last-Event-ID.</param>
/// <param name="Kind">One of <see cref="EventKinds"/>.</param>
/// <param name="Reason">Why, in words: the probe that failed, the failures that ejected it, who asked for the change.</param>
internal sealed record BalancerEvent(long Id, DateTimeOffset Time, string Kind, string Pool, string Backend, string Reason);

/// <summary>The kinds of <see cref="BalancerEvent"/>.</summary>
internal static class EventKinds
{
    public const string Up = "up";
    public const string Down = "down";
    public const string Ejected = "ejected";
    public const string Returned = "returned";
    public const string SlowStart = "slow-start";
    public const string SlowStartEnd = "slow-start-end";
    public const string DrainStart = "drain-start";
    public const string DrainEnd = "drain-end";
    public const string Registered = "registered";
    public const string Updated = "updated";
    public const string Removed = "removed";
    public const string RedisUp = "redis-up";
    public const string RedisDown = "redis-down";

    private static readonly HashSet<string> All = [Up, Down, Ejected, Returned, SlowStart, SlowStartEnd, DrainStart, DrainEnd, Registered, Updated, Removed, RedisUp, RedisDown];

    /// <summary>Whether an SSE event name is one of these (not the stream's <c>hello</c> or <c>dropped</c>).</summary>
    public static bool Known(string name) => All.Contains(name);
}
