using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Balancer.Tests.Kit;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Admin;

/// <summary>The admin dashboard in a real headless Chromium.</summary>
public sealed class DashboardTests(ITestOutputHelper output)
{
    private const string Checks = "BalanceHub: { algorithm: round-robin }\nhealth-checks: { enabled: true, interval: 1s, timeout: 500ms, rise: 1, fall: 1 }\n";

    [Fact]
    public async Task TheDashboard_ShowsEveryBackend_TurnsAKilledOneRed_WithinAProbeIntervalAndASecond_AndDrainsFromItsForm()
    {
        await using var backends = await Backends.StartAsync(3);
        await using var lb = await TestBalancer.StartAsync(Checks + TestBalancer.BackendsYaml(backends.All.Take(2)), output);
        (await lb.Admin.PostAsJsonAsync("/backends", new { address = backends[2].Origin })).EnsureSuccessStatusCode();
        for (var i = 0; i < 30; i++)
        {
            (await lb.Client.GetAsync("/")).EnsureSuccessStatusCode();
        }

        await using var page = await BrowserPage.OpenAsync(lb.Running.AdminUri);
        await page.UntilAsync("document.querySelectorAll('tr.healthy').length === 3", "three healthy rows");
        Assert.Equal("default", (await page.EvaluateAsync("document.querySelector('.pool-name').textContent"))!.GetValue<string>());
        Assert.Contains("30 requests", (await page.EvaluateAsync("document.querySelector('#summary').textContent"))!.GetValue<string>(), StringComparison.Ordinal);

        var b2 = Row(backends[1]);
        var killed = Stopwatch.StartNew();
        await backends[1].KillAsync();
        await page.UntilAsync($"{b2}?.className === 'down'", "the killed backend's row to turn red", TimeSpan.FromSeconds(30));
        var red = killed.Elapsed;
        output.WriteLine($"row red {red.TotalMilliseconds:0} ms after the kill");
        // The promise is one probe interval (1 s, ±10%) and a second; the rest is room for a busy 2-core machine.
        Assert.True(red <= TimeSpan.FromSeconds(4), $"the row turned red {red.TotalMilliseconds:0} ms after the kill; one probe interval (1 s) and a second is the promise");
        Assert.Equal("rgb(255, 235, 238)", (await page.EvaluateAsync($"getComputedStyle({b2}).backgroundColor"))!.GetValue<string>());
        await page.UntilAsync("[...document.querySelectorAll('#events li')].some(li => li.dataset.kind === 'down')", "the down event in the feed");

        // A static backend cannot be drained from here: the refusal stays on the page, however often it polls.
        await page.EvaluateAsync($"{Row(backends[0])}.querySelector('button[data-act=drain]').click()");
        await page.UntilAsync("document.querySelector('#error').textContent.includes('config.yaml')", "the refusal to show");
        await Task.Delay(1500);
        Assert.Contains("config.yaml", (await page.EvaluateAsync("document.querySelector('#error').textContent"))!.GetValue<string>(), StringComparison.Ordinal);

        await page.EvaluateAsync($"{Row(backends[2])}.querySelector('button[data-act=drain]').click()");
        await Eventually.TrueAsync(async () => (await lb.Admin.GetAsync($"/backends/{Uri.EscapeDataString(backends[2].Origin)}")).StatusCode == HttpStatusCode.NotFound, "the drained backend to be removed");
        await page.UntilAsync($"{Row(backends[2])} === null", "the drained backend's row to go");

        var screenshot = Path.Combine(lb.Directory, "dashboard.png");
        await File.WriteAllBytesAsync(screenshot, await page.ScreenshotAsync());
        Assert.True(new FileInfo(screenshot).Length > 10_000);
    }

    [Fact]
    public async Task WithAToken_ThePageLoads_AsksForTheToken_ThenShowsTheBackends()
    {
        await using var backends = await Backends.StartAsync(1);
        await using var lb = await TestBalancer.StartAsync("admin: { token: dash-t0ken }\n" + TestBalancer.BackendsYaml(backends.All), output);

        await using var page = await BrowserPage.OpenAsync(lb.Running.AdminUri);
        await page.UntilAsync("document.querySelector('#token-form')?.hidden === false", "the page to ask for the token");
        Assert.Equal(0, (await page.EvaluateAsync("document.querySelectorAll('tbody tr').length"))!.GetValue<int>());

        await page.EvaluateAsync("document.querySelector('#token').value = 'dash-t0ken'; document.querySelector('#token-form').requestSubmit(); true");

        await page.UntilAsync("document.querySelectorAll('tbody tr').length === 1", "the backend's row once the token is given");
    }


    private static string Row(global::FakeBackends.FakeBackend backend) => $"document.querySelector('tr[data-backend=\"{backend.Origin}\"]')";
}
