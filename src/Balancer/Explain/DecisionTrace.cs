using System.Globalization;
using System.Text;

namespace Balancer.Explain;

/// <summary>
/// What the balancer decided for one request that asked to be explained, and why: written by the proxy steps as the
/// request goes (<see cref="ExplainStep"/>, the retry step), read by <c>GET /explain/{id}</c> at any moment (possibly
/// while the request is still going: <see cref="ExplainView.Complete"/> says), and summed up in the response's
/// <c>X-Balancer-Explain</c> header. Only explained requests have one; every member takes a lock, which nothing else
/// contends for but a concurrent read of the same trace.
/// </summary>
internal sealed class DecisionTrace(string method, string path, string? client, DateTimeOffset time)
{
    /// <summary>The compact header is cut here: proxies and clients limit a header's size, and the full trace is a GET away.</summary>
    public const int MaxCompactLength = 1024;

    /// <summary>Backends listed one by one; a bigger pool's others are counted, so that a trace stays small.</summary>
    public const int MaxCandidates = 256;

    /// <summary>Excluded backends the compact header names; the full trace has the rest.</summary>
    public const int MaxCompactExclusions = 8;

    private readonly Lock _lock = new();
    private readonly List<CandidateView> _candidates = [];
    private readonly Dictionary<string, int> _candidateIndex = new(StringComparer.OrdinalIgnoreCase);
    private int _unlisted;
    private int _unlistedAvailable;
    private readonly List<TryView> _tries = [];
    private readonly List<string> _notes = [];
    private string? _route;
    private string? _pool;
    private string? _algorithm;
    private int? _status;
    private double? _durationMs;
    private bool _complete;

    /// <summary>Set once by <see cref="ExplainLog.Add"/>: the trace id, made unique among those kept.</summary>
    public string Id { get; set; } = "";

    public string? Client => client;

    public string Path => path;

    public string? Algorithm
    {
        get
        {
            lock (_lock)
            {
                return _algorithm;
            }
        }
    }

    /// <summary>What path and client restrictions excluded has been noted (past the restriction step, or refused by it).</summary>
    public bool RestrictionsNoted { get; set; }

    /// <summary><see cref="MaxCandidates"/> are listed: the rest are only counted (<see cref="Unlisted"/>).</summary>
    public bool CandidatesFull
    {
        get
        {
            lock (_lock)
            {
                return _candidates.Count >= MaxCandidates;
            }
        }
    }

    /// <summary>The backends that two random draws weighed in the current try (power of two choices), as the policy saw them.</summary>
    public (string First, int FirstInFlight, string Second, int SecondInFlight)? Drawn { get; set; }

    public void Matched(string route, string pool, string algorithm)
    {
        lock (_lock)
        {
            (_route, _pool, _algorithm) = (route, pool, algorithm);
        }
    }

    /// <param name="excluded">Why it may not take this request; null when it may.</param>
    public void Candidate(string backend, int weight, double effectiveWeight, int inFlight, string? excluded)
    {
        lock (_lock)
        {
            if (_candidates.Count >= MaxCandidates)
            {
                _unlisted++;
                _unlistedAvailable += excluded is null ? 1 : 0;
                return;
            }

            _candidateIndex.TryAdd(backend, _candidates.Count);
            _candidates.Add(new CandidateView(backend, excluded is null, excluded, weight, Math.Round(effectiveWeight, 3), inFlight));
        }
    }

    /// <summary>A backend past <see cref="MaxCandidates"/>: counted, available or not.</summary>
    public void Unlisted(bool available)
    {
        lock (_lock)
        {
            _unlisted++;
            _unlistedAvailable += available ? 1 : 0;
        }
    }

    /// <summary>A backend that was available is not for this request (restricted by path or client).</summary>
    public void Exclude(string backend, string reason)
    {
        lock (_lock)
        {
            if (_candidateIndex.TryGetValue(backend, out var i) && _candidates[i].Available)
            {
                _candidates[i] = _candidates[i] with { Available = false, Excluded = reason };
            }
        }
    }

