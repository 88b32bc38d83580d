using Balancer.Configuration;
using Balancer.Hosting;
using Balancer.Registry;

namespace Balancer;

internal static class Program
{
    /// <summary>Exit codes: 0 after a clean shutdown or --help, 1 when start-up fails, 2 for a bad configuration.</summary>
    public static async Task<int> Main(string[] args)
    {
        var loaded = ConfigLoader.Load(args);
        if (loaded.Help is not null)
        {
            Console.Write(loaded.Help);
            return 0;
        }

        if (loaded.Options is null)
        {
            await Console.Error.WriteLineAsync($"Configuration rejected ({loaded.Errors.Count} error(s)); nothing was started:").ConfigureAwait(false);
            foreach (var error in loaded.Errors)
            {
                await Console.Error.WriteLineAsync("  " + error).ConfigureAwait(false);
            }

            return 2;
        }

        RunningBalancer running;
        try
        {
            running = await BalancerApp.StartAsync(loaded.Options).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or StoredRegistrationsException)
        {
            await Console.Error.WriteLineAsync($"Could not start: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        await using (running.ConfigureAwait(false))
        {
            await running.App.WaitForShutdownAsync().ConfigureAwait(false);
        }

        return 0;
    }
}
