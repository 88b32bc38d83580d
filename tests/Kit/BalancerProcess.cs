using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Balancer.Tests.Kit;

/// <summary>
/// The real balancer executable (or the testbed's) in its own process, as a user starts it: for what only a
/// process shows (exit codes, signals, output before anything is bound).
/// </summary>
public sealed partial class BalancerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _stdout = new();
    private readonly ConcurrentQueue<string> _stderr = new();
    private int _disposed;

    private BalancerProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _stdout.Enqueue(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _stderr.Enqueue(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string StandardOutput => string.Join('\n', _stdout);

    public string StandardError => string.Join('\n', _stderr);

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Runs <c>dotnet Balancer.dll</c> (built next to the tests) with <paramref name="args"/> in <paramref name="workingDirectory"/>.</summary>
    public static BalancerProcess Start(string workingDirectory, params string[] args) => Run("Balancer.dll", workingDirectory, args);

    /// <summary>Runs the testbed, <c>dotnet Testbed.dll</c> (built next to the tests), as a user runs scenarios.</summary>
    public static BalancerProcess StartTestbed(string workingDirectory, params string[] args) => Run("Testbed.dll", workingDirectory, args);

    private static BalancerProcess Run(string assembly, string workingDirectory, string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, assembly));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("LB_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(name);
        }

        return new BalancerProcess(Process.Start(start)!);
    }

    /// <summary>Waits until the process logs the endpoint of <paramref name="listener"/> ("Proxy", "Admin API", "Control plane") and returns its port.</summary>
    public async Task<int> WaitForListenerAsync(string listener)
    {
        var port = 0;
        await Eventually.TrueAsync(
            () =>
            {
                if (HasExited)
                {
                    throw new InvalidOperationException($"The balancer exited ({_process.ExitCode}) before listening:\n{StandardOutput}\n{StandardError}");
                }

                var match = _stdout.Select(l => ListeningLine().Match(l)).FirstOrDefault(m => m.Success && m.Groups["listener"].Value == listener);
                port = match is null ? 0 : int.Parse(match.Groups["port"].Value, System.Globalization.CultureInfo.InvariantCulture);
                return port != 0;
            },
            $"{listener} listening");
        return port;
    }

    public async Task<int> WaitForExitAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Eventually.DefaultTimeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit(); // flushes the redirected output
        return _process.ExitCode;
    }

    /// <summary>Sends SIGTERM, as systemd, Kubernetes and docker stop do.</summary>
    public void Terminate() => Signal(15);

    /// <summary>Sends a signal (1 is SIGHUP, 15 SIGTERM).</summary>
    public void Signal(int signal)
    {
        if (kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    [GeneratedRegex(@"(?<listener>Proxy|Admin API|Control plane) listening on \w+://.*:(?<port>\d+)$")]
    private static partial Regex ListeningLine();
}