    /// <summary>The backends available for this request, after every exclusion.</summary>
    public IReadOnlyList<string> AvailableBackends()
    {
        lock (_lock)
        {
            return [.. _candidates.Where(c => c.Available).Select(c => c.Backend)];
        }
    }

    public void Note(string note)
    {
        lock (_lock)
        {
            _notes.Add(note);
        }
    }

    /// <summary>A try begins, with <paramref name="candidates"/> backends to pick from.</summary>
    public void BeginTry(int number, int candidates, string affinity)
    {
        lock (_lock)
        {
            Drawn = null;
            _tries.Add(new TryView(number, candidates, affinity, null, null, null, null, null, null, null, null, null));
        }
    }

    /// <param name="key">The hash key's value, when the pick was by one; kept out of the header.</param>
    public void Picked(string backend, string reason, string? key) => UpdateTry(t => t with { Picked = backend, Reason = reason, Key = key });

    /// <summary>The try went elsewhere than the algorithm's pick.</summary>
    public void SentTo(string backend, string why) => UpdateTry(t => t with { SentTo = backend, Redirected = why });

    /// <param name="backend">Where it was sent; null when it never was (no backend, all at their limit).</param>
    public void EndTry(string? backend, string outcome, int status, TimeSpan elapsed) =>
        UpdateTry(t => t with { SentTo = backend ?? t.SentTo, Outcome = outcome, Status = status, DurationMs = Math.Round(elapsed.TotalMilliseconds, 3) });

    public void Retried(string why) => UpdateTry(t => t with { Retried = why });

    public void End(int status, TimeSpan elapsed)
    {
        lock (_lock)
        {
            _status = status;
            _durationMs = Math.Round(elapsed.TotalMilliseconds, 3);
            _complete = true;
        }
    }

    public ExplainView View()
    {
        lock (_lock)
        {
            List<string> notes = [.. _notes];
            if (_unlisted > 0)
            {
                notes.Insert(0, string.Create(CultureInfo.InvariantCulture, $"{_unlisted} more backends of the pool are not listed ({_unlistedAvailable} of them available before path and client restrictions)"));
            }

            return new ExplainView(Id, time, method, path, client, _route, _pool, _algorithm, _complete, _status, _durationMs, [.. _candidates], [.. _tries], notes);
        }
    }

    public ExplainSummary Summary()
    {
        lock (_lock)
        {
            return new ExplainSummary(Id, time, method, path, _status, _pool, _tries.Count > 0 ? _tries[^1].SentTo ?? _tries[^1].Picked : null, _complete);
        }
    }

    /// <summary>
    /// The response header: id, pool, how many backends were available, each try's backend, the algorithm's reason,
    /// its outcome when it failed and why it was retried, and what the first few excluded were excluded for (in a word). Printable ASCII only, at most
    /// <see cref="MaxCompactLength"/> characters; hash key values (a header's or cookie's) are left to the full trace.
    /// </summary>
    public string Compact()
    {
        var text = new StringBuilder();
        lock (_lock)
        {
            text.Append("id=").Append(Id);
            if (_pool is not null)
            {
                text.Append("; pool=").Append(_pool);
            }

            var excluded = _candidates.Where(c => !c.Available).ToList();
            text.Append(CultureInfo.InvariantCulture, $"; available={_candidates.Count - excluded.Count + _unlistedAvailable}/{_candidates.Count + _unlisted}");
            // Tries before exclusions: in a big pool the list of those left out must not push them past the cut.
            foreach (var t in _tries)
            {
                text.Append(CultureInfo.InvariantCulture, $"; try {t.Number}=");
                text.Append(t.SentTo ?? t.Picked ?? "none");
                if (t.Reason is not null)
                {
                    text.Append(" (").Append(t.Reason).Append(')');
                }

                if (t.Redirected is not null)
                {
                    text.Append(" (").Append(t.Redirected).Append(')');
                }

                if (t.Outcome is not null and not "success")
                {
                    text.Append(" -> ").Append(t.Outcome);
                    if (t.Status is { } status)
                    {
                        text.Append(CultureInfo.InvariantCulture, $" {status}");
                    }
                }

                if (t.Retried is not null)
                {
                    text.Append(" retried: ").Append(t.Retried);
                }
            }

            if (excluded.Count > 0)
            {
                text.Append("; excluded=").AppendJoin(", ", excluded.Take(MaxCompactExclusions).Select(c => $"{c.Backend} {Word(c.Excluded!)}"));
                if (excluded.Count > MaxCompactExclusions)
                {
                    text.Append(CultureInfo.InvariantCulture, $", and {excluded.Count - MaxCompactExclusions} more");
                }
            }
        }

        return Printable(text);
    }

