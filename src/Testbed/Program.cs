using System.CommandLine;
using System.Globalization;
using System.Net;
using Balancer.Configuration;
using Testbed.Load;
using Testbed.Reports;
using Testbed.Scenarios;

namespace Testbed;

/// <summary>
/// <c>run</c> replays scenario files; <c>check</c> only reads them; <c>load</c> offers load to a loopback address.
/// Exit codes: 0 when everything held, 1 when an expectation or threshold did not, 2 for bad input.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("The chaos testbed: replay scenario files against a real balancer and fake backends, or offer load to one address.");
        root.Subcommands.Add(RunCommand());
        root.Subcommands.Add(CheckCommand());
        root.Subcommands.Add(LoadCommand());
        return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
    }

    private static Command RunCommand()
    {
        var files = new Argument<string[]>("scenarios") { Description = "Scenario files, or directories of them (*.yaml).", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string?>("--out") { Description = "Where reports go (default: scenario-results/<time>/<scenario>)." };
        var quiet = new Option<bool>("--quiet") { Description = "No progress while running; the results only." };
        var command = new Command("run", "Replay scenarios: start everything, run the timeline under load, judge the expectations, write reports.") { files, output, quiet };
        command.SetAction(async (parsed, cancellationToken) =>
        {
            var (scenarios, errors) = ReadAll(parsed.GetValue(files)!);
            if (errors.Count > 0)
            {
                return await FailAsync(errors).ConfigureAwait(false);
            }

            var baseDirectory = parsed.GetValue(output) ?? Path.Combine("scenario-results", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            var runner = new ScenarioRunner(parsed.GetValue(quiet) ? null : Console.Out);
            var failed = 0;
            foreach (var scenario in scenarios)
            {
                var directory = Path.GetFullPath(scenarios.Count == 1 && parsed.GetValue(output) is not null ? baseDirectory : Path.Combine(baseDirectory, scenario.Name));
                ScenarioResult result;
                try
                {
                    result = await runner.RunAsync(scenario, directory, cancellationToken).ConfigureAwait(false);
                }
                catch (ScenarioException e)
                {
                    await Console.Error.WriteLineAsync($"{scenario.Name}: could not be set up: {e.Message}").ConfigureAwait(false);
                    failed++;
                    continue;
                }

                await ScenarioReport.WriteAsync(result, cancellationToken).ConfigureAwait(false);
                failed += result.Passed ? 0 : 1;
                Console.WriteLine($"{scenario.Name}: {(result.Passed ? "PASSED" : "FAILED")}");
                foreach (var e in result.Expectations)
                {
                    Console.WriteLine($"  {(e.Passed ? "pass" : "FAIL")}  {e.Expectation}: {e.Measured}");
                    foreach (var line in e.Evidence)
                    {
                        Console.WriteLine($"          {line}");
                    }
                }

                foreach (var problem in result.Problems)
                {
                    Console.WriteLine($"  FAIL  {problem}");
                }

                if (result.StallNote is { } stalls)
                {
                    Console.WriteLine($"  note  {stalls}");
                }

                Console.WriteLine($"  report: {Path.Combine(directory, ScenarioReport.Html)}");
            }

            if (scenarios.Count > 1)
            {
                Console.WriteLine($"{scenarios.Count - failed} passed, {failed} failed");
            }

            return failed == 0 ? 0 : 1;
        });
        return command;
    }

    private static Command CheckCommand()
    {
        var files = new Argument<string[]>("scenarios") { Description = "Scenario files, or directories of them.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("check", "Read scenario files and report every problem, without running anything.") { files };
        command.SetAction(async parsed =>
        {
            var (scenarios, errors) = ReadAll(parsed.GetValue(files)!);
            if (errors.Count > 0)
            {
                return await FailAsync(errors).ConfigureAwait(false);
            }

            foreach (var scenario in scenarios)
            {
                Console.WriteLine($"{scenario.Name}: {scenario.Backends.Count} backend(s), {scenario.Timeline.Count} event(s), {scenario.Expectations.Count} expectation(s)");
            }

            return 0;
        });
        return command;
    }

    private static Command LoadCommand()
    {
        var target = new Argument<string>("target") { Description = "A loopback http(s) address, e.g. http://127.0.0.1:5000/" };
        var rate = new Option<double?>("--rate") { Description = "Open model: requests per second (default 100)." };
        var concurrency = new Option<int?>("--concurrency") { Description = "Closed model: clients, each waiting for its answer before sending again." };
        var duration = new Option<string>("--duration") { Description = "Measured time.", DefaultValueFactory = _ => "10s" };
        var warmup = new Option<string>("--warmup") { Description = "Load before the measured time, not counted.", DefaultValueFactory = _ => "0s" };
        var timeout = new Option<string>("--timeout") { Description = "A request unanswered this long fails.", DefaultValueFactory = _ => "10s" };
        var paths = new Option<string[]>("--path") { Description = "Paths to request, in turn (repeatable).", DefaultValueFactory = _ => ["/"] };
        var methods = new Option<string[]>("--method") { Description = "Methods, in turn (repeatable).", DefaultValueFactory = _ => ["GET"] };
        var clients = new Option<string[]>("--client") { Description = "Source addresses, one client each (repeatable): 127.0.0.2, ...", DefaultValueFactory = _ => ["127.0.0.1"] };
        var maxRequests = new Option<int>("--max-requests") { Description = "Stop after this many measured requests.", DefaultValueFactory = _ => 1_000_000 };
        var output = new Option<string?>("--out") { Description = "Also write load.md, load.csv and load.json here." };
        var maxErrorRate = new Option<double?>("--max-error-rate") { Description = "Threshold: failed share (0..1)." };
        var maxP50 = new Option<string?>("--max-p50") { Description = "Threshold: p50 latency." };
        var maxP99 = new Option<string?>("--max-p99") { Description = "Threshold: p99 latency." };
        var minRps = new Option<double?>("--min-rps") { Description = "Threshold: requests per second." };
        var command = new Command("load", "Offer load to one loopback address and report latency percentiles, statuses and backends.")
        {
            target, rate, concurrency, duration, warmup, timeout, paths, methods, clients, maxRequests, output, maxErrorRate, maxP50, maxP99, minRps,
        };
        command.SetAction(async (parsed, cancellationToken) =>
        {
            var problems = new List<string>();
            TimeSpan Duration(Option<string> option)
            {
                if (ValueParsers.Duration(parsed.GetValue(option)!, out var value, out var error))
                {
                    return value;
                }

                problems.Add($"{option.Name}: {error}");
                return TimeSpan.Zero;
            }

            TimeSpan? Limit(Option<string?> option) => parsed.GetValue(option) is null ? null : ValueParsers.Duration(parsed.GetValue(option)!, out var value, out var error) ? value : Problem(option.Name, error);
            TimeSpan? Problem(string name, string error)
            {
                problems.Add($"{name}: {error}");
                return null;
            }

            var addresses = new List<IPAddress>();
            foreach (var client in parsed.GetValue(clients)!)
            {
                if (IPAddress.TryParse(client, out var address))
                {
                    addresses.Add(address);
                }
                else
                {
                    problems.Add($"--client: {client} is not an IP address");
                }
            }

            if (!Uri.TryCreate(parsed.GetValue(target), UriKind.Absolute, out var uri))
            {
                problems.Add($"target: {parsed.GetValue(target)} is not an address");
                uri = new Uri("http://127.0.0.1/");
            }

            var options = new LoadOptions
            {
                Target = uri,
                Model = parsed.GetValue(concurrency) is null ? LoadModel.Open : LoadModel.Closed,
                Rate = parsed.GetValue(rate) ?? 100,
                Concurrency = parsed.GetValue(concurrency) ?? 8,
                Duration = Duration(duration),
                Warmup = Duration(warmup),
                Timeout = Duration(timeout),
                MaxRequests = parsed.GetValue(maxRequests),
                Paths = [.. parsed.GetValue(paths)!.Select(p => new WeightedPath(p))],
                Methods = [.. parsed.GetValue(methods)!.Select(m => m.ToUpperInvariant())],
                Clients = addresses,
            };
            var thresholds = new LoadThresholds(parsed.GetValue(maxErrorRate), Limit(maxP50), Limit(maxP99), parsed.GetValue(minRps));
            if (parsed.GetValue(rate) is not null && parsed.GetValue(concurrency) is not null)
            {
                problems.Add("--rate and --concurrency: give one (open model: a rate; closed model: clients)");
            }

            problems.AddRange(options.Validate());
            if (problems.Count > 0)
            {
                return await FailAsync(problems).ConfigureAwait(false);
            }

            await using var generator = new LoadGenerator(options);
            var result = await generator.RunAsync(cancellationToken).ConfigureAwait(false);
            var broken = thresholds.Check(result.Summary);
            var markdown = LoadReport.Markdown(result, broken);
            Console.WriteLine(markdown);
            if (parsed.GetValue(output) is { } directory)
            {
                Directory.CreateDirectory(directory);
                await File.WriteAllTextAsync(Path.Combine(directory, "load.md"), markdown, cancellationToken).ConfigureAwait(false);
                await File.WriteAllTextAsync(Path.Combine(directory, "load.csv"), LoadReport.Csv(result.Records), cancellationToken).ConfigureAwait(false);
                await File.WriteAllTextAsync(Path.Combine(directory, "load.json"), LoadReport.Json(result), cancellationToken).ConfigureAwait(false);
            }

            return broken.Count == 0 ? 0 : 1;
        });
        return command;
    }

    private static (List<Scenario> Scenarios, List<string> Errors) ReadAll(IEnumerable<string> paths)
    {
        var scenarios = new List<Scenario>();
        var errors = new List<string>();
        foreach (var path in paths)
        {
            var files = Directory.Exists(path) ? Directory.GetFiles(path, "*.yaml").Order(StringComparer.Ordinal).ToArray() : [path];
            if (files.Length == 0)
            {
                errors.Add($"{path}: no *.yaml scenario files in it");
            }

            foreach (var file in files)
            {
                var (scenario, problems) = ScenarioReader.ReadFile(file);
                errors.AddRange(problems);
                if (scenario is not null)
                {
                    scenarios.Add(scenario);
                }
            }
        }

        return (scenarios, errors);
    }

    private static async Task<int> FailAsync(IEnumerable<string> problems)
    {
        foreach (var problem in problems)
        {
            await Console.Error.WriteLineAsync(problem).ConfigureAwait(false);
        }

        return 2;
    }
}
