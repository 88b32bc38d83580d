namespace Balancer.RateLimiting;

/// <summary>
/// A token bucket kept as one number, the generic cell rate algorithm's theoretical arrival time (TAT): the time at
/// which the bucket would be full again. A bucket of <c>burst</c> tokens refilled one per <c>interval</c> allows a
/// request at <c>now</c> when <c>TAT - now ≤ (burst - 1) · interval</c>, and the request moves TAT one interval on
/// (from now, if TAT has passed: a full bucket holds no more than its burst, however long it sat idle). The same
/// arithmetic runs locally (<see cref="LocalBuckets"/>) and in Redis (<see cref="SharedBuckets"/>' script), so a pool
/// limits the same way in both. A TAT at or before now is a full bucket: the same as no bucket, so it can be dropped.
/// </summary>
internal static class Gcra
{
    /// <param name="tat">The bucket's theoretical arrival time; at or before <paramref name="now"/> (or 0) for a full bucket.</param>
    /// <returns>
    /// Whether the request may go; the new TAT when it may; how long until the next token when it may not; and the
    /// tokens left after this request.
    /// </returns>
    public static Decision Take(long tat, long now, long interval, int burst)
    {
        var from = Math.Max(tat, now);
        var allowAt = from - ((burst - 1) * interval);
        if (now < allowAt)
        {
            return new Decision(false, tat, allowAt - now, 0);
        }

        var next = from + interval;
        return new Decision(true, next, 0, (int)(((burst * interval) - (next - now)) / interval));
    }

    /// <param name="Tat">The bucket's TAT after the decision (unchanged when refused).</param>
    /// <param name="RetryAfter">When refused, the time until a token is there again; otherwise 0.</param>
    /// <param name="Remaining">Requests the client may still send at once.</param>
    internal readonly record struct Decision(bool Allowed, long Tat, long RetryAfter, int Remaining);
}
