using System.Buffers;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Balancer.Configuration;
using Balancer.Networking;
using Balancer.Text;

namespace Balancer.ControlPlane;

/// <summary>What a control-plane packet asks for.</summary>
public enum ControlAction : byte
{
    /// <summary>Create the server if new, then add the listed paths and clients.</summary>
    Add = 0xF0,

    /// <summary>Remove the listed paths and clients; with none listed, remove the server.</summary>
    Remove = 0x0F,
}

/// <summary>The outcome of trying to read one frame from buffered bytes.</summary>
public enum FrameStatus
{
    /// <summary>Not enough bytes yet; nothing was consumed.</summary>
    Incomplete,

    /// <summary>One whole frame was read and consumed.</summary>
    Frame,

    /// <summary>The bytes are not this protocol; the stream cannot be resynchronised.</summary>
    FramingError,
}

/// <summary>One request frame: the action byte as sent, and the payload.</summary>
public readonly record struct ControlFrame(byte Action, byte[] Payload);

/// <summary>A decoded request: a backend on the sender's address at <paramref name="Port"/>.</summary>
/// <param name="Drain">With a remove of the whole backend: stop new requests now and remove it once idle.</param>
public sealed record RegistrationRequest(ControlAction Action, int Port, IReadOnlyList<string> Paths, IReadOnlyList<IPNetwork> Clients, int? Weight, bool Drain = false);

/// <summary>A decoded response.</summary>
public readonly record struct ControlResponse(bool Succeeded, string Message);

/// <summary>
/// BalanceHub's control-plane wire format, pure (no I/O).
/// Request: 'L' 'B', action (0xF0 add, 0x0F remove), N (payload length, 0-255), N bytes of UTF-8 JSON
/// <c>{"Port":"8085","Paths":["/api/v2"],"Clients":["10.1.2.3","10.0.0.0/8"],"Weight":1}</c>.
/// Response: 'R' 'E', result (0xFF succeeded, 0x00 failed), message length, that many ASCII bytes.
/// </summary>
public static class ControlPlaneCodec
{
    public const int HeaderLength = 4;
    public const int MaxPayload = 255;
    public const byte Succeeded = 0xFF;
    public const byte Failed = 0x00;

    private static readonly string[] FieldNames = ["Port", "Paths", "Clients", "Weight", "Drain"];

    /// <summary>
    /// Reads one request frame from the front of <paramref name="buffer"/> and slices it off. A wrong magic is
    /// reported as soon as its first byte is seen; every other problem is left to <see cref="TryParseRequest"/>,
    /// since a frame with a bad payload is still well delimited.
    /// </summary>
    public static FrameStatus TryReadFrame(ref ReadOnlySequence<byte> buffer, out ControlFrame frame, out string? framingError)
    {
        frame = default;
        framingError = null;
        var status = TryReadHeader(buffer, (byte)'L', (byte)'B', out var action, out var length, out framingError);
        if (status != FrameStatus.Frame)
        {
            return status;
        }

        if (buffer.Length < HeaderLength + length)
        {
            return FrameStatus.Incomplete;
        }

        frame = new ControlFrame(action, buffer.Slice(HeaderLength, length).ToArray());
        buffer = buffer.Slice(HeaderLength + length);
        return FrameStatus.Frame;
    }

    /// <summary>Decodes a frame's action and payload; on failure <paramref name="error"/> says what is wrong.</summary>
    public static bool TryParseRequest(ControlFrame frame, out RegistrationRequest request, out string error)
    {
        request = null!;
        if (frame.Action is not ((byte)ControlAction.Add or (byte)ControlAction.Remove))
        {
            error = $"unknown action 0x{frame.Action:X2} (0xF0 adds, 0x0F removes)";
            return false;
        }

        if (frame.Payload.Length == 0)
        {
            error = "empty payload: expected JSON such as {\"Port\":\"8085\"}";
            return false;
        }

        if (Utf8Text.InvalidAt(frame.Payload) is { } at)
        {
            error = $"payload is not valid UTF-8 (at byte {at})";
            return false;
        }

        try
        {
            return TryParsePayload((ControlAction)frame.Action, frame.Payload, out request, out error);
        }
        catch (JsonException e)
        {
            var reason = e.Message;
            var cut = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
            error = $"payload is not JSON: {(cut > 0 ? reason[..cut] : reason)} at byte {e.BytePositionInLine ?? 0}";
            return false;
        }
    }

