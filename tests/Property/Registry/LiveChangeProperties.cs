using System.Net;
using System.Net.Http.Json;
using Balancer.ControlPlane;
using Balancer.Tests.Kit;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using static Balancer.Tests.Kit.Registrations;

namespace Balancer.Tests.Properties.Registry;

/// <summary>
/// Any sequence of changes, through the control plane and the REST API, each followed at once by requests from several
/// clients to several paths: every answer (success or refusal) and every request's outcome (which backends may serve it,
/// or 403, or 503) is what a model of the documented rules says. A real balancer, real backends, real sockets.
/// </summary>
public sealed class LiveChangeProperties(LiveChangeProperties.Fixture fixture) : IClassFixture<LiveChangeProperties.Fixture>
{
    private static readonly string[] PathChoices = ["/a", "/a/b", "/A", "/b"];
    private static readonly string[] ClientChoices = ["127.0.0.2", "127.0.0.3/32", "127.0.0.0/30"];
    private static readonly string[] RequestPaths = ["/", "/a", "/a/b/c", "/b", "/bx"];
    private static readonly IPAddress[] Clients = [IPAddress.Parse("127.0.0.2"), IPAddress.Parse("127.0.0.3"), IPAddress.Parse("127.0.0.5")];

    private static readonly Gen<Change> Changes =
        from kind in Gen.Elements(Enum.GetValues<Kind>())
        from backend in Gen.Choose(0, Fixture.BackendCount - 1)
        from paths in Gen.SubListOf(PathChoices)
        from clients in Gen.SubListOf(ClientChoices)
        from weight in Gen.OneOf(Gen.Constant<int?>(null), Gen.Choose(0, 3).Select(w => (int?)w))
        from givePaths in Gen.Elements(true, false)
        from giveClients in Gen.Elements(true, false)
        select new Change(kind, backend, [.. paths], [.. clients], weight, givePaths, giveClients);

    public static Arbitrary<Change[]> Sequences() => Gen.ListOf(Changes).Select(l => l.Take(8).ToArray()).ToArbitrary();

    [Property(MaxTest = 25, Arbitrary = [typeof(LiveChangeProperties)])]
    public bool EveryAnswer_AndTheVeryNextRequests_MatchTheModel(Change[] changes) =>
        RunAsync(changes).GetAwaiter().GetResult();

    private async Task<bool> RunAsync(Change[] changes)
    {
        await fixture.ResetAsync();
        var model = new Dictionary<int, ModelBackend>();
        foreach (var change in changes)
        {
            var (succeeded, message) = await fixture.ApplyAsync(change);
            var expected = Apply(model, change);
            if (succeeded != expected)
            {
                throw new InvalidOperationException($"{change}: answered {(succeeded ? "success" : "failure")} ({message}); the model says {(expected ? "success" : "failure")}");
            }

            if (change.Kind == Kind.Drain && succeeded)
            {
                await fixture.WaitGoneAsync(change.Backend); // drained and idle: removed
            }

            foreach (var client in Clients)
            {
                foreach (var path in RequestPaths)
                {
                    var (status, server) = await fixture.Balancer.GetFromAsync(client, path);
                    var (want, allowed) = Expect(model, client, path);
                    var ok = status == want && (status != HttpStatusCode.OK || (server is not null && allowed.Contains(server)));
                    if (!ok)
                    {
                        throw new InvalidOperationException(
                            $"after {change}: GET {path} from {client} gave {(int)status} {server}; the model says {(int)want} from [{string.Join(", ", allowed)}]");
                    }
                }
            }
        }

        return true;
    }

    /// <summary>The model of one change: whether it succeeds, and the state after it.</summary>
    private static bool Apply(Dictionary<int, ModelBackend> model, Change change)
    {
        model.TryGetValue(change.Backend, out var backend);
        switch (change.Kind)
        {
            case Kind.ControlAdd:
                backend ??= model[change.Backend] = new ModelBackend();
                backend.AddPaths(change.Paths);
                backend.Clients.UnionWith(change.Clients.Select(Network));
                backend.Weight = change.Weight ?? backend.Weight;
                return true;
            case Kind.ControlRemove when backend is null:
                return false;
            case Kind.ControlRemove when change.Paths.Length == 0 && change.Clients.Length == 0:
                model.Remove(change.Backend);
                return true;
            case Kind.ControlRemove:
                backend.Paths.RemoveAll(p => change.Paths.Contains(p, StringComparer.OrdinalIgnoreCase));
                backend.Clients.ExceptWith(change.Clients.Select(Network));
                return true;
            case Kind.RestCreate when backend is not null:
                return false;
            case Kind.RestCreate:
                backend = model[change.Backend] = new ModelBackend { Weight = change.Weight ?? 1 };
                backend.AddPaths(change.Paths);
                backend.Clients.UnionWith(change.Clients.Select(Network));
                return true;
            case Kind.RestUpdate when backend is null || (change.Weight is null && !change.GivePaths && !change.GiveClients):
                return false;
            case Kind.RestUpdate:
                backend.Weight = change.Weight ?? backend.Weight;
                if (change.GivePaths)
                {
                    backend.Paths.Clear();
                    backend.AddPaths(change.Paths);
                }

                if (change.GiveClients)
                {
                    backend.Clients = [.. change.Clients.Select(Network)];
                }

                return true;
            default: // RestDelete, Drain
                return model.Remove(change.Backend);
        }
    }

