using System.Globalization;
using System.Net.Sockets;
using Balancer.Configuration;
using Microsoft.AspNetCore.Connections.Features;

namespace FakeBackends.Behaviors;

/// <summary>Where in the exchange a reset strikes.</summary>
public enum ResetPoint
{
    /// <summary>After reading the request, before any byte of the response.</summary>
    BeforeHeaders,

    /// <summary>After the headers and part of a body announced longer.</summary>
    MidBody,
}

/// <summary>
/// Tears the connection down with a TCP RST, as a crashed server or a middlebox does (Toxiproxy's
/// <c>reset_peer</c>): <c>reset</c>, <c>reset: 0.2</c>, or <c>reset: { when: mid-body, rate: 0.2 }</c>.
/// </summary>
public sealed class Reset(ResetPoint when, double rate, TimeProvider time, Random random) : IBehavior
{
    /// <summary>Bytes sent before a mid-body reset, of a body announced four times longer.</summary>
    public const int BytesBeforeMidBodyReset = 1024;

    /// <summary>How long the first part of the body is left to reach the client before the reset cuts the rest.</summary>
    public static readonly TimeSpan MidBodyPause = TimeSpan.FromMilliseconds(100);

    public string Spec => (when, rate) switch
    {
        (ResetPoint.BeforeHeaders, >= 1.0) => Name,
        (ResetPoint.BeforeHeaders, _) => string.Create(CultureInfo.InvariantCulture, $"{Name}: {rate}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{Name}: {{ when: mid-body, rate: {rate} }}"),
    };

    public async Task InvokeAsync(BehaviorContext context, Func<Task> proceed)
    {
        if (rate < 1.0 && random.NextDouble() >= rate)
        {
            await proceed().ConfigureAwait(false);
            return;
        }

        var http = context.Http;
        if (when == ResetPoint.MidBody)
        {
            http.Response.ContentType = "application/json";
            http.Response.ContentLength = 4 * BytesBeforeMidBodyReset;
            var part = new byte[BytesBeforeMidBodyReset];
            part.AsSpan().Fill((byte)' ');
            part[0] = (byte)'{';
            await http.Response.Body.WriteAsync(part, context.Aborted).ConfigureAwait(false);
            await http.Response.Body.FlushAsync(context.Aborted).ConfigureAwait(false);
            // A flush hands the bytes to the server's pipe, not yet to the wire: a reset now could discard them.
            await Task.Delay(MidBodyPause, time, context.Aborted).ConfigureAwait(false);
        }

        // Linger on with a zero timeout: closing sends RST rather than FIN.
        if (http.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            socket.LingerState = new LingerOption(true, 0);
        }

        http.Abort();
    }

    internal static IBehavior? Read(ConfigSection item, BehaviorEnvironment environment)
    {
        if (!item.IsNested(Name))
        {
            return new Reset(ResetPoint.BeforeHeaders, item.Value(Name, 1.0, ValueParsers.Fraction), environment.Time, environment.Random);
        }

        var spec = item.Section(Name);
        var point = spec.Value("when", ResetPoint.BeforeHeaders, ValueParsers.OneOf(Points));
        return new Reset(point, spec.Value("rate", 1.0, ValueParsers.Fraction), environment.Time, environment.Random);
    }

    internal const string Name = "reset";

    private static readonly Dictionary<string, ResetPoint> Points = new() { ["before-headers"] = ResetPoint.BeforeHeaders, ["mid-body"] = ResetPoint.MidBody };
}