    private static bool TryParsePayload(ControlAction action, byte[] payload, out RegistrationRequest request, out string error)
    {
        request = null!;
        var reader = new Utf8JsonReader(payload, isFinalBlock: false, state: default);
        if (!reader.Read())
        {
            error = $"payload is not complete JSON (is N too short?): {payload.Length} bytes";
            return false;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            error = $"payload must be a JSON object, not {Describe(reader.TokenType)}";
            return false;
        }

        int? port = null;
        int? weight = null;
        var drain = false;
        var paths = new List<string>();
        var clients = new List<IPNetwork>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        while (true)
        {
            if (!reader.Read())
            {
                error = $"payload is not complete JSON (is N too short?): {payload.Length} bytes";
                return false;
            }

            if (reader.TokenType == JsonTokenType.EndObject)
            {
                break;
            }

            var name = reader.GetString()!;
            var field = FieldNames.FirstOrDefault(f => f.Equals(name, StringComparison.OrdinalIgnoreCase));
            if (field is null)
            {
                error = $"unknown field {name} (fields: {string.Join(", ", FieldNames)})";
                return false;
            }

            if (!seen.Add(field))
            {
                error = $"{field} is given twice";
                return false;
            }

            if (!reader.Read())
            {
                error = $"payload is not complete JSON (is N too short?): {payload.Length} bytes";
                return false;
            }

            var ok = field switch
            {
                "Port" => TryReadPort(ref reader, out port, out error),
                "Weight" => TryReadWeight(ref reader, out weight, out error),
                "Drain" => TryReadBool(ref reader, field, out drain, out error),
                "Paths" => TryReadList(ref reader, field, paths, ValueParsers.PathPrefix, out error),
                _ => TryReadList(ref reader, field, clients, NetworkList.TryParseNetwork, out error),
            };
            if (!ok)
            {
                return false;
            }
        }

        if (reader.Read() || reader.BytesConsumed < payload.Length && payload.AsSpan((int)reader.BytesConsumed).Trim(" \t\r\n"u8).Length > 0)
        {
            error = "payload has bytes after the JSON object";
            return false;
        }

        if (port is null)
        {
            error = "Port is required";
            return false;
        }

        if (drain && (action != ControlAction.Remove || paths.Count > 0 || clients.Count > 0))
        {
            error = "Drain applies to removing a whole backend (0x0F with no Paths and no Clients)";
            return false;
        }

        request = new RegistrationRequest(action, port.Value, [.. paths.Distinct(StringComparer.OrdinalIgnoreCase)], [.. clients.Distinct()], weight, drain);
        error = "";
        return true;
    }

    private static bool TryReadPort(ref Utf8JsonReader reader, out int? port, out string error)
    {
        port = null;
        error = "";
        string text;
        if (reader.TokenType == JsonTokenType.String)
        {
            text = reader.GetString()!;
        }
        else if (reader.TokenType == JsonTokenType.Number)
        {
            text = Encoding.UTF8.GetString(reader.ValueSpan);
        }
        else
        {
            error = "Port: expected a string or a number";
            return false;
        }

        if (int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value is >= 1 and <= 65535)
        {
            port = value;
            return true;
        }

        error = $"Port: {text} is not a port (1-65535)";
        return false;
    }

