using System.Net.Sockets;
using Balancer.Configuration;

namespace Balancer.Health;

/// <summary>The outcome of one probe, with words for the logs and the admin API.</summary>
/// <param name="TimedOut">No answer in time: unlike a refusal or a wrong status, this may be only a slow cold start.</param>
public readonly record struct ProbeResult(bool Success, string Outcome, bool TimedOut = false);

/// <summary>Probes a backend once: an HTTP request whose status must be expected, or a TCP connect.</summary>
public sealed class Prober(TimeProvider time) : IDisposable
{
    private readonly HttpMessageInvoker _http = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
    });

    public async Task<ProbeResult> ProbeAsync(Uri backend, HealthCheckOptions check, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(check.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        try
        {
            return check.Kind == ProbeKind.Tcp
                ? await ConnectAsync(backend, linked.Token).ConfigureAwait(false)
                : await RequestAsync(backend, check, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return new ProbeResult(false, $"no answer within {check.Timeout.TotalMilliseconds}ms", TimedOut: true);
        }
        catch (HttpRequestException e)
        {
            return new ProbeResult(false, e.InnerException is SocketException socket ? Describe(socket) : e.Message);
        }
        catch (SocketException e)
        {
            return new ProbeResult(false, Describe(e));
        }
        catch (IOException e)
        {
            return new ProbeResult(false, e.Message);
        }
    }

    private async Task<ProbeResult> RequestAsync(Uri backend, HealthCheckOptions check, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(new HttpMethod(check.Method), new Uri(backend, check.Path));
        using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var status = (int)response.StatusCode;
        var outcome = $"{check.Method} {check.Path}: {status}";
        return check.Expect.Contains(status) ? new ProbeResult(true, outcome) : new ProbeResult(false, $"{outcome}, expected {check.Expect}");
    }

    private static async Task<ProbeResult> ConnectAsync(Uri backend, CancellationToken cancellationToken)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(backend.Host, backend.Port, cancellationToken).ConfigureAwait(false);
        return new ProbeResult(true, "TCP connect: accepted");
    }

    private static string Describe(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "connection refused",
        SocketError.ConnectionReset => "connection reset",
        SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
        _ => e.Message,
    };

    public void Dispose() => _http.Dispose();
}
