using System.Diagnostics;

namespace Balancer.Observability;

/// <summary>
/// The balancer's activity source. With tracing off nothing listens, and starting a span returns null at the cost of
/// one check. Each try sent to a backend is a span (<see cref="TrySpan"/>) under ASP.NET Core's request span, with the
/// backend, the attempt number and the outcome; the backend's HttpClient span, and the <c>traceparent</c> the backend
/// receives, are its children.
/// </summary>
internal static class Tracing
{
    public const string SourceName = "Balancer";
    public const string TrySpan = "proxy try";

    public static readonly ActivitySource Source = new(SourceName);
}
