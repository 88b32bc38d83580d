using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Balancer.Registry;

/// <summary>Reads the columns of one stored row as the types they must be, keeping the first thing wrong with it.</summary>
internal sealed class StoredRow(SqliteDataReader reader)
{
    public string? Problem { get; private set; }

    public void Fail(string problem) => Problem ??= problem;

    public string? Text(int column, string name)
    {
        if (reader.GetValue(column) is string text && text.Length > 0)
        {
            return text;
        }

        Fail($"{name} {Show(column)} is not text");
        return null;
    }

    public long? Integer(int column, string name, long min, long max)
    {
        if (reader.GetValue(column) is long value && value >= min && value <= max)
        {
            return value;
        }

        Fail($"{name} {Show(column)} is not {(min == long.MinValue ? "an integer" : $"an integer from {min} to {max}")}");
        return null;
    }

    /// <summary>A time written in round-trip form, or NULL.</summary>
    public DateTimeOffset? Time(int column, string name)
    {
        var value = reader.GetValue(column);
        if (value is DBNull)
        {
            return null;
        }

        if (value is string text && DateTimeOffset.TryParseExact(text, "O", CultureInfo.InvariantCulture, DateTimeStyles.None, out var time))
        {
            return time;
        }

        Fail($"{name} {Show(column)} is not a time such as 2026-01-01T00:00:00.0000000+00:00");
        return null;
    }

    private string Show(int column) => reader.GetValue(column) switch
    {
        DBNull => "NULL",
        string text => $"'{text}'",
        byte[] blob => $"(a blob of {blob.Length} bytes)",
        var other => Convert.ToString(other, CultureInfo.InvariantCulture) ?? "?",
    };
}
