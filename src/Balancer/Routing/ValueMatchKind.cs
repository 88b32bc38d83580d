namespace Balancer.Routing;

/// <summary>How a header or query parameter condition compares the request's value.</summary>
public enum ValueMatchKind
{
    /// <summary>Given: a query parameter whatever its value (<c>?debug</c> too), a header with a non-empty value.</summary>
    Present,

    /// <summary>Not given at all.</summary>
    Absent,

    /// <summary>Equal to one of the values, ignoring case.</summary>
    Exact,

    /// <summary>Starting with one of the values, ignoring case.</summary>
    Prefix,

    /// <summary>A .NET regular expression found in the value (anywhere, unless anchored), case as written.</summary>
    Regex,
}
