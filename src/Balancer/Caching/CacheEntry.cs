using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Primitives;

namespace Balancer.Caching;

/// <summary>
/// A stored response: when it was stored, how old it was then and how long it stays fresh, its status, fields and
/// body. Written to Redis in a small binary form (<see cref="Write"/>) that <see cref="TryRead"/> reads back with
/// every length checked, so a damaged or foreign value is a miss, never a failed request.
/// </summary>
internal sealed class CacheEntry(DateTimeOffset storedAt, TimeSpan initialAge, TimeSpan lifetime, int status, IReadOnlyList<KeyValuePair<string, StringValues>> headers, ReadOnlyMemory<byte> body)
{
    private const byte Version = 1;
    private const int MaxFields = 1000;

    public DateTimeOffset StoredAt => storedAt;

    public TimeSpan InitialAge => initialAge;

    public TimeSpan Lifetime => lifetime;

    public int Status => status;

    public IReadOnlyList<KeyValuePair<string, StringValues>> Headers => headers;

    public ReadOnlyMemory<byte> Body => body;

    /// <summary>Its age at <paramref name="now"/> (RFC 9111 §4.2.3, with this cache as the only hop since the backend).</summary>
    public TimeSpan AgeAt(DateTimeOffset now) => initialAge + (now > storedAt ? now - storedAt : TimeSpan.Zero);

    /// <summary>The time it has left to live at <paramref name="now"/>.</summary>
    public TimeSpan RemainingAt(DateTimeOffset now) => lifetime - AgeAt(now);

    public byte[] Write()
    {
        var size = 1 + 8 + 8 + 8 + 4 + 4 + 4 + body.Length;
        foreach (var (name, values) in headers)
        {
            size += 4 + Encoding.UTF8.GetByteCount(name) + 4;
            foreach (var value in values)
            {
                size += 4 + Encoding.UTF8.GetByteCount(value ?? "");
            }
        }

        var buffer = new byte[size];
        var span = buffer.AsSpan();
        span[0] = Version;
        var at = 1;
        BinaryPrimitives.WriteInt64LittleEndian(span[at..], storedAt.ToUnixTimeMilliseconds());
        BinaryPrimitives.WriteInt64LittleEndian(span[(at += 8)..], initialAge.Ticks);
        BinaryPrimitives.WriteInt64LittleEndian(span[(at += 8)..], lifetime.Ticks);
        BinaryPrimitives.WriteInt32LittleEndian(span[(at += 8)..], status);
        BinaryPrimitives.WriteInt32LittleEndian(span[(at += 4)..], headers.Count);
        at += 4;
        foreach (var (name, values) in headers)
        {
            at = WriteText(span, at, name);
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], values.Count);
            at += 4;
            foreach (var value in values)
            {
                at = WriteText(span, at, value ?? "");
            }
        }

        BinaryPrimitives.WriteInt32LittleEndian(span[at..], body.Length);
        body.Span.CopyTo(span[(at + 4)..]);
        return buffer;
    }

    private static int WriteText(Span<byte> span, int at, string text)
    {
        var length = Encoding.UTF8.GetBytes(text, span[(at + 4)..]);
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], length);
        return at + 4 + length;
    }

    /// <summary>The entry in <paramref name="data"/>, or null when it is not one this version wrote.</summary>
    public static CacheEntry? TryRead(ReadOnlyMemory<byte> data)
    {
        var reader = new Reader(data);
        if (!reader.Byte(out var version) || version != Version
            || !reader.Int64(out var stored) || !reader.Int64(out var age) || !reader.Int64(out var life)
            || !reader.Int32(out var status) || status is < 100 or > 999 || age < 0 || life < 0
            || !reader.Int32(out var count) || count is < 0 or > MaxFields)
        {
            return null;
        }

        var headers = new List<KeyValuePair<string, StringValues>>(count);
        for (var i = 0; i < count; i++)
        {
            if (!reader.Text(out var name) || name.Length == 0 || !reader.Int32(out var valueCount) || valueCount is < 0 or > MaxFields)
            {
                return null;
            }

            var values = new string[valueCount];
            for (var v = 0; v < valueCount; v++)
            {
                if (!reader.Text(out values[v]))
                {
                    return null;
                }
            }

            headers.Add(new(name, new StringValues(values)));
        }

        if (!reader.Bytes(out var body) || !reader.AtEnd || stored is < 0 or > 253402300799999)
        {
            return null;
        }

        return new CacheEntry(DateTimeOffset.FromUnixTimeMilliseconds(stored), TimeSpan.FromTicks(age), TimeSpan.FromTicks(life), status, headers, body);
    }

    private struct Reader(ReadOnlyMemory<byte> data)
    {
        private int _at;

        public readonly bool AtEnd => _at == data.Length;

        public bool Byte(out byte value)
        {
            value = _at < data.Length ? data.Span[_at] : (byte)0;
            return _at++ < data.Length;
        }

        public bool Int32(out int value)
        {
            value = 0;
            if (data.Length - _at < 4)
            {
                return false;
            }

            value = BinaryPrimitives.ReadInt32LittleEndian(data.Span[_at..]);
            _at += 4;
            return true;
        }

        public bool Int64(out long value)
        {
            value = 0;
            if (data.Length - _at < 8)
            {
                return false;
            }

            value = BinaryPrimitives.ReadInt64LittleEndian(data.Span[_at..]);
            _at += 8;
            return true;
        }

        public bool Bytes(out ReadOnlyMemory<byte> value)
        {
            value = default;
            if (!Int32(out var length) || length < 0 || data.Length - _at < length)
            {
                return false;
            }

            value = data.Slice(_at, length);
            _at += length;
            return true;
        }

        public bool Text(out string value)
        {
            value = "";
            if (!Bytes(out var bytes))
            {
                return false;
            }

            try
            {
                value = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes.Span);
                return true;
            }
            catch (DecoderFallbackException)
            {
                return false;
            }
        }
    }
}
