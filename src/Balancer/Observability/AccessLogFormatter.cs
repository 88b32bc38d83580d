using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Balancer.Configuration;

namespace Balancer.Observability;

/// <summary>
/// Writes access-log lines as UTF-8, one per entry, each ending in <c>\n</c>. Text formats escape quotes, backslashes
/// and control characters (<c>\"</c>, <c>\\</c>, <c>\x01</c>) so that a request cannot forge a line or a field; JSON
/// is escaped by <see cref="Utf8JsonWriter"/>. One instance serves one writer and reuses its buffers.
/// </summary>
internal sealed class AccessLogFormatter(AccessLogFormat format) : IDisposable
{
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    private readonly StringBuilder _text = new(256);
    private Utf8JsonWriter? _json;
    private char[] _chars = new char[512];

    public void Format(in AccessLogEntry entry, IBufferWriter<byte> output)
    {
        if (format == AccessLogFormat.Json)
        {
            WriteJson(entry, output);
            return;
        }

        _text.Clear();
        if (format == AccessLogFormat.Combined)
        {
            AppendCombined(_text, entry);
        }
        else
        {
            AppendBalancer(_text, entry);
        }

        if (_chars.Length < _text.Length)
        {
            _chars = new char[Math.Max(_text.Length, _chars.Length * 2)];
        }

        _text.CopyTo(0, _chars, _text.Length);
        Encoding.UTF8.GetBytes(_chars.AsSpan(0, _text.Length), output);
    }

    public void Dispose() => _json?.Dispose();

    /// <summary><c>time client "METHOD path?query PROTOCOL" status duration_ms pool backend retries "user-agent"</c></summary>
    private static void AppendBalancer(StringBuilder line, in AccessLogEntry e)
    {
        // Interpolated appends format each value straight into the builder: no string per field.
        var c = CultureInfo.InvariantCulture;
        line.Append(c, $"{e.Time.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss.fff'Z'} ");
        AppendClient(line, e.Client);
        line.Append(' ');
        AppendRequestLine(line, e);
        line.Append(c, $" {e.Status} {e.Duration.TotalMilliseconds:0.###} {e.Pool ?? "-"} {e.Backend ?? "-"} {e.Retries} ");
        AppendQuoted(line, e.UserAgent);
        line.Append('\n');
    }

    /// <summary>nginx's <c>combined</c>: <c>client - - [02/Dec/2026:07:13:59 +0000] "request" status bytes "referer" "user-agent"</c>.</summary>
    private static void AppendCombined(StringBuilder line, in AccessLogEntry e)
    {
        var c = CultureInfo.InvariantCulture;
        AppendClient(line, e.Client);
        line.Append(c, $" - - [{e.Time.UtcDateTime:dd'/'MMM'/'yyyy':'HH':'mm':'ss '+0000'}] ");
        AppendRequestLine(line, e);
        line.Append(c, $" {e.Status} {e.BytesSent} ");
        AppendQuoted(line, e.Referer);
        line.Append(' ');
        AppendQuoted(line, e.UserAgent);
        line.Append('\n');
    }

    private static void AppendClient(StringBuilder line, System.Net.IPAddress? client)
    {
        if (client is null)
        {
            line.Append('-');
            return;
        }

        Span<char> text = stackalloc char[64]; // the longest IPv6 text, with a scope id, is 65 less the brackets
        if (client.TryFormat(text, out var written))
        {
            line.Append(text[..written]);
        }
        else
        {
            line.Append(client.ToString());
        }
    }

    private static void AppendRequestLine(StringBuilder line, in AccessLogEntry e)
    {
        line.Append('"').Append(e.Method).Append(' ');
        AppendEscaped(line, e.Path);
        AppendEscaped(line, e.Query);
        line.Append(' ').Append(e.Protocol).Append('"');
    }

    private static void AppendQuoted(StringBuilder line, string? text)
    {
        line.Append('"');
        AppendEscaped(line, text ?? "-");
        line.Append('"');
    }

    private static void AppendEscaped(StringBuilder line, string text)
    {
        foreach (var ch in text)
        {
            if (ch is '"' or '\\')
            {
                line.Append('\\').Append(ch);
            }
            else if (char.IsControl(ch))
            {
                line.Append("\\x").Append(((int)ch).ToString("x2", CultureInfo.InvariantCulture));
            }
            else
            {
                line.Append(ch);
            }
        }
    }

    private void WriteJson(in AccessLogEntry e, IBufferWriter<byte> output)
    {
        if (_json is null)
        {
            _json = new Utf8JsonWriter(output, JsonOptions);
        }
        else
        {
            _json.Reset(output);
        }

        var json = _json;
        json.WriteStartObject();
        json.WriteString("time", e.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        WriteOrNull(json, "client", e.Client?.ToString());
        json.WriteString("method", e.Method);
        json.WriteString("host", e.Host);
        json.WriteString("path", e.Path);
        json.WriteString("query", e.Query);
        json.WriteString("protocol", e.Protocol);
        json.WriteNumber("status", e.Status);
        json.WritePropertyName("duration_ms");
        Span<byte> milliseconds = stackalloc byte[32];
        _ = e.Duration.TotalMilliseconds.TryFormat(milliseconds, out var written, "0.###", CultureInfo.InvariantCulture);
        json.WriteRawValue(milliseconds[..written], skipInputValidation: true);
        json.WriteNumber("bytes_sent", e.BytesSent);
        WriteOrNull(json, "pool", e.Pool);
        WriteOrNull(json, "backend", e.Backend);
        json.WriteNumber("retries", e.Retries);
        WriteOrNull(json, "user_agent", e.UserAgent);
        WriteOrNull(json, "referer", e.Referer);
        WriteOrNull(json, "trace_id", e.TraceId);
        json.WriteEndObject();
        json.Flush();
        output.Write("\n"u8);
    }

    private static void WriteOrNull(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }

}
