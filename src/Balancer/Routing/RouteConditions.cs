using System.Runtime.CompilerServices;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;

namespace Balancer.Routing;

/// <summary>
/// What of a route YARP's own matches cannot say: a glob or regex path, a regex header or query value, a query
/// parameter given (YARP's "exists" wants a value: <c>?debug</c> has none) or absent. Attached to the route's endpoint as metadata; <see cref="RouteConditionPolicy"/> applies it.
/// </summary>
internal sealed class RouteConditions
{
    /// <summary>Route metadata: the conditions in canonical text.</summary>
    public const string MetadataKey = "lb.conditions";

    private static readonly ConditionalWeakTable<RouteConfig, RouteConditions> Attached = [];

    private readonly PathMatch? _path;
    private readonly ValueMatch[] _headers;
    private readonly ValueMatch[] _query;

    private RouteConditions(PathMatch? path, ValueMatch[] headers, ValueMatch[] query)
    {
        _path = path;
        _headers = headers;
        _query = query;
    }

    /// <summary>The conditions of <paramref name="route"/> left to us, or null when YARP's matches say it all.</summary>
    public static RouteConditions? Of(RouteRule route)
    {
        var path = route.Path is { Matcher: not null } matched ? matched : null;
        ValueMatch[] headers = [.. route.Headers.Where(h => h.Kind == ValueMatchKind.Regex)];
        ValueMatch[] query = [.. route.Query.Where(q => q.Kind is ValueMatchKind.Regex or ValueMatchKind.Absent or ValueMatchKind.Present)];
        return path is null && headers.Length == 0 && query.Length == 0 ? null : new RouteConditions(path, headers, query);
    }

    public static void Attach(RouteConfig config, RouteConditions conditions) => Attached.AddOrUpdate(config, conditions);

    public static RouteConditions? For(RouteConfig config) => Attached.TryGetValue(config, out var conditions) ? conditions : null;

    public bool Holds(HttpRequest request)
    {
        if (_path is not null && !_path.Matcher!.IsMatch(request.Path.Value ?? "/"))
        {
            return false;
        }

        foreach (var header in _headers)
        {
            if (!AnyMatches(header, request.Headers[header.Name]))
            {
                return false;
            }
        }

        foreach (var parameter in _query)
        {
            var given = request.Query.TryGetValue(parameter.Name, out var values);
            var holds = parameter.Kind switch
            {
                ValueMatchKind.Absent => !given,
                ValueMatchKind.Present => given,
                _ => AnyMatches(parameter, values),
            };
            if (!holds)
            {
                return false;
            }
        }

        return true;
    }

    private static bool AnyMatches(ValueMatch match, StringValues values)
    {
        foreach (var value in values)
        {
            if (value is not null && match.Matcher!.IsMatch(value))
            {
                return true;
            }
        }

        return false;
    }
}
