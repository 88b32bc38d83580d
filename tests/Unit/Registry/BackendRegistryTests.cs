using System.Net;
using Balancer.Configuration;
using Balancer.Networking;
using Balancer.Registry;
using Balancer.Tests.Kit;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Balancer.Tests.Unit.Registry;

public sealed class BackendRegistryTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-registry-").FullName;
    private readonly RecordingPublisher _publisher = new();
    private BackendRegistry _registry = null!;

    private string DbPath => Path.Combine(_dir, "data", "balancer.db");

    private BalancerOptions Options(string yaml = "")
    {
        File.WriteAllText(Path.Combine(_dir, "config.yaml"), yaml);
        return ConfigLoader.Load(Path.Combine(_dir, "config.yaml"), [], new Dictionary<string, string>()).Options!;
    }

    private BackendRegistry Open(BalancerOptions options) =>
        new(options, SqliteRegistrationStore.Open(options.DbPath), _publisher, NullLogger<BackendRegistry>.Instance);

    public Task InitializeAsync()
    {
        _registry = Open(Options("""
            backends: [ { address: "http://127.0.0.1:3001" } ]
            pools: [ { name: api, paths: [/api] } ]
            """));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _registry.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private static RegistryChange.Register Add(string address, string[]? paths = null, string[]? clients = null, int? weight = null, string pool = "default", bool mustBeNew = false) =>
        new(address, pool, weight, paths ?? [], [.. (clients ?? []).Select(Network)], BackendSource.ControlPlane, mustBeNew);

    private static IPNetwork Network(string text) => NetworkList.TryParseNetwork(text, out var network, out var error) ? network : throw new FormatException(error);

    [Fact]
    public async Task Register_NewBackend_IsStoredPublishedAndInTheSnapshot()
    {
        var result = await _registry.ApplyAsync(Add("http://10.0.0.1:8085", ["/api/v2"], ["10.0.0.0/8"], weight: 3));

        Assert.True(result.Succeeded, result.Message);
        Assert.Equal("registered http://10.0.0.1:8085", result.Message);
        var backend = Assert.Single(_registry.Current.Pools[0].Backends, b => b.Address == "http://10.0.0.1:8085");
        Assert.Equal(["/api/v2"], backend.Paths);
        Assert.Equal([IPNetwork.Parse("10.0.0.0/8")], backend.Clients.Networks);
        Assert.Equal(3, backend.Weight);
        Assert.Equal(BackendSource.ControlPlane, backend.Source);
        Assert.Same(_registry.Current, _publisher.Published[^1]);
        Assert.Contains(LoadStored(), b => b.Address == "http://10.0.0.1:8085" && b.Weight == 3);
    }

    [Fact]
    public async Task Register_Existing_AddsPathsAndClientsIdempotently()
    {
        await _registry.ApplyAsync(Add("http://10.0.0.1:8085", ["/a"], ["10.0.0.1"]));

        var again = await _registry.ApplyAsync(Add("http://10.0.0.1:8085", ["/a", "/b"], ["10.0.0.1", "10.0.0.2"]));
        var same = await _registry.ApplyAsync(Add("http://10.0.0.1:8085", ["/b"]));

        Assert.Equal("updated http://10.0.0.1:8085: 1 path and 1 client added", again.Message);
        Assert.Equal("http://10.0.0.1:8085 is already registered with these paths and clients", same.Message);
        Assert.True(same.Succeeded);
        var backend = _registry.Current.Pools[0].Backends.Single(b => b.Address == "http://10.0.0.1:8085");
        Assert.Equal(["/a", "/b"], backend.Paths);
        Assert.Equal(2, backend.Clients.Networks.Count);
        var stored = LoadStored().Single(b => b.Address == "http://10.0.0.1:8085");
        Assert.Equal(["/a", "/b"], stored.Paths);
    }

    [Fact]
    public async Task Deregister_WithEntries_RemovesOnlyThose_WithoutEntries_RemovesTheServer()
    {
        await _registry.ApplyAsync(Add("http://10.0.0.1:8085", ["/a", "/b"], ["10.0.0.1"]));

        var partial = await _registry.ApplyAsync(new RegistryChange.Deregister("http://10.0.0.1:8085", ["/a"], []));
        Assert.Equal("updated http://10.0.0.1:8085: 1 path and 0 clients removed", partial.Message);
        Assert.Equal(["/b"], _registry.Current.Pools[0].Backends.Single(b => b.Address == "http://10.0.0.1:8085").Paths);

        var whole = await _registry.ApplyAsync(new RegistryChange.Deregister("http://10.0.0.1:8085", [], []));
        Assert.Equal("removed http://10.0.0.1:8085", whole.Message);
        Assert.DoesNotContain(_registry.Current.Pools[0].Backends, b => b.Address == "http://10.0.0.1:8085");
        Assert.DoesNotContain(LoadStored(), b => b.Address == "http://10.0.0.1:8085");
    }

    [Fact]
    public async Task Deregister_Unknown_IsNotFound()
    {
        var result = await _registry.ApplyAsync(new RegistryChange.Deregister("http://10.9.9.9:1", [], []));

        Assert.Equal(ChangeOutcome.NotFound, result.Outcome);
        Assert.Equal("http://10.9.9.9:1 is not registered", result.Message);
    }

    [Fact]
    public async Task Changes_ToAStaticBackend_AreConflicts()
    {
        var add = await _registry.ApplyAsync(Add("http://127.0.0.1:3001"));
        var remove = await _registry.ApplyAsync(new RegistryChange.Deregister("http://127.0.0.1:3001", [], []));
        var weight = await _registry.ApplyAsync(new RegistryChange.Update("http://127.0.0.1:3001", 5));

        Assert.All([add, remove, weight], r => Assert.Equal(ChangeOutcome.Conflict, r.Outcome));
        Assert.Equal("http://127.0.0.1:3001 is configured in config.yaml; change it there", add.Message);
        Assert.Empty(_publisher.Published);
    }

    [Fact]
    public async Task Register_MustBeNew_Existing_IsAConflict()
    {
        await _registry.ApplyAsync(Add("http://10.0.0.1:8085"));

        var result = await _registry.ApplyAsync(Add("http://10.0.0.1:8085", mustBeNew: true));

        Assert.Equal(ChangeOutcome.Conflict, result.Outcome);
        Assert.Equal("http://10.0.0.1:8085 is already registered", result.Message);
    }

    [Fact]
    public async Task Register_IntoAnotherPool_AndUnknownPool()
    {
        var ok = await _registry.ApplyAsync(Add("http://10.0.0.1:8085", pool: "api"));
        var bad = await _registry.ApplyAsync(Add("http://10.0.0.2:8085", pool: "nope"));

        Assert.True(ok.Succeeded);
        Assert.Contains(_registry.Current.Pools.Single(p => p.Name == "api").Backends, b => b.Address == "http://10.0.0.1:8085");
        Assert.Equal(ChangeOutcome.Invalid, bad.Outcome);
        Assert.Equal("no pool named nope (pools: default, api)", bad.Message);
    }

    [Fact]
    public async Task SetWeight_ChangesTheWeight()
    {
        await _registry.ApplyAsync(Add("http://10.0.0.1:8085"));

        var result = await _registry.ApplyAsync(new RegistryChange.Update("http://10.0.0.1:8085", 7));

        Assert.True(result.Succeeded);
        Assert.Equal(7, _registry.Current.Pools[0].Backends.Single(b => b.Address == "http://10.0.0.1:8085").Weight);
        Assert.Equal(7, LoadStored().Single().Weight);
    }

    [Fact]
    public async Task Update_ReplacesTheListsGiven_AndKeepsTheRest()
    {
        await _registry.ApplyAsync(Add("http://10.0.0.1:8085", ["/a", "/b"], ["10.0.0.1"], weight: 2));

        var paths = await _registry.ApplyAsync(new RegistryChange.Update("http://10.0.0.1:8085", null, Paths: ["/c"]));
        var clients = await _registry.ApplyAsync(new RegistryChange.Update("http://10.0.0.1:8085", null, Clients: []));
        var same = await _registry.ApplyAsync(new RegistryChange.Update("http://10.0.0.1:8085", 2, Paths: ["/C"]));

        Assert.Equal("updated http://10.0.0.1:8085: weight 2, 1 path, 1 client", paths.Message);
        Assert.Equal("updated http://10.0.0.1:8085: weight 2, 1 path, 0 clients", clients.Message);
        Assert.Equal("http://10.0.0.1:8085 already has these settings", same.Message);
        var stored = LoadStored().Single();
        Assert.Equal(2, stored.Weight);
        Assert.Equal(["/c"], stored.Paths);
        Assert.Empty(stored.Clients.Networks);
    }

    [Fact]
    public async Task TwoChangesToOneBackend_InOneBatch_AreBothAnsweredOnlyOnceTheBatchIsLive()
    {
        _publisher.Gate = new SemaphoreSlim(0);
        var earlier = _registry.ApplyAsync(Add("http://10.0.0.9:1"));
        await Eventually.TrueAsync(() => _publisher.Waiting == 1, "the first batch is being published");

        // Queued while the writer is busy, these three land in the next batch together: the second is a no-op only
        // because of the first.
        var first = _registry.ApplyAsync(Add("http://10.0.0.1:1"));
        var duplicate = _registry.ApplyAsync(Add("http://10.0.0.1:1"));
        var unrelated = _registry.ApplyAsync(new RegistryChange.Deregister("http://10.0.0.7:1", [], []));
        _publisher.Gate.Release();
        Assert.True((await earlier).Succeeded);
        await Eventually.TrueAsync(() => _publisher.Waiting == 2, "the second batch is being published");

        Assert.Equal(ChangeOutcome.NotFound, (await unrelated).Outcome); // judged against what is committed: true at once
        Assert.False(first.IsCompleted);
        Assert.False(duplicate.IsCompleted);
        _publisher.Gate.Release();

        Assert.True((await first).Succeeded);
        Assert.Equal("http://10.0.0.1:1 is already registered with these paths and clients", (await duplicate).Message);
    }

    [Fact]
    public async Task WhenTheBatchFails_AnAnswerThatDependedOnIt_FailsToo()
    {
        _publisher.Gate = new SemaphoreSlim(0);
        var earlier = _registry.ApplyAsync(Add("http://10.0.0.9:1"));
        await Eventually.TrueAsync(() => _publisher.Waiting == 1, "the first batch is being published");
        var both = Task.WhenAll( // queued meanwhile: one batch, the second a conflict only because of the first
            _registry.ApplyAsync(Add("http://10.0.0.1:1")),
            _registry.ApplyAsync(Add("http://10.0.0.1:1", mustBeNew: true)));
        _publisher.Gate.Release();
        Assert.True((await earlier).Succeeded);
        await Eventually.TrueAsync(() => _publisher.Waiting == 2, "the second batch is being published");
        _publisher.FailNext = new InvalidOperationException("no");
        _publisher.Gate.Release();

        var results = await both;

        Assert.All(results, r => Assert.Equal(ChangeOutcome.Failed, r.Outcome));
        Assert.Equal(["http://10.0.0.9:1"], LoadStored().Select(b => b.Address));
    }

    [Fact]
    public async Task Drain_MarksTheBackend_IsStored_AndIsIdempotent()
    {
        await _registry.ApplyAsync(Add("http://10.0.0.1:8085"));

        var first = await _registry.ApplyAsync(new RegistryChange.Drain("http://10.0.0.1:8085"));
        var again = await _registry.ApplyAsync(new RegistryChange.Drain("http://10.0.0.1:8085"));
        var unknown = await _registry.ApplyAsync(new RegistryChange.Drain("http://10.0.0.9:1"));
        var configured = await _registry.ApplyAsync(new RegistryChange.Drain("http://127.0.0.1:3001"));

        Assert.Equal("draining http://10.0.0.1:8085: no new requests; it is removed once idle", first.Message);
        Assert.Equal("http://10.0.0.1:8085 is already draining", again.Message);
        Assert.True(again.Succeeded);
        Assert.Equal(ChangeOutcome.NotFound, unknown.Outcome);
        Assert.Equal(ChangeOutcome.Conflict, configured.Outcome);
        Assert.NotNull(_registry.Current.Pools[0].Backends.Single(b => b.Address == "http://10.0.0.1:8085").DrainingSince);
        Assert.NotNull(LoadStored().Single().DrainingSince);
    }

    [Fact]
    public async Task DatabaseFailure_AnswersFailure_AndLeavesRoutingUnchanged()
    {
        await _registry.ApplyAsync(Add("http://10.0.0.1:8085"));
        var published = _publisher.Published.Count;
        var before = _registry.Current;
        Exec("CREATE TRIGGER fail BEFORE INSERT ON backends BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;");

        var result = await _registry.ApplyAsync(Add("http://10.0.0.2:8085"));

        Assert.Equal(ChangeOutcome.Failed, result.Outcome);
        Assert.Contains("disk on fire", result.Message, StringComparison.Ordinal);
        Assert.Same(before, _registry.Current);
        Assert.Equal(published, _publisher.Published.Count);

        Exec("DROP TRIGGER fail;");
        Assert.True((await _registry.ApplyAsync(Add("http://10.0.0.2:8085"))).Succeeded);
    }

    [Fact]
    public async Task ATransactionRolledBackUnderneath_FailsItsBatch_AndLaterChangesStillWork()
    {
        // What SQLite does on some errors (a full disk among them): it rolls the whole transaction back by itself.
        Exec("CREATE TRIGGER gone BEFORE INSERT ON backends WHEN NEW.address = 'http://10.0.0.2:1' BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END;");

        var results = await Task.WhenAll(Enumerable.Range(1, 3).Select(i => _registry.ApplyAsync(Add($"http://10.0.0.{i}:1"))));
        Exec("DROP TRIGGER gone;");
        var later = await _registry.ApplyAsync(Add("http://10.0.0.4:1"));

        Assert.Contains("database or disk is full", results[1].Message, StringComparison.Ordinal);
        Assert.True(later.Succeeded, later.Message);
        var stored = LoadStored().Select(b => b.Address).ToHashSet();
        Assert.Contains("http://10.0.0.4:1", stored);
        Assert.DoesNotContain("http://10.0.0.2:1", stored);
        foreach (var (result, i) in results.Select((r, i) => (r, i + 1)))
        {
            Assert.Equal(result.Succeeded, stored.Contains($"http://10.0.0.{i}:1")); // every answer is the truth
        }

        Assert.Equal(stored.Order(), _registry.Current.Pools[0].Backends.Skip(1).Select(b => b.Address).Order());
    }

    [Fact]
    public async Task RoutingFailure_RollsTheDatabaseBack()
    {
        _publisher.FailNext = new InvalidOperationException("cluster default: bad destination");

        var result = await _registry.ApplyAsync(Add("http://10.0.0.1:8085"));

        Assert.Equal(ChangeOutcome.Failed, result.Outcome);
        Assert.Equal("routing update failed, nothing was stored: cluster default: bad destination", result.Message);
        Assert.DoesNotContain(_registry.Current.Pools[0].Backends, b => b.Address == "http://10.0.0.1:8085");
        Assert.Empty(LoadStored());
    }

    [Fact]
    public async Task ABatchWithOneBadChange_AppliesTheOthers()
    {
        Exec("CREATE TRIGGER fail BEFORE INSERT ON backends WHEN NEW.address = 'http://10.0.0.2:1' BEGIN SELECT RAISE(ABORT, 'no'); END;");

        var results = await Task.WhenAll(Enumerable.Range(1, 3).Select(i => _registry.ApplyAsync(Add($"http://10.0.0.{i}:1"))));

        Assert.Equal([true, false, true], results.Select(r => r.Succeeded));
        Assert.Equal(["http://10.0.0.1:1", "http://10.0.0.3:1"], LoadStored().Select(b => b.Address).Order());
        Assert.Equal(["http://127.0.0.1:3001", "http://10.0.0.1:1", "http://10.0.0.3:1"], _registry.Current.Pools[0].Backends.Select(b => b.Address));
    }

    [Fact]
    public async Task SeveralChangesToOneAddress_InOneBatch_LeaveOneEntryInTheRightPool()
    {
        await _registry.ApplyAsync(Add("http://10.0.0.9:1", pool: "api"));

        // Submitted together, these land in one batch.
        var results = await Task.WhenAll(
            _registry.ApplyAsync(Add("http://10.0.0.1:1")),
            _registry.ApplyAsync(Add("http://10.0.0.1:1", ["/more"])),
            _registry.ApplyAsync(new RegistryChange.Deregister("http://10.0.0.9:1", [], [])),
            _registry.ApplyAsync(Add("http://10.0.0.9:1", pool: "default")));

        Assert.All(results, r => Assert.True(r.Succeeded, r.Message));
        Assert.Equal(["http://127.0.0.1:3001", "http://10.0.0.1:1", "http://10.0.0.9:1"], _registry.Current.Pools[0].Backends.Select(b => b.Address));
        Assert.Equal(["/more"], _registry.Current.Pools[0].Backends[1].Paths);
        Assert.Empty(_registry.Current.Pools[1].Backends);
        Assert.Equal(["http://10.0.0.1:1", "http://10.0.0.9:1"], LoadStored().Select(b => b.Address).Order());
    }

    [Fact]
    public async Task Reopen_RestoresEveryRegistration_InOrder()
    {
        await _registry.ApplyAsync(Add("http://10.0.0.2:1", ["/x"], ["10.0.0.0/8"], weight: 4));
        await _registry.ApplyAsync(Add("http://10.0.0.1:1"));
        await _registry.ApplyAsync(Add("http://10.0.0.3:1", pool: "api"));
        await _registry.DisposeAsync();

        _registry = Open(Options("""
            backends: [ { address: "http://127.0.0.1:3001" } ]
            pools: [ { name: api, paths: [/api] } ]
            """));

        Assert.Equal(["http://127.0.0.1:3001", "http://10.0.0.2:1", "http://10.0.0.1:1"], _registry.Current.Pools[0].Backends.Select(b => b.Address));
        var restored = _registry.Current.Pools[0].Backends[1];
        Assert.Equal(["/x"], restored.Paths);
        Assert.Equal((4, BackendSource.ControlPlane), (restored.Weight, restored.Source));
        Assert.Equal([IPNetwork.Parse("10.0.0.0/8")], restored.Clients.Networks);
        Assert.Equal(["http://10.0.0.3:1"], _registry.Current.Pools[1].Backends.Select(b => b.Address));
    }

    [Fact]
    public async Task Reopen_WithAPoolGoneFromConfig_KeepsTheRowButSaysSo()
    {
        await _registry.ApplyAsync(Add("http://10.0.0.3:1", pool: "api"));
        await _registry.DisposeAsync();

        _registry = Open(Options("backends: [ { address: \"http://127.0.0.1:3001\" } ]"));

        Assert.Single(_registry.Current.Pools);
        Assert.Equal(["http://10.0.0.3:1 (pool api)"], _registry.Orphans);
        Assert.Single(LoadStored());
    }

    [Fact]
    public async Task StoredRowsThatDoNotParse_AreEachNamed_WithWhatToDo()
    {
        await _registry.ApplyAsync(Add("http://10.0.0.1:1", ["/good"], ["10.0.0.0/8"]));
        await _registry.DisposeAsync();
        Exec("""
            INSERT INTO backends VALUES ('not a url', 'default', 1, 'ControlPlane', 100, 'x', 'x', NULL);
            INSERT INTO backends VALUES ('http://10.0.0.2:1', 'default', 'heavy', 'ControlPlane', 101, 'x', 'x', NULL);
            INSERT INTO backends VALUES ('http://10.0.0.3:1', 'default', 1, 'Bogus', 102, 'x', 'x', NULL);
            INSERT INTO backends VALUES ('http://10.0.0.4:1', 'default', 1, 'Api', 103, 'x', 'x', 'yesterday');
            INSERT INTO backends VALUES ('http://10.0.0.5:1', 'default', 1, 'Api', 104, 'x', 'x', NULL);
            INSERT INTO backend_clients VALUES ('http://10.0.0.5:1', 'nonsense');
            INSERT INTO backends VALUES ('http://10.0.0.6:1', 'default', 1, 'Api', 105, 'x', 'x', NULL);
            INSERT INTO backend_paths VALUES ('http://10.0.0.6:1', 'no-slash');
            """);

        var error = Assert.Throws<StoredRegistrationsException>(() => Open(Options()));

        Assert.Equal(
            [
                "backends row address='not a url': address not a url is not an http:// or https:// address",
                "backends row address='http://10.0.0.2:1': weight 'heavy' is not an integer from 0 to 1000000",
                "backends row address='http://10.0.0.3:1': source 'Bogus' is not ControlPlane or Api",
                "backends row address='http://10.0.0.4:1': draining_since 'yesterday' is not a time such as 2026-01-01T00:00:00.0000000+00:00",
                "backends row address='http://10.0.0.5:1': client nonsense is not an IP address or CIDR",
                "backends row address='http://10.0.0.6:1': path no-slash must start with /",
            ],
            error.Problems);
        Assert.Contains($"Correct or delete those rows (sqlite3 {DbPath})", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnOlderDatabase_WithAPort80AddressNotInItsNormalForm_IsMigrated()
    {
        await _registry.DisposeAsync();
        Exec("""
            INSERT INTO backends VALUES ('http://10.0.0.1:80', 'default', 1, 'ControlPlane', 100, 'x', 'x', NULL);
            INSERT INTO backend_paths VALUES ('http://10.0.0.1:80', '/a');
            INSERT INTO backends VALUES ('http://10.0.0.2:80', 'default', 1, 'ControlPlane', 101, 'x', 'x', NULL);
            INSERT INTO backends VALUES ('http://10.0.0.2', 'default', 1, 'Api', 102, 'x', 'x', NULL);
            PRAGMA user_version = 2;
            """);

        _registry = Open(Options());

        var backends = _registry.Current.Pools[0].Backends.ToList();
        Assert.Equal(["http://10.0.0.1", "http://10.0.0.2"], backends.Select(b => b.Address));
        Assert.Equal(["/a"], backends[0].Paths);
    }

    private List<BackendEntry> LoadStored()
    {
        using var store = SqliteRegistrationStore.Open(DbPath);
        return [.. store.LoadAll()];
    }

    private void Exec(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={DbPath};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private sealed class RecordingPublisher : IRoutingPublisher
    {
        public List<RoutingSnapshot> Published { get; } = [];

        public Exception? FailNext { get; set; }

        /// <summary>When set, each publish waits for a release of it: the batch is in flight meanwhile.</summary>
        public SemaphoreSlim? Gate { get; set; }

        /// <summary>Publishes that have begun waiting at the gate.</summary>
        public int Waiting => Volatile.Read(ref _waiting);

        private int _waiting;

        public void Initialize(RoutingSnapshot snapshot)
        {
        }

        public async Task PublishAsync(RoutingSnapshot snapshot, CancellationToken cancellationToken)
        {
            if (Gate is { } gate)
            {
                Interlocked.Increment(ref _waiting);
                await gate.WaitAsync(cancellationToken);
            }

            if (FailNext is { } failure)
            {
                FailNext = null;
                throw failure;
            }

            Published.Add(snapshot);
        }
    }
}
