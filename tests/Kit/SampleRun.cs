using Testbed.Load;
using Testbed.Scenarios;

namespace Balancer.Tests.Kit;

/// <summary>
/// A finished scenario run made up without running anything: three backends for ten seconds at 100 requests/s,
/// b2 killed at 3 s (five failed requests, then nothing to it) and back at 7 s. For testing reports.
/// </summary>
public static class SampleRun
{
    public const string Yaml = """
        # b2 <dies> & comes back.
        balancer:
          config: |
            backends:
              - address: ${b1}
              - address: ${b2}
              - address: ${b3}
        backends:
          - name: b1
          - name: b2
          - name: b3
        load:
          rate: 100
          duration: 10s
        timeline:
          - at: 3s
            kill: b2
          - at: 7s
            restart: b2
        expect:
          - error-rate: 0
          - no-requests-to: b2
            from: 3.5s
            to: 7s
        """;

    public static ScenarioResult Create(string directory)
    {
        var (scenario, errors) = ScenarioReader.Read(Yaml, Path.Combine(directory, "sample.yaml"));
        if (scenario is null)
        {
            throw new InvalidOperationException(string.Join("\n", errors));
        }

        var history = new List<RequestRecord>();
        var failed = 0;
        for (var i = 0; i < 1000; i++)
        {
            var due = TimeSpan.FromMilliseconds(i * 10);
            var down = due >= TimeSpan.FromSeconds(3) && due < TimeSpan.FromSeconds(7);
            var backend = (i % 3, down) switch
            {
                (1, true) when failed < 5 => null,
                (1, true) => "b" + (1 + (2 * (i % 2))),
                (var n, _) => "b" + (n + 1),
            };
            if (backend is null)
            {
                failed++;
            }

            history.Add(new RequestRecord(i, due, TimeSpan.FromMilliseconds(backend is null ? 1 : 2 + (i % 7) + (down ? 20 : 0)), "127.0.0.1", "GET", "/", backend is null ? 502 : 200, backend,
                backend is null ? "connection refused" : null, backend is null ? 0 : i % 50 == 0 ? 1 : 0));
        }

        var events = new List<EventOutcome>
        {
            new(TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(3.01), "kill b2", null),
            new(TimeSpan.FromSeconds(7), TimeSpan.FromSeconds(7.02), "restart b2", null),
        };
        return new ScenarioResult(scenario, history, events, [.. scenario.Expectations.Select(e => e.Evaluate(history))], [], directory, new DateTimeOffset(2026, 11, 21, 12, 0, 0, TimeSpan.Zero));
    }
}
