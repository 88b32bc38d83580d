using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Testbed.Scenarios;

/// <summary>
/// A real <c>redis-server</c> process on a loopback port, with no persistence: for scenarios (stopped and started
/// again on the same port by <c>stop-redis</c> and <c>start-redis</c>) and for tests. The README's test command
/// installs redis-server when it is missing.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private Process? _process;

    private RedisServer(int port) => Port = port;

    public int Port { get; }

    /// <summary><c>127.0.0.1:port</c>, as StackExchange.Redis takes it.</summary>
    public string Endpoint => $"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    public bool Running => _process is { HasExited: false };

    /// <summary>Starts a server on a free loopback port.</summary>
    public static async Task<RedisServer> StartAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            var server = new RedisServer(LoopbackPort.Next());
            try
            {
                await server.LaunchAsync().ConfigureAwait(false);
                return server;
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                await server.DisposeAsync().ConfigureAwait(false); // another process took the port meanwhile
            }
        }
    }

    /// <summary>Kills the server, as a crash would: its port closes and its data is gone.</summary>
    public async Task StopAsync()
    {
        if (_process is not { HasExited: false } process)
        {
            throw new InvalidOperationException($"redis-server on port {Port} is not running");
        }

        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync().ConfigureAwait(false);
        process.Dispose();
        _process = null;
    }

    /// <summary>Starts the server again on its port.</summary>
    public async Task StartAgainAsync()
    {
        if (Running)
        {
            throw new InvalidOperationException($"redis-server on port {Port} is already running");
        }

        await LaunchAsync().ConfigureAwait(false);
    }

    /// <summary>Sends one inline command and returns the first line of the reply.</summary>
    public async Task<string> CommandAsync(string command)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, Port).ConfigureAwait(false);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n")).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.ASCII);
        return await reader.ReadLineAsync().ConfigureAwait(false) ?? "";
    }

    private async Task LaunchAsync()
    {
        var executable = FindExecutable()
            ?? throw new FileNotFoundException("redis-server is not installed; ./test.sh installs it (apt-get install redis-server)");
        var start = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])["--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--protected-mode", "yes", "--loglevel", "warning"])
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        // Ready once it answers; a port still held by the previous process (or another) makes it exit at once.
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            try
            {
                if (await CommandAsync("PING").ConfigureAwait(false) == "+PONG")
                {
                    return;
                }
            }
            catch (SocketException)
            {
            }
            catch (IOException)
            {
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        throw new InvalidOperationException($"redis-server did not start on port {Port}{(process.HasExited ? $" (it exited with {process.ExitCode})" : "")}");
    }

    private static string? FindExecutable() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/sbin").Append("/usr/bin")
            .Select(d => Path.Combine(d, "redis-server")).FirstOrDefault(File.Exists);

    public async ValueTask DisposeAsync()
    {
        if (_process is { } process)
        {
            _process = null;
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync().ConfigureAwait(false);
            }

            process.Dispose();
        }
    }
}
