using System.Globalization;
using Microsoft.Extensions.Primitives;

namespace Balancer.Caching;

/// <summary>
/// The <c>Cache-Control</c> directives a shared cache acts on (RFC 9111 §5.2), from every field line of a request or a
/// response. Directive names are case-insensitive; a delta-seconds value that does not parse makes its directive count
/// as absent, except <c>max-age</c> and <c>s-maxage</c> on a response, where an invalid value means "stale" (§4.2.1).
/// <c>private</c> and <c>no-cache</c> may name fields (<c>private="Set-Cookie"</c>): then only those fields are withheld
/// from the stored response rather than the whole response.
/// </summary>
internal sealed class CacheControl
{
    public bool NoStore { get; private set; }

    /// <summary>Unqualified <c>no-cache</c>.</summary>
    public bool NoCache { get; private set; }

    /// <summary>Unqualified <c>private</c>.</summary>
    public bool Private { get; private set; }

    public bool Public { get; private set; }

    public bool MustRevalidate { get; private set; }

    public bool OnlyIfCached { get; private set; }

    public TimeSpan? MaxAge { get; private set; }

    public TimeSpan? SharedMaxAge { get; private set; }

    public TimeSpan? MinFresh { get; private set; }

    /// <summary>Fields named by <c>private="..."</c> and <c>no-cache="..."</c>: stored responses go without them.</summary>
    public List<string>? WithheldFields { get; private set; }

    public static readonly CacheControl None = new();

    public static CacheControl Parse(StringValues values)
    {
        if (values.Count == 0)
        {
            return None;
        }

        var result = new CacheControl();
        foreach (var line in values)
        {
            if (line is not null)
            {
                result.Read(line);
            }
        }

        return result;
    }

    private void Read(string line)
    {
        var position = 0;
        while (position < line.Length)
        {
            while (position < line.Length && (line[position] is ',' or ' ' or '\t'))
            {
                position++;
            }

            var nameStart = position;
            while (position < line.Length && line[position] is not (',' or '=' or ' ' or '\t'))
            {
                position++;
            }

            var name = line.AsSpan(nameStart, position - nameStart);
            while (position < line.Length && line[position] is ' ' or '\t')
            {
                position++;
            }

            string? value = null;
            if (position < line.Length && line[position] == '=')
            {
                position++;
                while (position < line.Length && line[position] is ' ' or '\t')
                {
                    position++;
                }

                value = position < line.Length && line[position] == '"' ? ReadQuoted(line, ref position) : ReadToken(line, ref position);
            }

            // Anything up to the next comma belongs to a malformed directive: skip it.
            while (position < line.Length && line[position] != ',')
            {
                position++;
            }

            if (name.Length > 0)
            {
                Apply(name, value);
            }
        }
    }

    private static string ReadToken(string line, ref int position)
    {
        var start = position;
        while (position < line.Length && line[position] is not (',' or ' ' or '\t'))
        {
            position++;
        }

        return line[start..position];
    }

    private static string ReadQuoted(string line, ref int position)
    {
        position++; // the opening quote
        var text = new System.Text.StringBuilder();
        while (position < line.Length && line[position] != '"')
        {
            if (line[position] == '\\' && position + 1 < line.Length)
            {
                position++;
            }

            text.Append(line[position++]);
        }

        position = Math.Min(line.Length, position + 1); // the closing quote
        return text.ToString();
    }

    private void Apply(ReadOnlySpan<char> name, string? value)
    {
        if (name.Equals("no-store", StringComparison.OrdinalIgnoreCase))
        {
            NoStore = true;
        }
        else if (name.Equals("no-cache", StringComparison.OrdinalIgnoreCase))
        {
            if (FieldNames(value) is { } fields)
            {
                Withhold(fields);
            }
            else
            {
                NoCache = true;
            }
        }
        else if (name.Equals("private", StringComparison.OrdinalIgnoreCase))
        {
            if (FieldNames(value) is { } fields)
            {
                Withhold(fields);
            }
            else
            {
                Private = true;
            }
        }
        else if (name.Equals("public", StringComparison.OrdinalIgnoreCase))
        {
            Public = true;
        }
        else if (name.Equals("must-revalidate", StringComparison.OrdinalIgnoreCase) || name.Equals("proxy-revalidate", StringComparison.OrdinalIgnoreCase))
        {
            MustRevalidate = true;
        }
        else if (name.Equals("only-if-cached", StringComparison.OrdinalIgnoreCase))
        {
            OnlyIfCached = true;
        }
        else if (name.Equals("max-age", StringComparison.OrdinalIgnoreCase))
        {
            MaxAge = Seconds(value) ?? TimeSpan.Zero;
        }
        else if (name.Equals("s-maxage", StringComparison.OrdinalIgnoreCase))
        {
            SharedMaxAge = Seconds(value) ?? TimeSpan.Zero;
        }
        else if (name.Equals("min-fresh", StringComparison.OrdinalIgnoreCase))
        {
            MinFresh = Seconds(value);
        }
    }

    private void Withhold(IEnumerable<string> fields) => (WithheldFields ??= []).AddRange(fields);

    /// <summary>The field names of a qualified <c>private</c> or <c>no-cache</c>; null when unqualified (or naming none).</summary>
    private static string[]? FieldNames(string? value) =>
        value?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) is { Length: > 0 } fields ? fields : null;

    /// <summary>delta-seconds; values too large for the clock are capped (RFC 9111 §1.2.2 allows treating them as 2^31).</summary>
    private static TimeSpan? Seconds(string? value) =>
        value is { Length: > 0 } && value.All(char.IsAsciiDigit)
            ? TimeSpan.FromSeconds(long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) ? Math.Min(seconds, int.MaxValue) : int.MaxValue)
            : null;
}