    /// <summary>The first words of an exclusion reason, up to a colon: "unhealthy since ...: GET /health ..." is "unhealthy since ...".</summary>
    private static string Word(string reason)
    {
        var colon = reason.IndexOf(": ", StringComparison.Ordinal);
        return colon < 0 ? reason : reason[..colon];
    }

    private static string Printable(StringBuilder text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] is < ' ' or > '~')
            {
                text[i] = '?';
            }
        }

        if (text.Length > MaxCompactLength)
        {
            text.Length = MaxCompactLength - 3;
            text.Append("...");
        }

        return text.ToString();
    }

    private void UpdateTry(Func<TryView, TryView> change)
    {
        lock (_lock)
        {
            if (_tries.Count > 0)
            {
                _tries[^1] = change(_tries[^1]);
            }
        }
    }
}

/// <summary>The full decision trace of one request, as <c>GET /explain/{id}</c> shows it.</summary>
/// <param name="Complete">The request is over; until then tries and the status may still be added.</param>
/// <param name="Candidates">Every backend of the pool, each available or excluded and why.</param>
/// <param name="Notes">What else decided the outcome: panic mode, a refused retry, no backend at all.</param>
internal sealed record ExplainView(
    string Id, DateTimeOffset Time, string Method, string Path, string? Client, string? Route, string? Pool, string? Algorithm, bool Complete,
    int? Status, double? DurationMs, IReadOnlyList<CandidateView> Candidates, IReadOnlyList<TryView> Tries, IReadOnlyList<string> Notes);

/// <param name="Excluded">Why it could not take this request (unhealthy since..., ejected until..., draining, weight 0, restricted...).</param>
/// <param name="EffectiveWeight">Its weight now, lower while it ramps up (slow start).</param>
/// <param name="InFlight">Requests in flight to it when this request arrived.</param>
internal sealed record CandidateView(string Backend, bool Available, string? Excluded, int Weight, double EffectiveWeight, int InFlight);

/// <param name="Candidates">How many backends this try could go to.</param>
/// <param name="Affinity">Session affinity for this try: whether a sticky session chose the backend.</param>
/// <param name="Picked">The algorithm's pick.</param>
/// <param name="Reason">The algorithm's reason for it.</param>
/// <param name="Key">The hash key's value, for the hashing algorithms.</param>
/// <param name="SentTo">Where the try went: the pick, unless slow start or a concurrency limit sent it elsewhere.</param>
/// <param name="Redirected">Why it went elsewhere than the pick.</param>
/// <param name="Outcome">success, status_5xx, error, timeout, cancelled, or no-backend.</param>
/// <param name="Retried">Why the request went on to another try after this one.</param>
internal sealed record TryView(
    int Number, int Candidates, string Affinity, string? Picked, string? Reason, string? Key, string? SentTo, string? Redirected,
    string? Outcome, int? Status, double? DurationMs, string? Retried);

/// <summary>One line of <c>GET /explain</c>: the explained requests kept, newest first.</summary>
internal sealed record ExplainSummary(string Id, DateTimeOffset Time, string Method, string Path, int? Status, string? Pool, string? Backend, bool Complete);
