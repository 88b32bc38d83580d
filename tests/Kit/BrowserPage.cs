using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Balancer.Tests.Kit;

/// <summary>
/// A live page in Debian's headless chromium, driven over the DevTools protocol (a WebSocket the browser opens on a
/// loopback port): evaluate script in the page, wait for a condition, take a screenshot. A fresh profile each time.
/// </summary>
public sealed partial class BrowserPage : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _profile;
    private readonly ClientWebSocket _socket;
    private int _nextId;

    private BrowserPage(Process process, string profile, ClientWebSocket socket)
    {
        _process = process;
        _profile = profile;
        _socket = socket;
    }

    /// <summary>Opens <paramref name="url"/> in a window of <paramref name="width"/> × <paramref name="height"/>.</summary>
    public static async Task<BrowserPage> OpenAsync(Uri url, int width = 1280, int height = 720)
    {
        if (!File.Exists(Chromium.Executable))
        {
            throw new InvalidOperationException($"{Chromium.Executable} is missing: ./test.sh installs it (apt-get install chromium)");
        }

        var profile = Directory.CreateTempSubdirectory("chromium-live-").FullName;
        var start = new ProcessStartInfo(Chromium.Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", $"--window-size={width},{height}",
                     $"--user-data-dir={profile}", url.AbsoluteUri])
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.ErrorDataReceived += (_, line) =>
        {
            if (line.Data is { } text && DevToolsLine().Match(text) is { Success: true } match)
            {
                listening.TrySetResult(new Uri(match.Groups["url"].Value));
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            var browser = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            using var http = new HttpClient { BaseAddress = new Uri($"http://{browser.Authority}/") };
            string? target = null;
            await Eventually.TrueAsync(async () =>
            {
                var pages = JsonNode.Parse(await http.GetStringAsync("json/list"))!.AsArray();
                target = pages.FirstOrDefault(p => (string?)p!["type"] == "page")?["webSocketDebuggerUrl"]?.GetValue<string>();
                return target is not null;
            }, "chromium to open its page");
            var socket = new ClientWebSocket();
            await socket.ConnectAsync(new Uri(target!), CancellationToken.None);
            return new BrowserPage(process, profile, socket);
        }
        catch
        {
            process.Kill(entireProcessTree: true);
            process.Dispose();
            throw;
        }
    }

    /// <summary>Evaluates <paramref name="expression"/> in the page (awaiting a promise) and returns its value as JSON.</summary>
    public async Task<JsonNode?> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new JsonObject { ["expression"] = expression, ["returnByValue"] = true, ["awaitPromise"] = true });
        if (result["exceptionDetails"] is { } exception)
        {
            throw new InvalidOperationException($"the page threw evaluating {expression}: {exception.ToJsonString()}");
        }

        return result["result"]?["value"];
    }

    /// <summary>Waits until <paramref name="expression"/> is true in the page.</summary>
    public Task UntilAsync(string expression, string what, TimeSpan? timeout = null) =>
        Eventually.TrueAsync(async () => (await EvaluateAsync(expression))?.GetValue<bool>() == true, what, timeout);

    public async Task<byte[]> ScreenshotAsync()
    {
        var result = await SendAsync("Page.captureScreenshot", new JsonObject { ["format"] = "png" });
        return Convert.FromBase64String(result["data"]!.GetValue<string>());
    }

    private async Task<JsonNode> SendAsync(string method, JsonObject parameters)
    {
        var id = Interlocked.Increment(ref _nextId);
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters }.ToJsonString();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _socket.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        var buffer = new byte[64 * 1024];
        while (true)
        {
            using var received = new MemoryStream();
            WebSocketReceiveResult part;
            do
            {
                part = await _socket.ReceiveAsync(buffer, timeout.Token);
                received.Write(buffer, 0, part.Count);
            }
            while (!part.EndOfMessage);

            var reply = JsonNode.Parse(received.ToArray())!;
            if ((int?)reply["id"] != id)
            {
                continue; // an event, or the answer to something else
            }

            return reply["error"] is { } error ? throw new InvalidOperationException($"{method} failed: {error.ToJsonString()}") : reply["result"]!;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_profile, recursive: true);
        }
        catch (IOException)
        {
            // Chromium's last writes may still be landing; the temp directory is cleaned up by the system.
        }
    }

    [GeneratedRegex(@"DevTools listening on (?<url>ws://\S+)")]
    private static partial Regex DevToolsLine();
}
