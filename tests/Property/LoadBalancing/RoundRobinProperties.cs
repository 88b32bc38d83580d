using Balancer.LoadBalancing;
using Balancer.Tests.Kit;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Balancer.Tests.Properties.LoadBalancing;

public sealed class RoundRobinProperties
{
    // A pool of 1..16 backends, a number of whole rounds, and the order in which YARP happens to list them.
    private static readonly Arbitrary<(int Backends, int Rounds, int[] Listing)> Pools =
        (from backends in Gen.Choose(1, 16)
         from rounds in Gen.Choose(1, 20)
         from listing in Gen.Shuffle(Enumerable.Range(0, backends))
         select (backends, rounds, listing.ToArray())).ToArbitrary();

    [Property(MaxTest = 300)]
    public Property Pick_EveryWindowOfNPicks_IsAPermutationInPoolOrder_WhateverOrderYarpListsThem() =>
        Prop.ForAll(Pools, pool =>
        {
            var destinations = Destinations.Create(pool.Backends);
            var listed = pool.Listing.Select(i => destinations[i]).ToList();
            var policy = new RoundRobinPolicy();
            var cluster = Destinations.Cluster();
            var context = Destinations.Context();

            var picks = Enumerable.Range(0, pool.Backends * pool.Rounds)
                .Select(_ => Destinations.IndexOf(policy.PickDestination(context, cluster, listed)!))
                .ToArray();

            return picks.Select((index, position) => index == position % pool.Backends).All(ok => ok);
        });

    [Property(MaxTest = 300)]
    public Property Pick_AfterABackendDrops_CarriesOnAfterTheLastPicked_NotFromTheStart() =>
        Prop.ForAll(Gen.Choose(3, 12).ToArbitrary(), Gen.Choose(0, 100).ToArbitrary(), Gen.Choose(0, 100).ToArbitrary(), (n, picksBefore, dropped) =>
        {
            var destinations = Destinations.Create(n);
            var policy = new RoundRobinPolicy();
            var cluster = Destinations.Cluster();
            var last = -1;
            for (var i = 0; i < picksBefore; i++)
            {
                last = Destinations.IndexOf(policy.PickDestination(Destinations.Context(), cluster, destinations)!);
            }

            var gone = dropped % n;
            var remaining = destinations.Where((_, i) => i != gone).ToArray(); // a new list: as YARP hands over after a health change
            var next = Destinations.IndexOf(policy.PickDestination(Destinations.Context(), cluster, remaining)!);

            // The first backend after the last one picked, in pool order, skipping the one that dropped.
            var expected = Enumerable.Range(1, n).Select(k => (last + k) % n).First(i => i != gone);
            return next == expected;
        });

    [Fact]
    public void Pick_NoAvailableBackends_ReturnsNullInsteadOfThrowing() =>
        Assert.Null(new RoundRobinPolicy().PickDestination(Destinations.Context(), Destinations.Cluster(), []));
}
