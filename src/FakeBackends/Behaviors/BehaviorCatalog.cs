using System.Text.RegularExpressions;
using Balancer.Configuration;

namespace FakeBackends.Behaviors;

/// <summary>The clock and randomness behaviors use; tests pin both.</summary>
public sealed record BehaviorEnvironment(TimeProvider Time, Random Random)
{
    public static BehaviorEnvironment System { get; } = new(TimeProvider.System, Random.Shared);
}

/// <summary>
/// Every behavior by name, and the one way they are written, in scenario files, on the command line
/// (<c>--behavior</c>) and to the control endpoint alike: a list whose items are a bare name (<c>hang</c>) or a
/// mapping of one name to its settings, optionally with <c>path</c> (<c>fail: { status: 500, rate: 0.1 }, path: /api</c>).
/// <c>healthy</c> stands for no misbehavior at all.
/// </summary>
public static partial class BehaviorCatalog
{
    public const string Healthy = "healthy";

    private static readonly Dictionary<string, Func<ConfigSection, BehaviorEnvironment, IBehavior?>> Readers = new(StringComparer.OrdinalIgnoreCase)
    {
        [Latency.Name] = Latency.Read,
        [Fail.Name] = Fail.Read,
        [Flap.Name] = Flap.Read,
        [Hang.Name] = Hang.Read,
        [Reset.Name] = Reset.Read,
        [SlowClose.Name] = SlowClose.Read,
        [Trickle.Name] = Trickle.Read,
        [CloseAfter.Name] = CloseAfter.Read,
        [Unhealthy.Name] = Unhealthy.Read,
        [Headers.Name] = Headers.Read,
    };

    /// <summary>Behaviors that can be named alone, with their defaults.</summary>
    private static readonly Dictionary<string, Func<BehaviorEnvironment, IBehavior>> Bare = new(StringComparer.OrdinalIgnoreCase)
    {
        [Hang.Name] = e => new Hang(1.0, e.Time, e.Random),
        [Reset.Name] = e => new Reset(ResetPoint.BeforeHeaders, 1.0, e.Time, e.Random),
        [SlowClose.Name] = e => new SlowClose(TimeSpan.FromSeconds(1), e.Time),
        [Unhealthy.Name] = _ => new Unhealthy(),
    };

    /// <summary>Every name, <c>healthy</c> included.</summary>
    public static IReadOnlyList<string> Names { get; } = [Healthy, .. Readers.Keys];

    /// <summary>The list under <paramref name="key"/> (a single item is taken as a list of one); problems are reported on the sections.</summary>
    internal static IReadOnlyList<IBehavior> ReadList(ConfigSection parent, string key, BehaviorEnvironment environment)
    {
        if (!parent.Has(key))
        {
            return [];
        }

        if (!parent.IsNested(key))
        {
            return parent.String(key) is { Length: > 0 } single && ReadBare(parent, key, single, environment) is { } one and not HealthyMarker ? [one] : [];
        }

        var section = parent.Section(key);
        var items = section.Keys.All(k => k.All(char.IsAsciiDigit)) ? parent.Elements(key) : [section];
        var behaviors = new List<IBehavior>();
        foreach (var item in items)
        {
            if (ReadOne(item, environment) is { } behavior and not HealthyMarker)
            {
                behaviors.Add(behavior);
            }
        }

        return behaviors;
    }

    /// <summary>
    /// Parses behaviors from text, as <c>--behavior</c> and the control endpoint receive them: one item
    /// (<c>latency: 200ms</c>, <c>hang</c>) or a list (<c>[hang, fail: 503]</c>, or YAML block or JSON).
    /// </summary>
    public static (IReadOnlyList<IBehavior>? Behaviors, IReadOnlyList<string> Errors) Parse(string text, BehaviorEnvironment environment)
    {
        var indented = string.Join('\n', text.Split('\n').Select(line => "  " + line));
        var (behaviors, errors) = YamlSchema.Read("behaviors:\n" + indented, "behaviors", root => ReadList(root, "behaviors", environment));
        // Line numbers as the caller wrote them, not counting the line added above.
        return (behaviors, [.. errors.Select(e => LineNumber().Replace(e, m => $"line {Math.Max(1, int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) - 1)}"))]);
    }

