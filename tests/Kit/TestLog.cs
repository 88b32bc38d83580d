using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Balancer.Tests.Kit;

/// <summary>Sends logs to the current test's output (when there is one), so a failure in CI shows what the balancer said; keeps them for assertions.</summary>
public sealed class TestLog(ITestOutputHelper? output) : ILoggerProvider
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();

    /// <summary>Every line logged so far: level, category and message.</summary>
    public IReadOnlyCollection<string> Lines => _lines;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    private ITestOutputHelper? Output => output;

    public void Dispose()
    {
    }

    private sealed class Logger(TestLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var line = $"{logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception)}";
            log._lines.Enqueue(line);
            try
            {
                log.Output?.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {line}");
            }
            catch (InvalidOperationException)
            {
                // The test has finished; xunit no longer takes its output.
            }
        }
    }
}
