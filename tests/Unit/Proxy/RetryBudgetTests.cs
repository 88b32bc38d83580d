using Balancer.Proxy;

namespace Balancer.Tests.Unit.Proxy;

public sealed class RetryBudgetTests
{
    [Theory]
    [InlineData(20, 1000)]
    [InlineData(50, 400)]
    [InlineData(5, 10_000)]
    public void TryTake_WhenEverythingFails_RetriesStayWithinTheBudgetPlusABurst(int percent, int requests)
    {
        var budget = new RetryBudget(percent);
        var retries = 0;
        for (var i = 0; i < requests; i++)
        {
            budget.RecordRequest();
            while (budget.TryTake())
            {
                retries++;
            }
        }

        Assert.InRange(retries, requests * percent / 100, (requests * percent / 100) + RetryBudget.Burst + RetryBudget.MinConcurrency);
    }

    [Fact]
    public void TryTake_AFewRetriesInFlight_AreAllowedWhateverTheBudget()
    {
        var budget = new RetryBudget(20);
        while (budget.TryTake())
        {
        }

        for (var i = 0; i < RetryBudget.MinConcurrency + RetryBudget.Burst; i++)
        {
            budget.Done(); // every retry granted so far is over
        }

        Assert.True(budget.TryTake()); // the budget is spent, but no retry is in flight
        Assert.True(budget.TryTake());
        Assert.True(budget.TryTake());
        Assert.False(budget.TryTake()); // a fourth at once needs budget
        budget.Done();
        Assert.True(budget.TryTake());
    }

    [Fact]
    public void TryTake_ZeroPercent_NeverRetries()
    {
        var budget = new RetryBudget(0);
        budget.RecordRequest();

        Assert.False(budget.TryTake());
    }

    [Fact]
    public void TryTake_AfterAQuietSpell_AllowsABurst()
    {
        var budget = new RetryBudget(20);

        var burst = 0;
        while (budget.TryTake())
        {
            burst++;
        }

        Assert.Equal(RetryBudget.Burst + RetryBudget.MinConcurrency, burst);
    }
}
