namespace FakeBackends.Behaviors;

/// <summary>A behavior for requests under one path prefix only (<c>/api</c>: <c>/api</c> and <c>/api/...</c>); others pass by.</summary>
public sealed class OnPath(string prefix, IBehavior inner) : IBehavior
{
    public IBehavior Inner => inner;

    public string Spec => $"{{ {inner.Spec}, path: {prefix} }}";

    public Task InvokeAsync(BehaviorContext context, Func<Task> proceed) =>
        Covers(context.Http.Request.Path.Value ?? "/") ? inner.InvokeAsync(context, proceed) : proceed();

    public bool IsHealthy(DateTimeOffset now) => inner.IsHealthy(now);

    private bool Covers(string path) =>
        prefix == "/" || (path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && (path.Length == prefix.Length || path[prefix.Length] == '/'));
}
