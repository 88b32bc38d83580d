using System.Net;

namespace Balancer.Observability;

/// <summary>One line of the access log, captured on the request path without formatting.</summary>
/// <param name="BytesSent">Response body bytes written to the client; counted only for the formats that show them, else 0.</param>
/// <param name="TraceId">The request's W3C trace id, when it has one.</param>
internal readonly record struct AccessLogEntry(
    DateTimeOffset Time,
    IPAddress? Client,
    string Method,
    string Host,
    string Path,
    string Query,
    string Protocol,
    int Status,
    TimeSpan Duration,
    long BytesSent,
    string? Pool,
    string? Backend,
    int Retries,
    string? UserAgent,
    string? Referer,
    string? TraceId);
