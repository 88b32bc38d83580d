using System.Text;
using Balancer.Configuration;
using Balancer.Observability;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Unit.Observability;

public sealed class AccessLogFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("access-log-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 2, 10, 59, 58, TimeSpan.Zero));

    private string LogPath => Path.Combine(_directory, "access.log");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task AtMaxSize_TheFileIsRotated_AndOnlyKeepOldFilesStay()
    {
        await using (var file = new AccessLogFile(LogPath, new AccessLogRotation(MaxSize: 100, Every: TimeSpan.Zero, Keep: 2), _time))
        {
            for (var i = 0; i < 10; i++)
            {
                await file.WriteAsync(Line($"line {i:00} ........................"));
            }
        }

        Assert.Equal(["access.log", "access.log.1", "access.log.2"], Directory.GetFiles(_directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.All(Directory.GetFiles(_directory), f => Assert.InRange(new FileInfo(f).Length, 1, 100));

        // Oldest first, the newest in access.log: nothing lost from the files kept, nothing out of order.
        var kept = File.ReadAllLines(LogPath + ".2").Concat(File.ReadAllLines(LogPath + ".1")).Concat(File.ReadAllLines(LogPath)).ToList();
        Assert.Equal(Enumerable.Range(10 - kept.Count, kept.Count).Select(i => $"line {i:00} ........................"), kept);
        Assert.Equal(7, kept.Count); // 33-byte lines, three to a file: 9 in access.log, 6-8 and 3-5 kept
    }

    [Fact]
    public async Task ALineLongerThanMaxSize_IsWrittenWhole_InAFileOfItsOwn()
    {
        await using (var file = new AccessLogFile(LogPath, new AccessLogRotation(MaxSize: 10, Every: TimeSpan.Zero, Keep: 5), _time))
        {
            await file.WriteAsync(Line("short"));
            await file.WriteAsync(Line(new string('x', 50)));
            await file.WriteAsync(Line("after"));
        }

        Assert.Equal("short\n", File.ReadAllText(LogPath + ".2"));
        Assert.Equal(new string('x', 50) + "\n", File.ReadAllText(LogPath + ".1"));
        Assert.Equal("after\n", File.ReadAllText(LogPath));
    }

    [Fact]
    public async Task WhenItsPeriodEnds_TheFileIsRotated_BeforeTheNextLine()
    {
        await using var file = new AccessLogFile(LogPath, new AccessLogRotation(MaxSize: 0, Every: TimeSpan.FromHours(1), Keep: 3), _time);
        await file.WriteAsync(Line("at 10:59:58"));
        _time.Advance(TimeSpan.FromSeconds(1));
        await file.WriteAsync(Line("at 10:59:59"));
        await file.FlushAsync();
        Assert.False(File.Exists(LogPath + ".1"));

        _time.Advance(TimeSpan.FromSeconds(1));
        await file.WriteAsync(Line("at 11:00:00"));
        await file.FlushAsync();

        Assert.Equal("at 10:59:58\nat 10:59:59\n", File.ReadAllText(LogPath + ".1"));
        Assert.Equal("at 11:00:00\n", File.ReadAllText(LogPath));
    }

    [Fact]
    public async Task AFileLeftFromAnEarlierPeriod_IsRotatedAtOpen_AndOneFromThisPeriodIsAppendedTo()
    {
        File.WriteAllText(LogPath, "yesterday\n");
        File.SetLastWriteTimeUtc(LogPath, _time.GetUtcNow().UtcDateTime.AddDays(-1));
        await using (var file = new AccessLogFile(LogPath, new AccessLogRotation(MaxSize: 0, Every: TimeSpan.FromDays(1), Keep: 3), _time))
        {
            await file.WriteAsync(Line("today"));
        }

        File.SetLastWriteTimeUtc(LogPath, _time.GetUtcNow().UtcDateTime); // as the fake clock has it, not the machine's

        await using (var file = new AccessLogFile(LogPath, new AccessLogRotation(MaxSize: 0, Every: TimeSpan.FromDays(1), Keep: 3), _time))
        {
            await file.WriteAsync(Line("today, after a restart"));
        }

        Assert.Equal("yesterday\n", File.ReadAllText(LogPath + ".1"));
        Assert.Equal("today\ntoday, after a restart\n", File.ReadAllText(LogPath));
    }

    [Fact]
    public async Task AnExistingFile_CountsTowardsMaxSize()
    {
        File.WriteAllText(LogPath, new string('o', 95) + "\n");
        await using (var file = new AccessLogFile(LogPath, new AccessLogRotation(MaxSize: 100, Every: TimeSpan.Zero, Keep: 1), _time))
        {
            await file.WriteAsync(Line("new line"));
        }

        Assert.Equal(new string('o', 95) + "\n", File.ReadAllText(LogPath + ".1"));
        Assert.Equal("new line\n", File.ReadAllText(LogPath));
    }

    [Fact]
    public async Task KeepZero_DeletesTheOldFile()
    {
        await using (var file = new AccessLogFile(LogPath, new AccessLogRotation(MaxSize: 10, Every: TimeSpan.Zero, Keep: 0), _time))
        {
            await file.WriteAsync(Line("first...."));
            await file.WriteAsync(Line("second..."));
        }

        Assert.Equal(["access.log"], Directory.GetFiles(_directory).Select(Path.GetFileName));
        Assert.Equal("second...\n", File.ReadAllText(LogPath));
    }

    [Fact]
    public async Task AFileMovedAway_ByLogrotateOrAnOperator_IsCreatedAgainWithinASecond()
    {
        await using var file = new AccessLogFile(LogPath, AccessLogRotation.None, _time);
        await file.WriteAsync(Line("before"));
        await file.FlushAsync();
        File.Move(LogPath, LogPath + ".moved");

        _time.Advance(TimeSpan.FromSeconds(1));
        await file.WriteAsync(Line("after"));
        await file.FlushAsync();

        Assert.Equal("before\n", File.ReadAllText(LogPath + ".moved"));
        Assert.Equal("after\n", File.ReadAllText(LogPath));
    }

    private static byte[] Line(string text) => Encoding.UTF8.GetBytes(text + "\n");
}
