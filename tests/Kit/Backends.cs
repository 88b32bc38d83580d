using FakeBackends;

namespace Balancer.Tests.Kit;

/// <summary>Several fake backends on free loopback ports, named b1, b2, ...; disposed together.</summary>
public sealed class Backends : IAsyncDisposable
{
    private Backends(IReadOnlyList<FakeBackend> all) => All = all;

    public IReadOnlyList<FakeBackend> All { get; }

    public FakeBackend this[int index] => All[index];

    public static async Task<Backends> StartAsync(int count, Func<int, FakeBackendOptions, FakeBackendOptions>? configure = null)
    {
        var started = new List<FakeBackend>();
        for (var i = 0; i < count; i++)
        {
            var options = new FakeBackendOptions { Name = $"b{i + 1}" };
            started.Add(await FakeBackend.StartAsync(configure?.Invoke(i, options) ?? options));
        }

        return new Backends(started);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var backend in All)
        {
            await backend.DisposeAsync();
        }
    }
}
