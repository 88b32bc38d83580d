namespace Balancer.Tests.Load.Proxy;

/// <summary>Tests that count every thread's allocations: they run one at a time, after the tests that run in parallel.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CountsEveryThread
{
    public const string Name = "counts every thread's allocations";
}
