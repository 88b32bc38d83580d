using System.Net;
using Balancer.LoadBalancing;
using Balancer.Tests.Kit;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Properties.LoadBalancing;

/// <summary>
/// ip-hash (Maglev) and consistent-hash (ring): deterministic for a key, and when one backend joins or leaves few
/// keys move, and (for the ring, exactly; for Maglev, all but a measured sliver) only the keys they must.
/// </summary>
public sealed class HashingProperties
{
    private const int Keys = 20_000;
    private static readonly IPAddress[] Clients = [.. Enumerable.Range(0, Keys).Select(i => new IPAddress(BitConverter.GetBytes(unchecked(0x0A000000u + ((uint)i * 2654435761u)))))];

    public static TheoryData<string> Policies => [AlgorithmNames.IpHash, AlgorithmNames.ConsistentHash];

    // Each hashing policy, with the share of keys it may move between backends that stay (Maglev: a measured sliver).
    private static readonly Arbitrary<(string Name, double StrayAllowed)> Hashing =
        Gen.Elements((AlgorithmNames.ConsistentHash, 0.0), (AlgorithmNames.IpHash, 0.01)).ToArbitrary();

    [Property(MaxTest = 40)]
    public Property Pick_SameKey_SameBackend_EvenFromAnotherInstance() =>
        Prop.ForAll(Hashing, Gen.Choose(1, 50).ToArbitrary(), (policy, n) =>
        {
            var destinations = Destinations.Create(n);
            var first = Map(Policy(policy.Name), destinations);
            var second = Map(Policy(policy.Name), Destinations.Create(n)); // another process would build the same
            return first.SequenceEqual(second);
        });

    [Property(MaxTest = 80)]
    public Property Adding_OneBackendToN_MovesAbout1OverNPlus1_OnlyOntoTheNewOne() =>
        Prop.ForAll(Hashing, Gen.Choose(1, 40).ToArbitrary(), (policy, n) =>
        {
            var (name, strayAllowed) = policy;
            var all = Destinations.Create(n + 1);
            var before = Map(Policy(name), all[..n]);
            var after = Map(Policy(name), all);
            var moved = Enumerable.Range(0, Keys).Where(k => before[k] != after[k]).ToList();
            var ontoNew = moved.Count(k => after[k] == n);
            var stray = moved.Count - ontoNew;
            var share = (double)ontoNew / Keys;
            var fair = 1.0 / (n + 1);
            return share <= fair * 1.6 + 0.01 && share >= fair * 0.4 - 0.01 && stray <= strayAllowed * Keys;
        });

    [Property(MaxTest = 80)]
    public Property Removing_OneBackend_MovesOnlyItsKeys() =>
        Prop.ForAll(Hashing, Gen.Choose(2, 40).ToArbitrary(), Gen.Choose(0, 1000).ToArbitrary(), (policy, n, which) =>
        {
            var (name, strayAllowed) = policy;
            var all = Destinations.Create(n);
            var gone = which % n;
            var before = Map(Policy(name), all);
            var after = Map(Policy(name), [.. all.Where((_, i) => i != gone)]);
            var stray = Enumerable.Range(0, Keys).Count(k => before[k] != gone && before[k] != after[k]);
            return after.All(b => b != gone) && stray <= strayAllowed * Keys;
        });

    [Theory]
    [InlineData(AlgorithmNames.ConsistentHash, 0.0)]
    [InlineData(AlgorithmNames.IpHash, 0.02)]
    public void Adding_OneBackend_ToALargePool_StillMovesFewKeys(string name, double strayAllowed)
    {
        // Sizes that depend on the number of backends must not change with every backend added.
        foreach (var n in new[] { 300, 1000, 2000 })
        {
            var all = Destinations.Create(n + 1);
            var before = Map(Policy(name), all[..n]);
            var after = Map(Policy(name), all);
            var moved = Enumerable.Range(0, Keys).Count(k => before[k] != after[k]);
            var stray = Enumerable.Range(0, Keys).Count(k => before[k] != after[k] && after[k] != n);
            Assert.True(moved <= (Keys / (n + 1.0) * 3) + (strayAllowed * Keys), $"{n} backends: adding one moved {moved} of {Keys} keys");
            Assert.True(stray <= strayAllowed * Keys, $"{n} backends: {stray} keys moved between existing backends");
        }
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void Keys_SpreadInProportionToWeight(string name)
    {
        int[] weights = [1, 2, 3, 4];
        var destinations = Destinations.Create(4, i => weights[i]);
        var hits = new int[4];
        foreach (var backend in Map(Policy(name), destinations))
        {
            hits[backend]++;
        }

        for (var i = 0; i < 4; i++)
        {
            var expected = Keys * weights[i] / 10.0;
            Assert.InRange(hits[i], expected * 0.8, expected * 1.2);
        }
    }

    [Fact]
    public void ConsistentHash_KeyFromHeaderCookieOrPath_FallsBackToTheClient()
    {
        var destinations = Destinations.Create(20);
        var policy = (ConsistentHashPolicy)Policy(AlgorithmNames.ConsistentHash);

        HttpContext Request(string? header = null, string? cookie = null, string path = "/")
        {
            var context = Destinations.Context(IPAddress.Parse("10.1.1.1"));
            context.Request.Path = path;
            if (header is not null)
            {
                context.Request.Headers["X-User"] = header;
            }

            if (cookie is not null)
            {
                context.Request.Headers.Cookie = cookie;
            }

            return context;
        }

        DestinationState Pick(string key, HttpContext context)
        {
            var cluster = Destinations.Cluster(metadata: new Dictionary<string, string> { [ConsistentHashPolicy.KeyMetadata] = key });
            return policy.PickDestination(context, cluster, destinations)!;
        }

        // The same user from different clients: the same backend; a different user: (for most users) another.
        var users = Enumerable.Range(0, 50).Select(u => $"user-{u}").ToList();
        Assert.All(users, u => Assert.Same(Pick("header:X-User", Request(header: u)), Pick("header:X-User", Request(header: u, path: "/other"))));
        Assert.True(users.Select(u => Pick("header:X-User", Request(header: u))).Distinct().Count() > 10);
        Assert.All(users, u => Assert.Same(Pick("cookie:session", Request(cookie: $"a=1; session={u}; b=2")), Pick("cookie:session", Request(cookie: $"session=\"{u}\""))));
        Assert.Same(Pick("path", Request(path: "/x/y")), Pick("path", Request(header: "ignored", path: "/x/y")));
        Assert.Same(Pick("header:X-User", Request()), Pick("client-ip", Request()));
    }

    private static ILoadBalancingPolicy Policy(string name) => name == AlgorithmNames.IpHash
        ? new IpHashPolicy(Options.Default)
        : new ConsistentHashPolicy(Options.Default);

    /// <summary>Each key's backend index, keys being client addresses.</summary>
    private static int[] Map(ILoadBalancingPolicy policy, DestinationState[] destinations)
    {
        var cluster = Destinations.Cluster();
        var context = Destinations.Context();
        return [.. Clients.Select(client =>
        {
            context.Connection.RemoteIpAddress = client;
            return Destinations.IndexOf(policy.PickDestination(context, cluster, destinations)!);
        })];
    }
}
