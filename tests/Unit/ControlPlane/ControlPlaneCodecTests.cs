using System.Buffers;
using System.Net;
using System.Text;
using Balancer.ControlPlane;

namespace Balancer.Tests.Unit.ControlPlane;

public sealed class ControlPlaneCodecTests
{
    private static byte[] Frame(byte action, string json)
    {
        var payload = Encoding.UTF8.GetBytes(json);
        return [(byte)'L', (byte)'B', action, (byte)payload.Length, .. payload];
    }

    private static (FrameStatus Status, ControlFrame Frame, string? Error, long Consumed) Read(byte[] bytes)
    {
        var buffer = new ReadOnlySequence<byte>(bytes);
        var status = ControlPlaneCodec.TryReadFrame(ref buffer, out var frame, out var error);
        return (status, frame, error, bytes.Length - buffer.Length);
    }

    [Fact]
    public void TryReadFrame_BalanceHubAddPacket_IsOneFrame()
    {
        var bytes = Frame(0xF0, """{"Port":"8085","Paths":["/api/v2"],"Clients":["10.1.2.3","10.0.0.0/8"]}""");

        var (status, frame, _, consumed) = Read(bytes);

        Assert.Equal(FrameStatus.Frame, status);
        Assert.Equal(0xF0, frame.Action);
        Assert.Equal(bytes.Length, consumed);
        Assert.True(ControlPlaneCodec.TryParseRequest(frame, out var request, out var error), error);
        Assert.Equal(ControlAction.Add, request.Action);
        Assert.Equal(8085, request.Port);
        Assert.Equal(["/api/v2"], request.Paths);
        Assert.Equal([IPNetwork.Parse("10.1.2.3/32"), IPNetwork.Parse("10.0.0.0/8")], request.Clients);
        Assert.Null(request.Weight);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void TryReadFrame_HeaderIncomplete_AsksForMore(int length)
    {
        var (status, _, _, consumed) = Read(Frame(0xF0, """{"Port":1}""")[..length]);

        Assert.Equal(FrameStatus.Incomplete, status);
        Assert.Equal(0, consumed);
    }

    [Fact]
    public void TryReadFrame_PayloadIncomplete_AsksForMore()
    {
        var bytes = Frame(0xF0, """{"Port":8085}""");

        var (status, _, _, consumed) = Read(bytes[..^1]);

        Assert.Equal(FrameStatus.Incomplete, status);
        Assert.Equal(0, consumed);
    }

    [Theory]
    [InlineData(new byte[] { (byte)'G', (byte)'E', (byte)'T' }, "bad magic 0x47 0x45 (expected 'L' 'B'): not a control-plane packet")]
    [InlineData(new byte[] { (byte)'L', (byte)'X' }, "bad magic 0x4C 0x58 (expected 'L' 'B'): not a control-plane packet")]
    [InlineData(new byte[] { 0x00 }, "bad magic 0x00 (expected 'L' 'B'): not a control-plane packet")]
    public void TryReadFrame_BadMagic_IsAFramingErrorAsSoonAsSeen(byte[] bytes, string expected)
    {
        var (status, _, error, _) = Read(bytes);

        Assert.Equal(FrameStatus.FramingError, status);
        Assert.Equal(expected, error);
    }

    [Fact]
    public void TryReadFrame_TwoPacketsInOneRead_ComeOutOneAtATime()
    {
        var first = Frame(0xF0, """{"Port":1}""");
        var second = Frame(0x0F, """{"Port":2}""");
        var buffer = new ReadOnlySequence<byte>([.. first, .. second]);

        Assert.Equal(FrameStatus.Frame, ControlPlaneCodec.TryReadFrame(ref buffer, out var a, out _));
        Assert.Equal(FrameStatus.Frame, ControlPlaneCodec.TryReadFrame(ref buffer, out var b, out _));
        Assert.Equal(FrameStatus.Incomplete, ControlPlaneCodec.TryReadFrame(ref buffer, out _, out _));
        Assert.Equal(0xF0, a.Action);
        Assert.Equal(0x0F, b.Action);
        Assert.Equal(0, buffer.Length);
    }

    [Theory]
    [InlineData(0x12, """{"Port":1}""", "unknown action 0x12 (0xF0 adds, 0x0F removes)")]
    [InlineData(0xF0, "", "empty payload: expected JSON such as {\"Port\":\"8085\"}")]
    [InlineData(0xF0, """{"Port":"80""", "payload is not complete JSON (is N too short?): 11 bytes")]
    [InlineData(0xF0, "[1,2]", "payload must be a JSON object, not an array")]
    [InlineData(0xF0, """{"Paths":["/a"]}""", "Port is required")]
    [InlineData(0xF0, """{"Port":"http"}""", "Port: http is not a port (1-65535)")]
    [InlineData(0xF0, """{"Port":70000}""", "Port: 70000 is not a port (1-65535)")]
    [InlineData(0xF0, """{"Port":0}""", "Port: 0 is not a port (1-65535)")]
    [InlineData(0xF0, """{"Port":true}""", "Port: expected a string or a number")]
    [InlineData(0xF0, """{"Port":1,"Clients":["10.0.0.0/33"]}""", "Clients[0]: 10.0.0.0/33 is not an IP address or CIDR")]
    [InlineData(0xF0, """{"Port":1,"Clients":["10.1.2.3/8"]}""", "Clients[0]: 10.1.2.3/8 has host bits set; did you mean 10.0.0.0/8?")]
    [InlineData(0xF0, """{"Port":1,"Clients":"10.0.0.1"}""", "Clients: expected a list of strings")]
    [InlineData(0xF0, """{"Port":1,"Paths":["api"]}""", "Paths[0]: api must start with /")]
    [InlineData(0xF0, """{"Port":1,"Paths":[7]}""", "Paths[0]: expected a string")]
    [InlineData(0xF0, """{"Port":1,"Weight":-2}""", "Weight: -2 is not a weight (0-1000000)")]
    [InlineData(0xF0, """{"Port":1,"Prot":2}""", "unknown field Prot (fields: Port, Paths, Clients, Weight, Drain)")]
    [InlineData(0xF0, """{"Port":1,"Drain":true}""", "Drain applies to removing a whole backend (0x0F with no Paths and no Clients)")]
    [InlineData(0x0F, """{"Port":1,"Drain":true,"Paths":["/a"]}""", "Drain applies to removing a whole backend (0x0F with no Paths and no Clients)")]
    [InlineData(0x0F, """{"Port":1,"Drain":"yes"}""", "Drain: expected true or false")]
    [InlineData(0xF0, """{"Port":1,"Port":2}""", "Port is given twice")]
    public void TryParseRequest_BadPayload_SaysWhatIsWrong(byte action, string json, string expected)
    {
        var (status, frame, _, _) = Read(Frame(action, json));

        Assert.Equal(FrameStatus.Frame, status);
        Assert.False(ControlPlaneCodec.TryParseRequest(frame, out _, out var error));
        Assert.Equal(expected, error);
    }

    [Theory]
    [InlineData(new byte[] { 0x7B, 0x22, 0x50, 0x6F, 0x72, 0x74, 0x22, 0x3A, 0x22, 0x38, 0xFF, 0x22, 0x7D }, 10)] // {"Port":"8\xFF"}
    [InlineData(new byte[] { 0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x31, 0x7D }, 2)] // {"\xC3(":1}: a broken two-byte sequence in a name
    [InlineData(new byte[] { 0x7B, 0x22, 0x50, 0x6F, 0x72, 0x74, 0x22, 0x3A, 0x31, 0x2C, 0x22, 0x50, 0x61, 0x74, 0x68, 0x73, 0x22, 0x3A, 0x5B, 0x22, 0x2F, 0xED, 0xA0, 0x80, 0x22, 0x5D, 0x7D }, 21)] // a UTF-16 surrogate, encoded
    public void TryParseRequest_InvalidUtf8_SaysWhere_NeverThrows(byte[] payload, int at)
    {
        var frame = new ControlFrame((byte)ControlAction.Add, payload);

        Assert.False(ControlPlaneCodec.TryParseRequest(frame, out _, out var error));
        Assert.Equal($"payload is not valid UTF-8 (at byte {at})", error);
    }

    [Fact]
    public void TryParseRequest_NotJson_SaysSoAndWhere()
    {
        var (_, frame, _, _) = Read(Frame(0xF0, """{"Port": nope}"""));

        Assert.False(ControlPlaneCodec.TryParseRequest(frame, out _, out var error));
        Assert.StartsWith("payload is not JSON: ", error, StringComparison.Ordinal);
        Assert.EndsWith(" at byte 10", error, StringComparison.Ordinal); // "n" starts a literal; the "o" where "null" needs a "u" is the error
    }

    [Fact]
    public void TryParseRequest_FieldNamesAnyCase_PortAsNumber_RemoveAction()
    {
        var (_, frame, _, _) = Read(Frame(0x0F, """{"port":8085,"paths":["/a/"],"clients":["::1"],"weight":3}"""));

        Assert.True(ControlPlaneCodec.TryParseRequest(frame, out var request, out var error), error);
        Assert.Equal(ControlAction.Remove, request.Action);
        Assert.Equal(8085, request.Port);
        Assert.Equal(["/a"], request.Paths);
        Assert.Equal([IPNetwork.Parse("::1/128")], request.Clients);
        Assert.Equal(3, request.Weight);
    }

    [Fact]
    public void TryParseRequest_RemoveWithDrain_AsksForADrain()
    {
        var (_, frame, _, _) = Read(Frame(0x0F, """{"Port":8085,"Drain":true}"""));

        Assert.True(ControlPlaneCodec.TryParseRequest(frame, out var request, out var error), error);
        Assert.True(request.Drain);
        Assert.Equal(ControlAction.Remove, request.Action);
    }

    [Fact]
    public void EncodeRequest_ThenRead_RoundTrips()
    {
        var request = new RegistrationRequest(ControlAction.Add, 9000, ["/x", "/y/z"], [IPNetwork.Parse("10.0.0.0/8")], 5);

        var bytes = ControlPlaneCodec.EncodeRequest(request);
        var (status, frame, _, consumed) = Read(bytes);

        Assert.Equal(FrameStatus.Frame, status);
        Assert.Equal(bytes.Length, consumed);
        Assert.True(ControlPlaneCodec.TryParseRequest(frame, out var decoded, out _));
        Assert.Equal(request.Action, decoded.Action);
        Assert.Equal(request.Port, decoded.Port);
        Assert.Equal(request.Paths, decoded.Paths);
        Assert.Equal(request.Clients, decoded.Clients);
        Assert.Equal(request.Weight, decoded.Weight);
    }

    [Fact]
    public void EncodeRequest_PayloadOver255Bytes_IsRefusedWithAHint()
    {
        var request = new RegistrationRequest(ControlAction.Add, 9000, [.. Enumerable.Range(0, 40).Select(i => $"/path/{i}")], [], null);

        var error = Assert.Throws<ArgumentException>(() => ControlPlaneCodec.EncodeRequest(request));
        Assert.Contains("255", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WriteResponse_IsREResultLengthAscii()
    {
        var writer = new ArrayBufferWriter<byte>();

        ControlPlaneCodec.WriteResponse(writer, succeeded: true, "registered http://127.0.0.1:8085");

        Assert.Equal([(byte)'R', (byte)'E', 0xFF, 32, .. Encoding.ASCII.GetBytes("registered http://127.0.0.1:8085")], writer.WrittenSpan.ToArray());
    }

    [Fact]
    public void WriteResponse_LongOrNonAsciiMessage_IsTruncatedTo255AsciiBytes()
    {
        var writer = new ArrayBufferWriter<byte>();

        ControlPlaneCodec.WriteResponse(writer, succeeded: false, "é" + new string('x', 400));

        var bytes = writer.WrittenSpan.ToArray();
        Assert.Equal(0x00, bytes[2]);
        Assert.Equal(255, bytes[3]);
        Assert.Equal(4 + 255, bytes.Length);
        Assert.Equal((byte)'?', bytes[4]);
        Assert.All(bytes[4..], b => Assert.InRange(b, 0x20, 0x7E));
    }

    [Fact]
    public void TryReadResponse_ReadsWhatWriteResponseWrote()
    {
        var writer = new ArrayBufferWriter<byte>();
        ControlPlaneCodec.WriteResponse(writer, succeeded: false, "Port is required");
        var buffer = new ReadOnlySequence<byte>(writer.WrittenMemory);

        Assert.Equal(FrameStatus.Frame, ControlPlaneCodec.TryReadResponse(ref buffer, out var response, out _));
        Assert.False(response.Succeeded);
        Assert.Equal("Port is required", response.Message);
    }
}
