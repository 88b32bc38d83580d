using Balancer.Registry;

namespace Balancer.Tests.Unit.Registry;

public sealed class SqliteRegistrationStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("store-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task BalancersStartingTogetherOnOneNewDatabase_AllOpenIt_TheSchemaCreatedOnce()
    {
        // Several balancers given one data directory (a bench, a test, an operator's second instance) create the
        // database at the same moment: one creates the schema, the others wait for it and find it made.
        for (var round = 0; round < 10; round++)
        {
            var path = Path.Combine(_dir, $"round-{round}", "balancer.db");
            using var start = new Barrier(6);
            var opening = Enumerable.Range(0, 6).Select(_ => Task.Run(() =>
            {
                start.SignalAndWait();
                return SqliteRegistrationStore.Open(path);
            })).ToList();

            var stores = await Task.WhenAll(opening);

            foreach (var store in stores)
            {
                Assert.Empty(store.LoadAll());
                store.Dispose();
            }
        }
    }
}
