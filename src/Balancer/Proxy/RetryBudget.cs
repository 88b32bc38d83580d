namespace Balancer.Proxy;

/// <summary>
/// How many retries a pool may still send: every request adds <c>budget-percent</c> hundredths of a retry, up to
/// <see cref="Burst"/> retries in hand, and every retry spends one. When backends fail wholesale, retries then add at
/// most that percentage to their load instead of multiplying it. As in Envoy's retry budget, up to
/// <see cref="MinConcurrency"/> retries may be in flight whatever the budget: a small pool, or one backend timing out
/// in a quiet one, would otherwise run dry while retrying costs almost nothing. Lock-free.
/// </summary>
internal sealed class RetryBudget(int percent)
{
    /// <summary>Retries a quiet pool has in hand.</summary>
    public const int Burst = 10;

    /// <summary>Retries in flight that are always allowed (with a budget above zero).</summary>
    public const int MinConcurrency = 3;

    private int _inFlight;

    /// <summary>The pool's <c>budget-percent</c> this budget was made for.</summary>
    public int Percent => percent;

    private const long Unit = 100;
    private long _hundredths = percent > 0 ? Burst * Unit : 0;

    public void RecordRequest()
    {
        if (percent <= 0)
        {
            return;
        }

        long current, next;
        do
        {
            current = Volatile.Read(ref _hundredths);
            next = Math.Min(current + percent, Burst * Unit);
        }
        while (current != next && Interlocked.CompareExchange(ref _hundredths, next, current) != current);
    }

    /// <summary>Asks for one retry; when granted, <see cref="Done"/> must follow once that try is over.</summary>
    public bool TryTake()
    {
        if (percent <= 0)
        {
            return false;
        }

        if (Interlocked.Increment(ref _inFlight) <= MinConcurrency || Spend())
        {
            return true;
        }

        Interlocked.Decrement(ref _inFlight);
        return false;
    }

    /// <summary>A granted retry is over.</summary>
    public void Done() => Interlocked.Decrement(ref _inFlight);

    private bool Spend()
    {
        long current;
        do
        {
            current = Volatile.Read(ref _hundredths);
            if (current < Unit)
            {
                return false;
            }
        }
        while (Interlocked.CompareExchange(ref _hundredths, current - Unit, current) != current);

        return true;
    }
}
