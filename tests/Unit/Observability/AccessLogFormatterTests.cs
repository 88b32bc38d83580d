using System.Buffers;
using System.Net;
using System.Text;
using System.Text.Json;
using Balancer.Configuration;
using Balancer.Observability;

namespace Balancer.Tests.Unit.Observability;

public sealed class AccessLogFormatterTests
{
    private static readonly AccessLogEntry Entry = new(
        Time: new DateTimeOffset(2026, 12, 2, 7, 13, 59, 791, TimeSpan.Zero),
        Client: IPAddress.Parse("127.0.0.4"),
        Method: "GET",
        Host: "shop.example",
        Path: "/cart",
        Query: "?id=7",
        Protocol: "HTTP/1.1",
        Status: 200,
        Duration: TimeSpan.FromMilliseconds(1.5634),
        BytesSent: 1234,
        Pool: "default",
        Backend: "http://127.0.0.1:3001",
        Retries: 1,
        UserAgent: "curl/8.0",
        Referer: "https://shop.example/",
        TraceId: "0af7651916cd43dd8448eb211c80319c");

    [Fact]
    public void Balancer_IsTheLineTheTestbedReads()
    {
        Assert.Equal(
            "2026-12-02T07:13:59.791Z 127.0.0.4 \"GET /cart?id=7 HTTP/1.1\" 200 1.563 default http://127.0.0.1:3001 1 \"curl/8.0\"\n",
            Format(AccessLogFormat.Balancer, Entry));
    }

    [Fact]
    public void Combined_IsNginxsCombinedFormat()
    {
        Assert.Equal(
            "127.0.0.4 - - [02/Dec/2026:07:13:59 +0000] \"GET /cart?id=7 HTTP/1.1\" 200 1234 \"https://shop.example/\" \"curl/8.0\"\n",
            Format(AccessLogFormat.Combined, Entry));
    }

    [Fact]
    public void Combined_WithoutClientRefererOrAgent_HasDashes_AndEscapesQuotesAndControlCharacters()
    {
        var line = Format(AccessLogFormat.Combined, Entry with { Client = null, Referer = null, UserAgent = "a \"b\"\u0001\\", Path = "/x\"y" });

        Assert.Equal("- - - [02/Dec/2026:07:13:59 +0000] \"GET /x\\\"y?id=7 HTTP/1.1\" 200 1234 \"-\" \"a \\\"b\\\"\\x01\\\\\"\n", line);
    }

    [Fact]
    public void Json_IsOneObjectPerLine_WithEveryField()
    {
        var line = Format(AccessLogFormat.Json, Entry);

        Assert.EndsWith("}\n", line, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', line.TrimEnd('\n'));
        using var json = JsonDocument.Parse(line);
        var o = json.RootElement;
        Assert.Equal("2026-12-02T07:13:59.791Z", o.GetProperty("time").GetString());
        Assert.Equal("127.0.0.4", o.GetProperty("client").GetString());
        Assert.Equal("GET", o.GetProperty("method").GetString());
        Assert.Equal("shop.example", o.GetProperty("host").GetString());
        Assert.Equal("/cart", o.GetProperty("path").GetString());
        Assert.Equal("?id=7", o.GetProperty("query").GetString());
        Assert.Equal("HTTP/1.1", o.GetProperty("protocol").GetString());
        Assert.Equal(200, o.GetProperty("status").GetInt32());
        Assert.Equal(1.563, o.GetProperty("duration_ms").GetDouble());
        Assert.Equal(1234, o.GetProperty("bytes_sent").GetInt64());
        Assert.Equal("default", o.GetProperty("pool").GetString());
        Assert.Equal("http://127.0.0.1:3001", o.GetProperty("backend").GetString());
        Assert.Equal(1, o.GetProperty("retries").GetInt32());
        Assert.Equal("curl/8.0", o.GetProperty("user_agent").GetString());
        Assert.Equal("https://shop.example/", o.GetProperty("referer").GetString());
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", o.GetProperty("trace_id").GetString());
    }

    [Fact]
    public void Json_WritesNullForWhatIsUnknown_AndAnyTextAsValidJson()
    {
        var line = Format(AccessLogFormat.Json, Entry with { Client = null, Pool = null, Backend = null, Referer = null, TraceId = null, UserAgent = "\"</script>\u0001 ü \ud83d\ude00" });

        using var json = JsonDocument.Parse(line);
        var o = json.RootElement;
        Assert.Equal(JsonValueKind.Null, o.GetProperty("client").ValueKind);
        Assert.Equal(JsonValueKind.Null, o.GetProperty("pool").ValueKind);
        Assert.Equal(JsonValueKind.Null, o.GetProperty("backend").ValueKind);
        Assert.Equal(JsonValueKind.Null, o.GetProperty("referer").ValueKind);
        Assert.Equal(JsonValueKind.Null, o.GetProperty("trace_id").ValueKind);
        Assert.Equal("\"</script>\u0001 ü \ud83d\ude00", o.GetProperty("user_agent").GetString());
    }

    [Theory]
    [InlineData(AccessLogFormat.Balancer)]
    [InlineData(AccessLogFormat.Combined)]
    [InlineData(AccessLogFormat.Json)]
    public void ALoneSurrogate_IsWrittenAsTheReplacementCharacter_NeverAnError(AccessLogFormat format)
    {
        var line = Format(format, Entry with { Path = "/a\ud800b", UserAgent = "\udc00" });

        var path = format == AccessLogFormat.Json ? JsonDocument.Parse(line).RootElement.GetProperty("path").GetString() : line;
        Assert.Contains("/a\ufffdb", path, StringComparison.Ordinal);
    }

    [Fact]
    public void OneFormatter_FormatsManyLines_WithoutCarryingAnythingOver()
    {
        using var formatter = new AccessLogFormatter(AccessLogFormat.Json);
        var output = new ArrayBufferWriter<byte>();
        formatter.Format(Entry, output);
        formatter.Format(Entry with { Path = "/second" }, output);

        var lines = Encoding.UTF8.GetString(output.WrittenSpan).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["/cart", "/second"], lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("path").GetString()));
    }

    internal static string Format(AccessLogFormat format, AccessLogEntry entry)
    {
        var output = new ArrayBufferWriter<byte>();
        using var formatter = new AccessLogFormatter(format);
        formatter.Format(entry, output);
        return Encoding.UTF8.GetString(output.WrittenSpan);
    }
}
