using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Balancer.Tests.Kit;

/// <summary>HTTP/1.1 by hand, for tests that need exact bytes on the wire (headers HttpClient would rewrite).</summary>
public static class RawHttp
{
    /// <summary>Sends <paramref name="request"/> as-is and reads the whole response (the request should say Connection: close).</summary>
    public static async Task<string> SendAsync(IPEndPoint endpoint, string request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(endpoint);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await reader.ReadToEndAsync(timeout.Token);
    }

    /// <summary>
    /// A one-trick backend: answers every request with the same bytes, verbatim, and closes; keeps what it was sent.
    /// </summary>
    public sealed class Server : IAsyncDisposable
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _requests = new();

        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        public Server(string response)
        {
            _listener.Start();
            _loop = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    TcpClient client;
                    try
                    {
                        client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }

                    using (client)
                    {
                        try
                        {
                            var stream = client.GetStream();
                            var buffer = new byte[8192];
                            var seen = new StringBuilder();
                            while (!seen.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                            {
                                var read = await stream.ReadAsync(buffer, _stop.Token);
                                if (read == 0)
                                {
                                    break;
                                }

                                seen.Append(Encoding.ASCII.GetString(buffer, 0, read));
                            }

                            if (seen.Length == 0)
                            {
                                continue; // a health check's connect: no request
                            }

                            _requests.Enqueue(seen.ToString());
                            await stream.WriteAsync(Encoding.ASCII.GetBytes(response), _stop.Token);
                        }
                        catch (IOException)
                        {
                            // The client went away first.
                        }
                    }
                }
            });
        }

        public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

        /// <summary>The head (and whatever came with it) of the first request received, or null.</summary>
        public string? FirstRequest => _requests.TryPeek(out var first) ? first : null;

        /// <summary>The head of the latest request received, or null.</summary>
        public string? LastRequest => _requests.LastOrDefault();

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
            }

            _stop.Dispose();
        }
    }
}