    /// <summary>As <see cref="Parse"/> on the system clock, for code that writes behaviors as literals.</summary>
    /// <exception cref="ArgumentException">The text is not a valid list of behaviors.</exception>
    public static IReadOnlyList<IBehavior> From(string text)
    {
        var (behaviors, errors) = Parse(text, BehaviorEnvironment.System);
        return behaviors ?? throw new ArgumentException(string.Join("; ", errors), nameof(text));
    }

    /// <summary>The specs of <paramref name="behaviors"/> as one line, <c>healthy</c> for none.</summary>
    public static string Describe(IReadOnlyList<IBehavior> behaviors) =>
        behaviors.Count == 0 ? Healthy : "[" + string.Join(", ", behaviors.Select(b => b.Spec)) + "]";

    private static IBehavior? ReadOne(ConfigSection item, BehaviorEnvironment environment)
    {
        if (item.OwnValue is { Length: > 0 } name)
        {
            return ReadBare(item, null, name, environment);
        }

        foreach (var known in Readers.Keys)
        {
            item.Has(known); // so that a misspelt name gets "did you mean"
        }

        var path = item.Value<string?>("path", null, (string raw, out string? value, out string error) =>
        {
            var ok = ValueParsers.PathPrefix(raw, out var prefix, out error);
            value = prefix;
            return ok;
        });
        var kinds = item.Keys.Where(k => Readers.ContainsKey(k) || k.Equals(Healthy, StringComparison.OrdinalIgnoreCase)).ToList();
        if (kinds.Count != 1)
        {
            if (kinds.Count > 1 || item.Keys.All(k => k.Equals("path", StringComparison.OrdinalIgnoreCase)))
            {
                item.Error(kinds.Count > 1
                    ? $"one behavior per item, found {string.Join(" and ", kinds)}: make each its own item"
                    : $"names no behavior (one of {string.Join(", ", Names)})");
            }

            return null;
        }

        if (kinds[0].Equals(Healthy, StringComparison.OrdinalIgnoreCase))
        {
            item.Has(Healthy);
            return HealthyMarker.Instance;
        }

        var behavior = Readers[kinds[0]](item, environment);
        return behavior is not null && path is not null ? new OnPath(path, behavior) : behavior;
    }

    private static IBehavior? ReadBare(ConfigSection at, string? key, string name, BehaviorEnvironment environment)
    {
        name = name.Trim();
        if (name.Equals(Healthy, StringComparison.OrdinalIgnoreCase))
        {
            return HealthyMarker.Instance;
        }

        if (Bare.TryGetValue(name, out var create))
        {
            return create(environment);
        }

        var message = Readers.ContainsKey(name)
            ? $"{name} needs settings, e.g. {Example(name)}"
            : $"{name} is not a behavior (one of {string.Join(", ", Names)})";
        if (key is null)
        {
            at.Error(message);
        }
        else
        {
            at.Error(key, message);
        }

        return null;
    }

    private static string Example(string name) => name switch
    {
        Latency.Name => "latency: 200ms",
        Fail.Name => "fail: { status: 500, rate: 0.1 }",
        Flap.Name => "flap: { up: 2s, down: 1s }",
        Trickle.Name => "trickle: { rate: 2KB, size: 16KB }",
        CloseAfter.Name => "close-after: 3",
        Headers.Name => "headers: { Cache-Control: \"max-age=2\" }",
        _ => $"{name}: ...",
    };

    [GeneratedRegex(@"line (\d+)")]
    private static partial Regex LineNumber();

    /// <summary><c>healthy</c> in a list: stands for nothing and is dropped.</summary>
    private sealed class HealthyMarker : IBehavior
    {
        public static readonly HealthyMarker Instance = new();

        public string Spec => Healthy;

        public Task InvokeAsync(BehaviorContext context, Func<Task> proceed) => proceed();
    }
}
