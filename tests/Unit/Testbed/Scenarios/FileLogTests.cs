using Microsoft.Extensions.Logging;
using Testbed.Scenarios;

namespace Balancer.Tests.Unit.Testbed.Scenarios;

public sealed class FileLogTests
{
    [Fact]
    public void WritesALinePerEntry_AndDropsEntriesAfterItIsClosed()
    {
        var path = Path.GetTempFileName();
        try
        {
            var log = new FileLog(path);
            var logger = log.CreateLogger("Balancer.Health");
            logger.LogWarning("backend {Address} is down", "http://127.0.0.1:3001");
            logger.LogDebug("not at this level");
            log.Dispose();

            logger.LogInformation("a timer winding down after the run"); // must not throw

            var line = Assert.Single(File.ReadAllLines(path));
            Assert.EndsWith("Warning     Balancer.Health: backend http://127.0.0.1:3001 is down", line, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