    /// <summary>What a request from <paramref name="client"/> for <paramref name="path"/> gets, by the documented rules.</summary>
    private static (HttpStatusCode Status, IReadOnlyList<string> Servers) Expect(Dictionary<int, ModelBackend> model, IPAddress client, string path)
    {
        // 1. The backends claiming the longest registered prefix of the path (segment boundaries, any case), else those claiming none.
        var claims = model.SelectMany(b => b.Value.Paths.Select(p => (Backend: b.Key, Path: p)))
            .Where(c => Covers(c.Path, path)).ToList();
        var group = claims.Count == 0
            ? [.. model.Where(b => b.Value.Paths.Count == 0).Select(b => b.Key)]
            : claims.Where(c => c.Path.Length == claims.Max(x => x.Path.Length)).Select(c => c.Backend).Distinct().ToList();
        if (group.Count == 0)
        {
            return (HttpStatusCode.ServiceUnavailable, []);
        }

        // 2. Of those, the ones open to every client or to this one.
        var admitted = group.Where(b => model[b].Clients.Count == 0 || model[b].Clients.Any(n => n.Contains(client))).ToList();
        if (admitted.Count == 0)
        {
            return (HttpStatusCode.Forbidden, []);
        }

        // 3. Of those, the ones that take traffic.
        var available = admitted.Where(b => model[b].Weight > 0).Select(b => $"b{b + 1}").ToList();
        return available.Count == 0 ? (HttpStatusCode.ServiceUnavailable, []) : (HttpStatusCode.OK, available);
    }

    private static bool Covers(string prefix, string path) =>
        path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && (path.Length == prefix.Length || path[prefix.Length] == '/');

    public enum Kind
    {
        ControlAdd,
        ControlRemove,
        RestCreate,
        RestUpdate,
        RestDelete,
        Drain,
    }

    public sealed record Change(Kind Kind, int Backend, string[] Paths, string[] Clients, int? Weight, bool GivePaths, bool GiveClients)
    {
        public override string ToString() =>
            $"{Kind} b{Backend + 1} paths [{string.Join(' ', Paths)}]{(GivePaths ? "" : "?")} clients [{string.Join(' ', Clients)}]{(GiveClients ? "" : "?")} weight {Weight?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}";
    }

    private sealed class ModelBackend
    {
        public List<string> Paths { get; } = [];
        public HashSet<IPNetwork> Clients { get; set; } = [];
        public int Weight { get; set; } = 1;

        public void AddPaths(IEnumerable<string> paths)
        {
            foreach (var path in paths.Where(p => !Paths.Contains(p, StringComparer.OrdinalIgnoreCase)))
            {
                Paths.Add(path);
            }
        }
    }

    /// <summary>One balancer and its backends for the whole class; each sequence starts from no registrations.</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        public const int BackendCount = 3;

        private Backends _backends = null!;
        private ControlPlaneClient _control = null!;

        public TestBalancer Balancer { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            _backends = await Backends.StartAsync(BackendCount);
            Balancer = await TestBalancer.StartAsync("");
            _control = await Balancer.ConnectControlPlaneAsync();
        }

        public async Task DisposeAsync()
        {
            await _control.DisposeAsync();
            await Balancer.DisposeAsync();
            await _backends.DisposeAsync();
        }

        private string HostPort(int backend) => $"127.0.0.1:{_backends[backend].Port}";

        public async Task ResetAsync()
        {
            for (var i = 0; i < BackendCount; i++)
            {
                using var _ = await Balancer.Admin.DeleteAsync(new Uri($"/backends/{HostPort(i)}", UriKind.Relative));
            }
        }

        public async Task<(bool Succeeded, string Message)> ApplyAsync(Change change)
        {
            var port = _backends[change.Backend].Port;
            switch (change.Kind)
            {
                case Kind.ControlAdd:
                    var added = await _control.SendAsync(Add(port, change.Paths, change.Clients, change.Weight));
                    return (added.Succeeded, added.Message);
                case Kind.ControlRemove:
                    var removed = await _control.SendAsync(Remove(port, change.Paths, change.Clients));
                    return (removed.Succeeded, removed.Message);
                case Kind.RestCreate:
                    return await Answer(await Balancer.Admin.PostAsJsonAsync("/backends", new { address = HostPort(change.Backend), weight = change.Weight ?? 1, paths = change.Paths, clients = change.Clients }));
                case Kind.RestUpdate:
                    var body = new Dictionary<string, object>();
                    if (change.Weight is { } weight)
                    {
                        body["weight"] = weight;
                    }

                    if (change.GivePaths)
                    {
                        body["paths"] = change.Paths;
                    }

                    if (change.GiveClients)
                    {
                        body["clients"] = change.Clients;
                    }

                    return await Answer(await Balancer.Admin.PutAsJsonAsync($"/backends/{HostPort(change.Backend)}", body));
                case Kind.RestDelete:
                    return await Answer(await Balancer.Admin.DeleteAsync(new Uri($"/backends/{HostPort(change.Backend)}", UriKind.Relative)));
                default:
                    return await Answer(await Balancer.Admin.PostAsync(new Uri($"/backends/{HostPort(change.Backend)}/drain", UriKind.Relative), null));
            }
        }

        public Task WaitGoneAsync(int backend) =>
            Eventually.TrueAsync(
                async () =>
                {
                    using var response = await Balancer.Admin.GetAsync(new Uri($"/backends/{HostPort(backend)}", UriKind.Relative));
                    return response.StatusCode == HttpStatusCode.NotFound;
                },
                $"drained b{backend + 1} is removed");

        private static async Task<(bool, string)> Answer(HttpResponseMessage response)
        {
            using (response)
            {
                return (response.IsSuccessStatusCode, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }
        }
    }
}
