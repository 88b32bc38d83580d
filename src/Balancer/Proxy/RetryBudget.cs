namespace Balancer.Proxy;

/// <summary>
/// How many retries a pool may still send: every request adds <c>budget-percent</c> hundredths of a retry, up to
/// <see cref="Burst"/> retries in hand, and every retry spends one. When backends fail wholesale, retries then add at
/// most that percentage to their load instead of multiplying it. Lock-free.
/// </summary>
internal sealed class RetryBudget(int percent)
{
    /// <summary>Retries a quiet pool has in hand.</summary>
    public const int Burst = 10;

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

    public bool TryTake()
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
