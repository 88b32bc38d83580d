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
        var c = CultureInfo.InvariantCulture;
        line.Append(e.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", c)).Append(' ')
            .Append(e.Client?.ToString() ?? "-").Append(' ');
        AppendRequestLine(line, e);
        line.Append(' ').Append(e.Status.ToString(c)).Append(' ')
            .Append(Milliseconds(e.Duration)).Append(' ')
            .Append(e.Pool ?? "-").Append(' ')
            .Append(e.Backend ?? "-").Append(' ')
            .Append(e.Retries.ToString(c)).Append(' ');
        AppendQuoted(line, e.UserAgent);
        line.Append('\n');
    }

    /// <summary>nginx's <c>combined</c>: <c>client - - [02/Dec/2026:07:13:59 +0000] "request" status bytes "referer" "user-agent"</c>.</summary>
    private static void AppendCombined(StringBuilder line, in AccessLogEntry e)
    {
        var c = CultureInfo.InvariantCulture;
        line.Append(e.Client?.ToString() ?? "-").Append(" - - [")
            .Append(e.Time.UtcDateTime.ToString("dd'/'MMM'/'yyyy':'HH':'mm':'ss '+0000'", c)).Append("] ");
        AppendRequestLine(line, e);
        line.Append(' ').Append(e.Status.ToString(c)).Append(' ').Append(e.BytesSent.ToString(c)).Append(' ');
        AppendQuoted(line, e.Referer);
        line.Append(' ');
        AppendQuoted(line, e.UserAgent);
        line.Append('\n');
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
        json.WriteRawValue(Milliseconds(e.Duration), skipInputValidation: true);
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

    private static string Milliseconds(TimeSpan duration) => duration.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture);
}
