namespace Balancer.Routing;

/// <summary>How a route's path condition compares the request path.</summary>
public enum PathMatchKind
{
    /// <summary>The path is the prefix or lies under it: <c>/api</c> matches <c>/api</c> and <c>/api/x</c>, not <c>/apix</c>.</summary>
    Prefix,

    /// <summary>The path is exactly this (a trailing slash aside).</summary>
    Exact,

    /// <summary><c>*</c> stands for any characters but <c>/</c>; at the end of the pattern, for the rest of the path.</summary>
    Glob,

    /// <summary>A .NET regular expression, found anywhere in the path unless anchored (<c>^</c>, <c>$</c>).</summary>
    Regex,
}
