using Yarp.ReverseProxy.Transforms;

namespace Balancer.Proxy;

/// <summary>
/// When a backend's response headers arrive: disarm the try's response-headers timeout, and hold back a status of
/// the pool's <c>retries.on-status</c> when another try is allowed (and the pool's retry budget pays for it), so that nothing
/// reaches the client and <see cref="RetryStep"/> can send the request elsewhere.
/// </summary>
internal sealed class RetryableStatusTransform : ResponseTransform
{
    public override ValueTask ApplyAsync(ResponseTransformContext context)
    {
        var attempt = context.HttpContext.Features.Get<AttemptFeature>();
        if (attempt is null)
        {
            return ValueTask.CompletedTask;
        }

        attempt.HeadersArrived();
        if (context.ProxyResponse is { } response && attempt.StatusRetryAllowed && attempt.Settings.OnStatus.Contains((int)response.StatusCode))
        {
            if (attempt.Budget.TryTake())
            {
                context.SuppressResponseBody = true;
                attempt.HeldBackStatus = (int)response.StatusCode;
            }
            else
            {
                attempt.BudgetRefused = true; // the status goes to the client; counted by RetryStep
            }
        }

        return ValueTask.CompletedTask;
    }
}
