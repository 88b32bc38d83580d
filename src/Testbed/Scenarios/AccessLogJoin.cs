using System.Globalization;
using System.Text.RegularExpressions;
using Testbed.Load;

namespace Testbed.Scenarios;

/// <summary>
/// Adds to each recorded request what only the balancer knows, from its access log: how many times it was retried.
/// Requests are matched by the tag the load generator put in their query (<c>lb-request=ID</c>).
/// </summary>
internal static partial class AccessLogJoin
{
    public static IReadOnlyList<RequestRecord> AddRetries(IReadOnlyList<RequestRecord> records, IEnumerable<string> accessLog)
    {
        var retries = new Dictionary<long, int>();
        foreach (var line in accessLog)
        {
            var match = Line().Match(line);
            if (match.Success)
            {
                retries[long.Parse(match.Groups["id"].Value, CultureInfo.InvariantCulture)] = int.Parse(match.Groups["retries"].Value, CultureInfo.InvariantCulture);
            }
        }

        return [.. records.Select(r => retries.TryGetValue(r.Id, out var count) ? r with { Retries = count } : r)];
    }

    // ... "GET /path?lb-request=42 HTTP/1.1" 200 1.234 default http://127.0.0.1:3001 0 "user-agent"
    [GeneratedRegex(@"[?&]" + LoadGenerator.TagParameter + @"=(?<id>\d+)[^""]*"" \d+ [\d.]+ \S+ \S+ (?<retries>\d+) """)]
    private static partial Regex Line();
}
