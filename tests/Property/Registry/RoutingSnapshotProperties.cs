using Balancer.Configuration;
using Balancer.Networking;
using Balancer.Registry;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Balancer.Tests.Properties.Registry;

public sealed class RoutingSnapshotProperties
{
    private static readonly IReadOnlyList<PoolOptions> Pools =
    [
        new() { Name = "default", Algorithm = "round-robin", Paths = [], Backends = [new BackendOptions { Address = "http://10.9.9.9:1", Weight = 1 }] },
        new() { Name = "api", Algorithm = "round-robin", Paths = ["/api"], Backends = [] },
    ];

    // A few addresses, so that batches revisit them: add, change, remove, add again.
    private static readonly Gen<(int Address, bool Remove, int Weight, bool Api)> Steps =
        from address in Gen.Choose(0, 5)
        from remove in Gen.Elements(false, false, true)
        from weight in Gen.Choose(0, 3)
        from api in Gen.Elements(false, true)
        select (address, remove, weight, api);

    [Property(MaxTest = 500)]
    public Property Apply_AnyBatchesOfChanges_EqualsBuildingFromScratch() =>
        Prop.ForAll(
            Gen.ListOf(Gen.NonEmptyListOf(Steps)).ToArbitrary(),
            batches =>
            {
                var registered = new Dictionary<string, BackendEntry>();
                var snapshot = RoutingSnapshot.Build(1, Pools, []);
                long order = 0;
                foreach (var batch in batches)
                {
                    var changes = new List<(BackendEntry? Before, BackendEntry? After)>();
                    foreach (var (index, remove, weight, api) in batch)
                    {
                        var address = $"http://10.0.0.{index}:80";
                        registered.TryGetValue(address, out var before);
                        BackendEntry? after = remove ? null
                            : before is null ? new BackendEntry(address, api ? "api" : "default", weight, [], NetworkList.Empty, BackendSource.ControlPlane, ++order)
                            : before with { Weight = weight };
                        if (before is null && after is null)
                        {
                            continue;
                        }

                        changes.Add((before, after));
                        if (after is null)
                        {
                            registered.Remove(address);
                        }
                        else
                        {
                            registered[address] = after;
                        }
                    }

                    snapshot = snapshot.Apply(snapshot.Version + 1, changes);
                    var expected = RoutingSnapshot.Build(snapshot.Version, Pools, registered.Values);
                    for (var p = 0; p < Pools.Count; p++)
                    {
                        if (!snapshot.Pools[p].Backends.SequenceEqual(expected.Pools[p].Backends))
                        {
                            return false;
                        }
                    }
                }

                return true;
            });
}
