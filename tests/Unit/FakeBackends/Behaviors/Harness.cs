using FakeBackends.Behaviors;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Balancer.Tests.Unit.FakeBackends.Behaviors;

/// <summary>A request for a behavior to act on, without a server: what it did is recorded.</summary>
internal sealed class Harness
{
    private readonly Lifetime _lifetime = new();
    private readonly Completion _completion;
    private readonly ConnectionItems _connection = new();
    private readonly Closing _closing = new();

    public Harness(string path = "/")
    {
        Http = new DefaultHttpContext();
        Http.Request.Path = path;
        Http.Response.Body = Body;
        _completion = new Completion(Http.Features.Get<IHttpResponseFeature>()!);
        Http.Features.Set<IHttpRequestLifetimeFeature>(_lifetime);
        Http.Features.Set<IHttpResponseFeature>(_completion);
        Http.Features.Set<IConnectionItemsFeature>(_connection);
        Http.Features.Set<IConnectionLifetimeNotificationFeature>(_closing);
        Context = new BehaviorContext(Http);
    }

    public DefaultHttpContext Http { get; }

    public BehaviorContext Context { get; }

    public MemoryStream Body { get; } = new();

    /// <summary>Whether the behavior let the request through to the answer.</summary>
    public bool Proceeded { get; private set; }

    public bool Aborted => _lifetime.AbortCount > 0;

    /// <summary>Whether the behavior asked for the connection to be closed once this exchange is over.</summary>
    public bool CloseRequested => _closing.Requested;

    /// <summary>The same connection's next request, as the behavior sees it.</summary>
    public Harness Next()
    {
        var next = new Harness(Http.Request.Path);
        foreach (var (key, value) in _connection.Items)
        {
            next._connection.Items[key] = value;
        }

        return next;
    }

    public Task RunAsync(IBehavior behavior) => behavior.InvokeAsync(Context, () =>
    {
        Proceeded = true;
        return Task.CompletedTask;
    });

    /// <summary>The client goes away.</summary>
    public void ClientLeaves() => _lifetime.Cancel();

    /// <summary>The response has gone out: runs what was registered for that moment.</summary>
    public Task CompleteAsync() => _completion.FireAsync();

    private sealed class Lifetime : IHttpRequestLifetimeFeature
    {
        private readonly CancellationTokenSource _aborted = new();

        public int AbortCount { get; private set; }

        public CancellationToken RequestAborted { get => _aborted.Token; set => throw new NotSupportedException(); }

        public void Abort()
        {
            AbortCount++;
            _aborted.Cancel();
        }

        public void Cancel() => _aborted.Cancel();
    }

    private sealed class Completion(IHttpResponseFeature inner) : IHttpResponseFeature
    {
        private readonly List<(Func<object, Task> Callback, object State)> _completed = [];

        public int StatusCode { get => inner.StatusCode; set => inner.StatusCode = value; }

        public string? ReasonPhrase { get => inner.ReasonPhrase; set => inner.ReasonPhrase = value; }

        public IHeaderDictionary Headers { get => inner.Headers; set => inner.Headers = value; }

        [Obsolete("Use IHttpResponseBodyFeature.Stream instead.")]
        public Stream Body { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public bool HasStarted => inner.HasStarted;

        public void OnStarting(Func<object, Task> callback, object state) => inner.OnStarting(callback, state);

        public void OnCompleted(Func<object, Task> callback, object state) => _completed.Add((callback, state));

        public async Task FireAsync()
        {
            foreach (var (callback, state) in _completed)
            {
                await callback(state);
            }
        }
    }

    private sealed class ConnectionItems : IConnectionItemsFeature
    {
        public IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();
    }

    private sealed class Closing : IConnectionLifetimeNotificationFeature
    {
        public bool Requested { get; private set; }

        public CancellationToken ConnectionClosedRequested { get; set; }

        public void RequestClose() => Requested = true;
    }
}
