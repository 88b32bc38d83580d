using Microsoft.Data.Sqlite;

namespace Balancer.Tests.Kit;

/// <summary>The registration database as a file, reached behind the balancer's back: to corrupt rows, add triggers, count.</summary>
public static class SqliteFile
{
    public static void Execute(string database, string sql)
    {
        using var connection = Open(database);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public static long Count(string database, string table)
    {
        using var connection = Open(database);
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table}";
        return (long)command.ExecuteScalar()!;
    }

    private static SqliteConnection Open(string database)
    {
        var connection = new SqliteConnection($"Data Source={database};Pooling=False");
        connection.Open();
        return connection;
    }
}
