using System.Diagnostics;

namespace Balancer.Tests.Kit;

/// <summary>Debian's chromium (test.sh installs the package), headless: never a downloaded browser, a fresh profile each time.</summary>
public static class Chromium
{
    public const string Executable = "/usr/bin/chromium";

    /// <summary>Renders <paramref name="page"/> and returns the screenshot.</summary>
    public static async Task<Png> ScreenshotAsync(string page, int width, int height)
    {
        var png = Path.Combine(Path.GetTempPath(), $"shot-{Guid.NewGuid():N}.png");
        try
        {
            await RunAsync($"--window-size={width},{height}", $"--screenshot={png}", new Uri(page).AbsoluteUri);
            return Png.Read(await File.ReadAllBytesAsync(png));
        }
        finally
        {
            File.Delete(png);
        }
    }

    /// <summary>The page's DOM after it was loaded and laid out.</summary>
    public static Task<string> DumpDomAsync(string page) => RunAsync("--dump-dom", new Uri(page).AbsoluteUri);

    private static async Task<string> RunAsync(params string[] args)
    {
        if (!File.Exists(Executable))
        {
            throw new InvalidOperationException($"{Executable} is missing: ./test.sh installs it (apt-get install chromium)");
        }

        var profile = Directory.CreateTempSubdirectory("chromium-profile-").FullName;
        var start = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--hide-scrollbars", $"--user-data-dir={profile}", .. args])
        {
            start.ArgumentList.Add(arg);
        }

        try
        {
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"chromium did not finish in 120 s: {await errors}");
            }

            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"chromium exited with {process.ExitCode}: {await errors}");
            }

            return await output;
        }
        finally
        {
            Directory.Delete(profile, recursive: true);
        }
    }
}
