using System.Net;
using FakeBackends;

namespace Testbed.Scenarios;

/// <summary>The fake backends of a run, by name: started, told about the balancer, and driven by the timeline.</summary>
internal sealed class ScenarioBackends(IReadOnlyList<BackendSpec> specs) : IAsyncDisposable
{
    private readonly Dictionary<string, FakeBackend> _running = new(StringComparer.Ordinal);
    private readonly Dictionary<string, BackendSpec> _specs = specs.ToDictionary(s => s.Name, StringComparer.Ordinal);
    private IPEndPoint? _controlPlane;

    public int Count => _specs.Count;

    /// <summary>Starts the backends marked to run from the beginning, without registering: there is no balancer yet.</summary>
    public async Task StartInitialAsync(CancellationToken cancellationToken)
    {
        await Task.WhenAll(specs.Where(s => s.Start).Select(async spec =>
        {
            var backend = await FakeBackend.StartAsync(Options(spec, controlPlane: null), cancellationToken: cancellationToken).ConfigureAwait(false);
            lock (_running)
            {
                _running[spec.Name] = backend;
            }
        })).ConfigureAwait(false);
    }

    /// <summary>Every started backend's address, for the balancer's config.</summary>
    public IReadOnlyDictionary<string, string> Addresses() => _running.ToDictionary(p => p.Key, p => Address(p.Key), StringComparer.Ordinal);

    /// <summary>Every backend started during the run (running or not now), with the address it had.</summary>
    public IReadOnlyDictionary<string, string> AddressesEverStarted() => _running.ToDictionary(p => p.Key, p => p.Value.Origin, StringComparer.Ordinal);

    public string Address(string name) => Get(name).Origin;

    public FakeBackend Get(string name) =>
        _running.TryGetValue(name, out var backend) ? backend : throw new InvalidOperationException($"{name} has not been started (start: false, and no start event before this one)");

    /// <summary>Now that the balancer listens: the backends learn where its control plane is, and those that register do.</summary>
    public async Task ConnectAsync(IPEndPoint controlPlane, CancellationToken cancellationToken)
    {
        _controlPlane = controlPlane;
        foreach (var backend in _running.Values)
        {
            backend.Configure(o => o with { Register = controlPlane });
        }

        await Task.WhenAll(_running.Where(p => _specs[p.Key].Register == Registration.ControlPlane).Select(p => RegisterAsync(p.Value, cancellationToken))).ConfigureAwait(false);
    }

    public async Task ApplyAsync(string name, BackendAction action, CancellationToken cancellationToken)
    {
        if (action == BackendAction.Start)
        {
            if (_running.ContainsKey(name))
            {
                throw new InvalidOperationException($"{name} is already started; use restart to bring back a stopped or killed backend");
            }

            var backend = await FakeBackend.StartAsync(Options(_specs[name], _controlPlane), cancellationToken: cancellationToken).ConfigureAwait(false);
            lock (_running)
            {
                _running[name] = backend;
            }

            return;
        }

        var target = Get(name);
        switch (action)
        {
            case BackendAction.Kill:
                await target.KillAsync().ConfigureAwait(false);
                break;
            case BackendAction.Refuse:
                await target.RefuseAsync().ConfigureAwait(false);
                break;
            case BackendAction.Restart:
                await target.RestartAsync(cancellationToken).ConfigureAwait(false);
                break;
            case BackendAction.Stop:
                await target.StopAsync().ConfigureAwait(false);
                break;
            case BackendAction.Register:
                await RegisterAsync(target, cancellationToken).ConfigureAwait(false);
                break;
            case BackendAction.Deregister:
                var answer = await target.DeregisterAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
                if (!answer.Succeeded)
                {
                    throw new InvalidOperationException($"the balancer refused to remove {name}: {answer.Message}");
                }

                break;
            default:
                throw new InvalidOperationException($"{action} is not a backend lifecycle action");
        }
    }

    private static async Task RegisterAsync(FakeBackend backend, CancellationToken cancellationToken)
    {
        var answer = await backend.RegisterAsync(cancellationToken).ConfigureAwait(false);
        if (!answer.Succeeded)
        {
            throw new InvalidOperationException($"the balancer refused to register {backend.Name}: {answer.Message}");
        }
    }

    private static FakeBackendOptions Options(BackendSpec spec, IPEndPoint? controlPlane) => new()
    {
        Name = spec.Name,
        Behaviors = spec.Behaviors,
        Register = controlPlane,
        RegisterOnStart = spec.Register == Registration.ControlPlane,
        Paths = spec.Paths,
        Clients = spec.Clients,
        Weight = spec.Weight,
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var backend in _running.Values)
        {
            await backend.KillAsync().ConfigureAwait(false); // the balancer is gone by now: nothing to leave gracefully
            await backend.DisposeAsync().ConfigureAwait(false);
        }
    }
}