    private static bool TryReadWeight(ref Utf8JsonReader reader, out int? weight, out string error)
    {
        weight = null;
        error = "";
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var value) && value is >= 0 and <= 1_000_000)
        {
            weight = value;
            return true;
        }

        var text = reader.TokenType is JsonTokenType.Number or JsonTokenType.String ? Encoding.UTF8.GetString(reader.ValueSpan) : Describe(reader.TokenType);
        error = $"Weight: {text} is not a weight (0-1000000)";
        return false;
    }

    private static bool TryReadBool(ref Utf8JsonReader reader, string field, out bool value, out string error)
    {
        error = "";
        value = reader.TokenType == JsonTokenType.True;
        if (reader.TokenType is JsonTokenType.True or JsonTokenType.False)
        {
            return true;
        }

        error = $"{field}: expected true or false";
        return false;
    }

    private static bool TryReadList<T>(ref Utf8JsonReader reader, string field, List<T> into, ValueParser<T> parse, out string error)
    {
        error = "";
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            error = $"{field}: expected a list of strings";
            return false;
        }

        for (var i = 0; ; i++)
        {
            if (!reader.Read())
            {
                error = "payload is not complete JSON (is N too short?)";
                return false;
            }

            if (reader.TokenType == JsonTokenType.EndArray)
            {
                return true;
            }

            if (reader.TokenType != JsonTokenType.String)
            {
                error = $"{field}[{i}]: expected a string";
                return false;
            }

            if (!parse(reader.GetString()!.Trim(), out var value, out var itemError))
            {
                error = $"{field}[{i}]: {itemError}";
                return false;
            }

            into.Add(value);
        }
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };

    /// <summary>Encodes a request in BalanceHub's framing. Payloads over 255 bytes cannot be framed: send several adds.</summary>
    public static byte[] EncodeRequest(RegistrationRequest request)
    {
        var json = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            writer.WriteString("Port", request.Port.ToString(CultureInfo.InvariantCulture));
            if (request.Paths.Count > 0)
            {
                writer.WriteStartArray("Paths");
                foreach (var path in request.Paths)
                {
                    writer.WriteStringValue(path);
                }

                writer.WriteEndArray();
            }

            if (request.Clients.Count > 0)
            {
                writer.WriteStartArray("Clients");
                foreach (var client in request.Clients)
                {
                    writer.WriteStringValue(client.ToString());
                }

                writer.WriteEndArray();
            }

            if (request.Weight is { } weight)
            {
                writer.WriteNumber("Weight", weight);
            }

            if (request.Drain)
            {
                writer.WriteBoolean("Drain", true);
            }

            writer.WriteEndObject();
        }

        if (json.WrittenCount > MaxPayload)
        {
            throw new ArgumentException(
                $"The payload is {json.WrittenCount} bytes; the framing allows {MaxPayload}. Adds are cumulative: split the paths and clients over several packets.",
                nameof(request));
        }

        return [(byte)'L', (byte)'B', (byte)request.Action, (byte)json.WrittenCount, .. json.WrittenSpan];
    }

    /// <summary>Writes a response; the message is made ASCII (other characters become '?') and cut to 255 bytes.</summary>
    public static void WriteResponse(IBufferWriter<byte> output, bool succeeded, string message)
    {
        var length = Math.Min(message.Length, MaxPayload);
        var span = output.GetSpan(HeaderLength + length);
        span[0] = (byte)'R';
        span[1] = (byte)'E';
        span[2] = succeeded ? Succeeded : Failed;
        span[3] = (byte)length;
        for (var i = 0; i < length; i++)
        {
            var ch = message[i];
            span[HeaderLength + i] = ch is >= ' ' and <= '~' ? (byte)ch : (byte)'?';
        }

        output.Advance(HeaderLength + length);
    }

    /// <summary>Reads one response frame from the front of <paramref name="buffer"/> and slices it off.</summary>
    public static FrameStatus TryReadResponse(ref ReadOnlySequence<byte> buffer, out ControlResponse response, out string? framingError)
    {
        response = default;
        var status = TryReadHeader(buffer, (byte)'R', (byte)'E', out var result, out var length, out framingError);
        if (status != FrameStatus.Frame)
        {
            return status;
        }

        if (buffer.Length < HeaderLength + length)
        {
            return FrameStatus.Incomplete;
        }

        response = new ControlResponse(result == Succeeded, Encoding.ASCII.GetString(buffer.Slice(HeaderLength, length)));
        buffer = buffer.Slice(HeaderLength + length);
        return FrameStatus.Frame;
    }

    private static FrameStatus TryReadHeader(ReadOnlySequence<byte> buffer, byte magic0, byte magic1, out byte third, out int length, out string? framingError)
    {
        third = 0;
        length = 0;
        framingError = null;
        Span<byte> header = stackalloc byte[HeaderLength];
        var available = (int)Math.Min(buffer.Length, HeaderLength);
        buffer.Slice(0, available).CopyTo(header);
        if ((available >= 1 && header[0] != magic0) || (available >= 2 && header[1] != magic1))
        {
            var seen = available >= 2 ? $"0x{header[0]:X2} 0x{header[1]:X2}" : $"0x{header[0]:X2}";
            framingError = $"bad magic {seen} (expected '{(char)magic0}' '{(char)magic1}'): not a control-plane packet";
            return FrameStatus.FramingError;
        }

        if (available < HeaderLength)
        {
            return FrameStatus.Incomplete;
        }

        third = header[2];
        length = header[3];
        return FrameStatus.Frame;
    }
}
