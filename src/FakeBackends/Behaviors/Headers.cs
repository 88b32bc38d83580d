using Balancer.Configuration;

namespace FakeBackends.Behaviors;

/// <summary>
/// Adds response fields, as an origin that says how its answers may be cached does:
/// <c>headers: { Cache-Control: "max-age=2", Vary: Accept }</c>.
/// </summary>
public sealed class Headers(IReadOnlyList<KeyValuePair<string, string>> fields) : IBehavior
{
    public string Spec => $"{Name}: {{ {string.Join(", ", fields.Select(f => $"{f.Key}: \"{f.Value}\""))} }}";

    public Task InvokeAsync(BehaviorContext context, Func<Task> proceed)
    {
        foreach (var (name, value) in fields)
        {
            context.Http.Response.Headers.Append(name, value);
        }

        return proceed();
    }

    internal static IBehavior? Read(ConfigSection item, BehaviorEnvironment environment)
    {
        if (!item.IsNested(Name))
        {
            item.Error(Name, "give the fields to add, e.g. headers: { Cache-Control: \"max-age=2\" }");
            return null;
        }

        var spec = item.Section(Name);
        var fields = new List<KeyValuePair<string, string>>();
        foreach (var key in spec.Keys)
        {
            if (key.Length == 0 || key.Any(c => c <= ' ' || c >= 127 || c == ':'))
            {
                spec.Error(key, "is not a header name");
                continue;
            }

            fields.Add(new(key, spec.String(key) ?? ""));
        }

        if (fields.Count == 0)
        {
            item.Error(Name, "names no fields");
            return null;
        }

        return new Headers(fields);
    }

    internal const string Name = "headers";
}
