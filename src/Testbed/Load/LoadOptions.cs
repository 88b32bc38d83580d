using System.Net;

namespace Testbed.Load;

/// <summary>How load is offered.</summary>
public enum LoadModel
{
    /// <summary>
    /// Requests arrive at a fixed rate whatever happens to earlier ones, as independent users do. Latency runs from
    /// when a request was due, so a stalled server shows as latency rather than as fewer requests (no coordinated omission).
    /// </summary>
    Open,

    /// <summary>A fixed number of clients, each sending its next request when the previous one is answered.</summary>
    Closed,
}

/// <summary>A path to request, and how often relative to the others.</summary>
public sealed record WeightedPath(string Path, int Weight = 1);

/// <summary>One load run: bounded in time and requests, loopback only.</summary>
public sealed record LoadOptions
{
    /// <summary>The proxy (or backend) to load: a loopback http(s) address.</summary>
    public required Uri Target { get; init; }

    public LoadModel Model { get; init; } = LoadModel.Open;

    /// <summary>Open model: requests per second.</summary>
    public double Rate { get; init; } = 100;

    /// <summary>Closed model: clients each with one request in flight.</summary>
    public int Concurrency { get; init; } = 8;

    /// <summary>Measured time; requests are due from 0 to this.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Load before the measured time, left out of every statistic (JIT, connection pools, caches).</summary>
    public TimeSpan Warmup { get; init; }

    /// <summary>No more than this many measured requests, whatever the rate and duration.</summary>
    public int MaxRequests { get; init; } = 1_000_000;

    /// <summary>A request unanswered this long counts as failed (status 0).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Open model: beyond this many requests in flight, a due request is not sent and counts as failed.</summary>
    public int MaxInFlight { get; init; } = 10_000;

    public IReadOnlyList<WeightedPath> Paths { get; init; } = [new("/")];

    public IReadOnlyList<string> Methods { get; init; } = ["GET"];

    /// <summary>Source addresses, one client each, taken in turn (127.0.0.2, 127.0.0.3, ... to look like several clients).</summary>
    public IReadOnlyList<IPAddress> Clients { get; init; } = [IPAddress.Loopback];

    /// <summary>Each client keeps the cookies it is sent and sends them back (a browser's cookie jar: sticky sessions by cookie).</summary>
    public bool Cookies { get; init; }

    /// <summary>Tag each request with <c>?lb-request=ID</c>, so other records of it (an access log) can be joined.</summary>
    public bool TagRequests { get; init; }

    /// <summary>Seeds the choice of path, method and client: the same options give the same request sequence.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>What is wrong with these options, if anything.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (!Target.IsAbsoluteUri || Target.Scheme is not ("http" or "https"))
        {
            problems.Add($"target: {Target} is not an http(s) address");
        }
        else if (!IsLoopback(Target.Host))
        {
            problems.Add($"target: {Target.Host} is not a loopback address: load runs stay on this machine (127.0.0.0/8, ::1, localhost)");
        }

        problems.AddRange(Clients.Where(c => !IPAddress.IsLoopback(c)).Select(c => $"clients: {c} is not a loopback address"));
        if (Model == LoadModel.Open && Rate is <= 0 or > 100_000)
        {
            problems.Add($"rate: {Rate} is not between 0 and 100000 requests per second");
        }

        if (Model == LoadModel.Closed && Concurrency is < 1 or > 10_000)
        {
            problems.Add($"concurrency: {Concurrency} is not between 1 and 10000");
        }

        if (Duration <= TimeSpan.Zero || Duration > TimeSpan.FromHours(1))
        {
            problems.Add($"duration: {Duration} is not above 0 and at most an hour");
        }

        if (Warmup < TimeSpan.Zero || Warmup > TimeSpan.FromMinutes(10))
        {
            problems.Add($"warmup: {Warmup} is not between 0 and 10 minutes");
        }

        if (Paths.Count == 0 || Paths.Any(p => !p.Path.StartsWith('/') || p.Weight < 1))
        {
            problems.Add("paths: each must start with / and have a weight of at least 1");
        }

        if (Methods.Count == 0)
        {
            problems.Add("methods: at least one is needed");
        }

        return problems;
    }

    private static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
}

/// <summary>
/// One request as the client saw it. <paramref name="Due"/> is when it was due (open model) or sent (closed), from the
/// start of the measured time; <paramref name="Latency"/> runs from then to the end of the answer.
/// </summary>
/// <param name="Status">The HTTP status; 0 when no answer came (refused, reset, timed out, not sent).</param>
/// <param name="Backend">The backend that answered (its <c>X-Backend</c> header), if any.</param>
/// <param name="Retries">Tries after the first, from the balancer's access log; null when not known.</param>
/// <param name="Cache">The answer's <c>X-Cache</c> (HIT, MISS, BYPASS), if it had one.</param>
public sealed record RequestRecord(
    long Id, TimeSpan Due, TimeSpan Latency, string Client, string Method, string Path, int Status, string? Backend, string? Error, int? Retries = null, string? Cache = null)
{
    /// <summary>No answer, or a 5xx.</summary>
    public bool Failed => Status is 0 or >= 500;
}
