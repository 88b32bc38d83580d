using Balancer.Persistence;
using Balancer.Tests.Kit;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.SessionAffinity;

namespace Balancer.Tests.Properties.Persistence;

public sealed class SignedAffinityProperties
{
    private static readonly SessionAffinityConfig Config = new() { Enabled = true, Policy = SignedAffinityPolicy.CookieName, AffinityKeyName = "lb_session" };

    /// <summary>Registrations and removals of other backends, and health changes of others, in any order.</summary>
    private static readonly Arbitrary<(int Start, (int Kind, int Which)[] Changes)> Runs =
        (from start in Gen.Choose(1, 8)
         from length in Gen.Choose(1, 40)
         from changes in Gen.ArrayOf(Gen.Zip(Gen.Choose(0, 2), Gen.Choose(0, 30)), length)
         select (start, changes.Select(c => (c.Item1, c.Item2)).ToArray())).ToArbitrary();

    [Property(MaxTest = 300)]
    public Property AClientKeepingItsCookie_StaysOnItsBackend_ThroughAnyChangesThatKeepItAvailable() =>
        Prop.ForAll(Runs, run =>
        {
            var policy = new SignedAffinityPolicy(new Lazy<AffinityKey>(AffinityKey.Configured(new string('k', 32))), header: false, TimeProvider.System);
            var pinned = Destinations.Create(1)[0];
            var others = Destinations.Create(31).Skip(1).ToList(); // d1..d30: addresses differ from d0's
            var present = new List<DestinationState>(others.Take(run.Start));
            var unhealthy = new HashSet<DestinationState>();
            var cluster = new ClusterState("c");

            IReadOnlyList<DestinationState> Publish()
            {
                // YARP hands out new lists on every change; the pinned backend stays the same object while it stays.
                var all = present.Append(pinned).OrderBy(d => d.DestinationId, StringComparer.Ordinal).ToList();
                var available = all.Where(d => !unhealthy.Contains(d)).ToList();
                cluster.DestinationsState = new ClusterDestinationsState(all, available);
                return available;
            }

            var available = Publish();
            var issued = new DefaultHttpContext();
            policy.AffinitizeResponse(issued, cluster, Config, pinned);
            var cookie = issued.Response.Headers.SetCookie.ToString().Split(';')[0];

            foreach (var (kind, which) in run.Changes)
            {
                var other = others[which % others.Count];
                switch (kind)
                {
                    case 0 when !present.Contains(other):
                        present.Add(other);
                        break;
                    case 1:
                        present.Remove(other);
                        unhealthy.Remove(other);
                        break;
                    default:
                        if (!unhealthy.Add(other))
                        {
                            unhealthy.Remove(other);
                        }

                        break;
                }

                available = Publish();
                var request = new DefaultHttpContext();
                request.Request.Headers.Cookie = cookie;
                var result = policy.FindAffinitizedDestinations(request, cluster, Config, available);
                if (result.Status != AffinityStatus.OK || !ReferenceEquals(result.Destinations?.Single(), pinned))
                {
                    return false;
                }
            }

            return true;
        });

    [Property(MaxTest = 200)]
    public Property ATokenNotMadeWithTheKey_IsNeverAPin(NonEmptyString forged) =>
        Prop.ForAll(Gen.Choose(1, 10).ToArbitrary(), n =>
        {
            var policy = new SignedAffinityPolicy(new Lazy<AffinityKey>(AffinityKey.Configured(new string('k', 32))), header: false, TimeProvider.System);
            var other = new SignedAffinityPolicy(new Lazy<AffinityKey>(AffinityKey.Configured(new string('q', 32))), header: false, TimeProvider.System);
            var destinations = Destinations.Create(n);
            var cluster = Destinations.Cluster(destinations);
            var made = new DefaultHttpContext();
            other.AffinitizeResponse(made, cluster, Config, destinations[0]); // right shape, wrong key
            foreach (var value in new[] { made.Response.Headers.SetCookie.ToString().Split(';')[0]["lb_session=".Length..], forged.Get })
            {
                var request = new DefaultHttpContext();
                request.Request.Headers.Cookie = "lb_session=" + Uri.EscapeDataString(value);
                if (policy.FindAffinitizedDestinations(request, cluster, Config, destinations).Status != AffinityStatus.AffinityKeyNotSet)
                {
                    return false;
                }
            }

            return true;
        });
}
