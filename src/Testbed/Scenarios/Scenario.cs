using FakeBackends.Behaviors;
using Testbed.Load;

namespace Testbed.Scenarios;

/// <summary>A scenario file, read and checked: everything the runner needs, nothing it must still validate.</summary>
/// <param name="Teaches">The file's opening comment: what the scenario shows.</param>
/// <param name="BalancerConfig">The balancer's config.yaml, with <c>${name}</c> for each backend's address.</param>
/// <param name="ConfigFirstLine">The scenario line on which the inline config begins (for error messages), or 0 for a file.</param>
/// <param name="Redis">Whether the run starts a redis-server (its port is <c>${redis.port}</c> in the config).</param>
public sealed record Scenario(
    string Name,
    string Teaches,
    string Path,
    string BalancerConfig,
    int ConfigFirstLine,
    IReadOnlyList<BackendSpec> Backends,
    LoadOptions Load,
    IReadOnlyList<TimelineEvent> Timeline,
    IReadOnlyList<Expectation> Expectations,
    bool Redis = false)
{
    /// <summary>The placeholder for the port of the scenario's redis-server.</summary>
    public const string RedisPort = "redis.port";
}

/// <summary>How a fake backend gets into the balancer.</summary>
public enum Registration
{
    /// <summary>The balancer's config names it (<c>${name}</c>); it never registers by itself.</summary>
    None,

    /// <summary>It registers through the control plane when it starts and restarts, and leaves when stopped.</summary>
    ControlPlane,
}

/// <summary>One fake backend of a scenario (a group of <c>count</c> declares several: s1, s2, ...).</summary>
public sealed record BackendSpec(
    string Name, IReadOnlyList<IBehavior> Behaviors, Registration Register, bool Start,
    IReadOnlyList<string> Paths, IReadOnlyList<System.Net.IPNetwork> Clients, int? Weight);

/// <summary>Something that happens at <see cref="At"/> after the measured load begins.</summary>
public abstract record TimelineEvent(TimeSpan At)
{
    /// <summary>As a person would say it: <c>kill b2</c>.</summary>
    public abstract string Describe();

    /// <summary>Backend names for people: all of a few, the ends of many (<c>s1, s2, …, s200 (200 backends)</c>).</summary>
    internal static string Names(IReadOnlyList<string> names) =>
        names.Count <= 4 ? string.Join(", ", names) : $"{names[0]}, {names[1]}, …, {names[^1]} ({names.Count} backends)";
}

/// <summary>A lifecycle change of some backends: kill, refuse, restart, stop, start, register, deregister, drain.</summary>
public sealed record BackendEvent(TimeSpan At, BackendAction Action, IReadOnlyList<string> Backends) : TimelineEvent(At)
{
    public override string Describe() => $"{Action.ToString().ToLowerInvariant()} {Names(Backends)}";
}

public enum BackendAction
{
    Kill,
    Refuse,
    Restart,
    Stop,
    Start,
    Register,
    Deregister,
    Drain,
}

public sealed record SetBehaviorEvent(TimeSpan At, IReadOnlyList<string> Backends, IReadOnlyList<IBehavior> Behaviors) : TimelineEvent(At)
{
    public override string Describe() => $"{Names(Backends)} → {BehaviorCatalog.Describe(Behaviors)}";
}

public sealed record SetWeightEvent(TimeSpan At, IReadOnlyList<string> Backends, int Weight) : TimelineEvent(At)
{
    public override string Describe() => $"weight of {Names(Backends)} → {Weight}";
}

public sealed record RestartBalancerEvent(TimeSpan At) : TimelineEvent(At)
{
    public override string Describe() => "restart the balancer";
}

/// <summary><c>stop-redis</c> (killed, as in a crash: its data is gone) or <c>start-redis</c> (again, on its port).</summary>
public sealed record RedisEvent(TimeSpan At, bool Start) : TimelineEvent(At)
{
    public override string Describe() => Start ? "start redis" : "stop redis";
}

/// <summary><c>reload: { config: ... }</c>: the balancer's config.yaml replaced by this text (placeholders filled), then <c>POST /reload</c>.</summary>
public sealed record ReloadEvent(TimeSpan At, string Config) : TimelineEvent(At)
{
    public override string Describe() => "reload the balancer's configuration";
}
