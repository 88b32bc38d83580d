using System.Net;
using Balancer.Configuration;
using Balancer.Networking;
using Balancer.Proxy;
using Balancer.Registry;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Properties.Proxy;

public sealed class RestrictionProperties
{
    private static readonly string[] Segments = ["api", "API", "v2", "users", "x"];

    private static readonly Gen<string> PathGen =
        from count in Gen.Choose(0, 3)
        from parts in Gen.ListOf(Gen.Elements(Segments), count)
        select "/" + string.Join('/', parts);

    // Networks around a few addresses, so that they nest and overlap; IPv4 and IPv6.
    private static readonly Gen<IPNetwork> NetworkGen =
        from v6 in Gen.Elements(false, false, true)
        from last in Gen.Choose(0, 3)
        from prefix in Gen.Choose(v6 ? 100 : 20, v6 ? 128 : 32)
        select Network(v6 ? $"fd00::{last}" : $"10.1.2.{last}", prefix);

    private static readonly Gen<BackendEntry[]> BackendsGen =
        from count in Gen.Choose(1, 8)
        from specs in Gen.ListOf(
            from pathCount in Gen.Choose(0, 2)
            from paths in Gen.ListOf(PathGen.Where(p => p != "/"), pathCount)
            from clientCount in Gen.Elements(0, 0, 1, 2)
            from clients in Gen.ListOf(NetworkGen, clientCount)
            select (paths, clients), count)
        select specs.Select((s, i) => new BackendEntry(
            $"http://127.0.0.1:{1000 + i}", "default", 1,
            [.. s.paths.Distinct(StringComparer.OrdinalIgnoreCase)], new NetworkList(s.clients.Distinct()), BackendSource.ControlPlane, i)).ToArray();

    private static readonly Gen<IPAddress> ClientGen =
        from v6 in Gen.Elements(false, true)
        from last in Gen.Choose(0, 5)
        select IPAddress.Parse(v6 ? $"fd00::{last}" : $"10.1.2.{last}");

    [Property(MaxTest = 500)]
    public Property Select_ThenAdmitting_AgreesWithTheRuleAsWritten() =>
        Prop.ForAll(
            BackendsGen.ToArbitrary(),
            Gen.ListOf(Gen.Zip(PathGen, ClientGen), 20).ToArbitrary(),
            (backends, requests) =>
            {
                var pool = new PoolSnapshot(new PoolOptions { Name = "default", Algorithm = "round-robin", Paths = [], Backends = [] }, backends);
                var index = PoolRestrictions.Build(pool);
                var destinations = backends.Select(b => new DestinationState(b.Address, new DestinationModel(new DestinationConfig { Address = b.Address }))).ToArray();
                foreach (var (path, client) in requests)
                {
                    var expected = Expected(backends, path, client);
                    string[] actual;
                    if (index is null)
                    {
                        actual = [.. backends.Select(b => b.Address)]; // nothing restricted: everyone serves
                    }
                    else
                    {
                        var group = index.Select(path);
                        var admitted = group.Admitting(client);
                        actual = admitted.IsEmpty ? [] : [.. admitted.Filter(destinations).Select(d => d.DestinationId)];
                        if (!group.HasMembers && expected.Length > 0)
                        {
                            return false;
                        }
                    }

                    if (!actual.Order().SequenceEqual(expected.Order()))
                    {
                        return false;
                    }
                }

                return true;
            });

    /// <summary>README, "Path and client restrictions": the longest registered prefix matching on a segment boundary wins; else the backends without paths; then only those admitting the client.</summary>
    private static string[] Expected(BackendEntry[] backends, string path, IPAddress client)
    {
        static bool Matches(string prefix, string path) =>
            path.Equals(prefix, StringComparison.OrdinalIgnoreCase)
            || (path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && path.Length > prefix.Length && path[prefix.Length] == '/');

        var claims = backends.SelectMany(b => b.Paths.Where(p => Matches(p, path)).Select(p => (Backend: b, Length: p.Length))).ToList();
        var group = claims.Count == 0
            ? backends.Where(b => b.Paths.Count == 0)
            : claims.Where(c => c.Length == claims.Max(x => x.Length)).Select(c => c.Backend);
        return [.. group.Distinct().Where(b => b.Clients.Networks.Count == 0 || b.Clients.Contains(client)).Select(b => b.Address)];
    }

    private static IPNetwork Network(string address, int prefix)
    {
        var bytes = IPAddress.Parse(address).GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] &= (byte)(0xFF << (8 - Math.Clamp(prefix - (i * 8), 0, 8)));
        }

        return new IPNetwork(new IPAddress(bytes), prefix);
    }
}
