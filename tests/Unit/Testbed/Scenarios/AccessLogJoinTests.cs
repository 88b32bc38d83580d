using System.Net;
using Balancer.Configuration;
using Balancer.Observability;
using Balancer.Tests.Unit.Observability;
using Testbed.Load;
using Testbed.Scenarios;

namespace Balancer.Tests.Unit.Testbed.Scenarios;

/// <summary>Retries joined from lines the balancer's own access-log formatter wrote: a change of format breaks this test, not a scenario.</summary>
public sealed class AccessLogJoinTests
{
    [Fact]
    public void EachRequestGetsTheRetriesOfItsTaggedLine_UnloggedOnesStayUnknown()
    {
        RequestRecord[] records =
        [
            new(7, TimeSpan.Zero, TimeSpan.FromMilliseconds(3), "127.0.0.2", "GET", "/a", 200, "b1", null),
            new(8, TimeSpan.Zero, TimeSpan.FromMilliseconds(3), "127.0.0.2", "POST", "/a", 200, "b2", null),
            new(9, TimeSpan.Zero, TimeSpan.FromMilliseconds(3), "127.0.0.2", "GET", "/a", 0, null, "connection refused"),
        ];
        string[] log = [Line("/a", "x=\"1\"&lb-request=7", retries: 0), Line("/a", "lb-request=8", retries: 2), Line("/other", "", retries: 5)];

        var joined = AccessLogJoin.AddRetries(records, log);

        Assert.Equal([0, 2, null], joined.Select(r => r.Retries));
    }

    private static string Line(string path, string query, int retries)
    {
        var entry = new AccessLogEntry(DateTimeOffset.UnixEpoch, IPAddress.Loopback, "GET", "lb", path, query.Length == 0 ? "" : "?" + query, "HTTP/1.1", 200,
            TimeSpan.FromMilliseconds(1.5), 10, "default", "http://127.0.0.1:3001", retries, "a \"quoted\" agent", null, null);
        return AccessLogFormatterTests.Format(AccessLogFormat.Balancer, entry).TrimEnd('\n');
    }
}
