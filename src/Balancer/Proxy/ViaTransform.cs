using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Transforms;

namespace Balancer.Proxy;

/// <summary>Appends our entry to the request's <c>Via</c> header: the hop header loops are detected by (see <see cref="LoopGuard"/>).</summary>
internal sealed class ViaTransform(LoopGuard loopGuard) : RequestTransform
{
    public override ValueTask ApplyAsync(RequestTransformContext context)
    {
        var ours = loopGuard.EntryFor(context.HttpContext.Request.Protocol);
        var existing = TakeHeader(context, HeaderNames.Via);
        AddHeader(context, HeaderNames.Via, existing.Count == 0 ? ours : $"{string.Join(", ", existing.ToArray())}, {ours}");
        return ValueTask.CompletedTask;
    }
}
