namespace FakeBackends.Behaviors;

/// <summary>
/// One way a backend misbehaves (or behaves), as real servers and networks do: it runs for every request but
/// <c>/health</c> and <c>/ws</c>, and either acts and passes the request on (<c>proceed</c> in
/// <see cref="InvokeAsync"/>), or answers, stalls or breaks the connection itself. A backend's behaviors run in
/// order, the echo answer last. Every wait is cancellable by the client going away.
/// </summary>
public interface IBehavior
{
    /// <summary>The behavior as it is written in a scenario or given to <c>--behavior</c>, e.g. <c>fail: { status: 500, rate: 0.1 }</c>.</summary>
    string Spec { get; }

    Task InvokeAsync(BehaviorContext context, Func<Task> proceed);

    /// <summary>What <c>GET /health</c> says: every behavior must agree the backend is healthy.</summary>
    bool IsHealthy(DateTimeOffset now) => true;
}

/// <summary>A request as behaviors see it.</summary>
public sealed class BehaviorContext(HttpContext http)
{
    public HttpContext Http { get; } = http;

    /// <summary>Cancelled when the client goes away.</summary>
    public CancellationToken Aborted => Http.RequestAborted;

    /// <summary>The echo answer is padded with spaces to at least this many bytes (a body worth trickling).</summary>
    public int PadBodyTo { get; set; }
}
