using System.Globalization;
using System.Net;
using Balancer.Configuration;
using Balancer.Networking;
using Microsoft.Data.Sqlite;

namespace Balancer.Registry;

/// <summary>
/// The durable copy of registered backends: one SQLite file in WAL mode with full fsync on commit and foreign
/// keys on. One connection, used only by the registry's writer (and at start-up to load).
/// </summary>
public sealed class SqliteRegistrationStore : IDisposable
{
    // Each entry moves the schema from version i to i + 1 (PRAGMA user_version); never edit one, append.
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE backends (
            address    TEXT    NOT NULL PRIMARY KEY,
            pool       TEXT    NOT NULL,
            weight     INTEGER NOT NULL CHECK (weight >= 0),
            source     TEXT    NOT NULL,
            seq        INTEGER NOT NULL UNIQUE,
            created_at TEXT    NOT NULL,
            updated_at TEXT    NOT NULL
        );
        CREATE TABLE backend_paths (
            address TEXT NOT NULL REFERENCES backends(address) ON DELETE CASCADE,
            path    TEXT NOT NULL,
            PRIMARY KEY (address, path)
        );
        CREATE TABLE backend_clients (
            address TEXT NOT NULL REFERENCES backends(address) ON DELETE CASCADE,
            network TEXT NOT NULL,
            PRIMARY KEY (address, network)
        );
        """,
        "ALTER TABLE backends ADD COLUMN draining_since TEXT NULL;",
        // Addresses in their normal form: the control plane once stored a backend on port 80 as http://host:80.
        """
        PRAGMA defer_foreign_keys = ON;
        DELETE FROM backends WHERE address LIKE 'http://%:80' AND substr(address, 1, length(address) - 3) IN (SELECT address FROM backends);
        UPDATE backend_paths SET address = substr(address, 1, length(address) - 3) WHERE address LIKE 'http://%:80';
        UPDATE backend_clients SET address = substr(address, 1, length(address) - 3) WHERE address LIKE 'http://%:80';
        UPDATE backends SET address = substr(address, 1, length(address) - 3) WHERE address LIKE 'http://%:80';
        """,
    ];

    private SqliteConnection _connection;

    private SqliteRegistrationStore(SqliteConnection connection, string path)
    {
        _connection = connection;
        Path = path;
    }

    public string Path { get; }

    /// <summary>Opens (creating if needed) the database at <paramref name="path"/> and brings its schema up to date.</summary>
    public static SqliteRegistrationStore Open(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        var connection = Connect(path);
        try
        {
            Migrate(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        return new SqliteRegistrationStore(connection, path);
    }

    /// <summary>
    /// Drops the connection and opens a new one: after a failure that may have left the old one inside a transaction
    /// SQLite (or the provider) no longer agrees about, as a full disk can.
    /// </summary>
    public void Reopen()
    {
        var fresh = Connect(Path);
        var old = _connection;
        _connection = fresh;
        try
        {
            old.Dispose();
        }
        catch (SqliteException)
        {
            // It is being thrown away because it misbehaved.
        }
    }

    private static SqliteConnection Connect(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, Mode = SqliteOpenMode.ReadWriteCreate }.ToString());
        try
        {
            connection.Open();
            Execute(connection, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;");
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads the schema version and applies what is missing in one write transaction (BEGIN IMMEDIATE), so that
    /// balancers opening one new database at the same moment take turns: the first creates the schema, the others
    /// wait (busy_timeout) and find it made.
    /// </summary>
    private static void Migrate(SqliteConnection connection)
    {
        using var transaction = connection.BeginTransaction(deferred: false);
        var version = Convert.ToInt32(Scalar(connection, "PRAGMA user_version", transaction), CultureInfo.InvariantCulture);
        if (version > Migrations.Length)
        {
            throw new InvalidOperationException($"The database schema is version {version}, newer than this build knows ({Migrations.Length}).");
        }

        for (var next = version; next < Migrations.Length; next++)
        {
            Execute(connection, Migrations[next], transaction);
        }

        if (version < Migrations.Length)
        {
            Execute(connection, $"PRAGMA user_version = {Migrations.Length}", transaction);
        }

        transaction.Commit();
    }

    /// <summary>Every stored registration, in registration order.</summary>
    /// <exception cref="StoredRegistrationsException">Rows that cannot be read back, or describe an impossible backend: every one of them.</exception>
    public IReadOnlyList<BackendEntry> LoadAll()
    {
        var problems = new List<string>();
        var paths = Group("SELECT address, path FROM backend_paths ORDER BY address, path", "backend_paths", "path", problems);
        var clients = Group("SELECT address, network FROM backend_clients ORDER BY address, rowid", "backend_clients", "network", problems);
        var entries = new List<BackendEntry>();
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT address, pool, weight, source, seq, draining_since FROM backends ORDER BY seq";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var row = new StoredRow(reader);
            var address = row.Text(0, "address");
            var entry = row.Problem is null ? Read(row, address!, paths, clients) : null;
            if (row.Problem is { } problem)
            {
                problems.Add($"backends row address={Quote(address ?? reader.GetValue(0).ToString())}: {problem}");
            }
            else
            {
                entries.Add(entry!);
            }
        }

        if (problems.Count > 0)
        {
            throw new StoredRegistrationsException(Path, problems);
        }

        return entries;
    }

    private static BackendEntry? Read(StoredRow row, string address, Dictionary<string, List<string>> paths, Dictionary<string, List<string>> clients)
    {
        if (!ValueParsers.BackendAddress(address, out var normalized, out var error) || normalized != address)
        {
            row.Fail(error.Length > 0 ? $"address {error}" : $"address {address} is not in its normal form ({normalized})");
            return null;
        }

        var pool = row.Text(1, "pool");
        var weight = row.Integer(2, "weight", 0, 1_000_000);
        var source = row.Text(3, "source");
        var order = row.Integer(4, "seq", long.MinValue, long.MaxValue);
        var draining = row.Time(5, "draining_since");
        BackendSource parsedSource = default;
        if (source is not null && !(Enum.TryParse(source, ignoreCase: false, out parsedSource) && parsedSource != BackendSource.Config))
        {
            row.Fail($"source {Quote(source)} is not {nameof(BackendSource.ControlPlane)} or {nameof(BackendSource.Api)}");
        }

        var networks = new List<IPNetwork>();
        foreach (var text in clients.GetValueOrDefault(address) ?? [])
        {
            if (NetworkList.TryParseNetwork(text, out var network, out var networkError))
            {
                networks.Add(network);
            }
            else
            {
                row.Fail($"client {networkError}");
            }
        }

        foreach (var path in paths.GetValueOrDefault(address) ?? [])
        {
            if (!ValueParsers.PathPrefix(path, out var prefix, out var pathError) || prefix != path)
            {
                row.Fail($"path {(pathError.Length > 0 ? pathError : $"{path} is not in its normal form ({prefix})")}");
            }
        }

        return row.Problem is null
            ? new BackendEntry(address, pool!, (int)weight!.Value, paths.GetValueOrDefault(address) ?? [], new NetworkList(networks), parsedSource, order!.Value, draining)
            : null;
    }

    private static string Quote(string? text) => text is null ? "NULL" : $"'{text.Replace("'", "''", StringComparison.Ordinal)}'";

    /// <summary>Starts a batch: one transaction, holding the write lock until committed or disposed.</summary>
    public RegistrationBatch Begin() => new(_connection, _connection.BeginTransaction(deferred: false));

    public void Dispose() => _connection.Dispose();

    private Dictionary<string, List<string>> Group(string sql, string table, string column, List<string> problems)
    {
        var groups = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            if (reader.GetValue(0) is not string key || reader.GetValue(1) is not string value)
            {
                problems.Add($"{table} row address={Quote(reader.GetValue(0).ToString())}, {column}={Quote(reader.GetValue(1).ToString())}: not text");
                continue;
            }

            if (!groups.TryGetValue(key, out var list))
            {
                groups[key] = list = [];
            }

            list.Add(value);
        }

        return groups;
    }

    private static object? Scalar(SqliteConnection connection, string sql, SqliteTransaction transaction)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}

/// <summary>
/// One transaction of registration changes. Each <see cref="Write"/> is atomic on its own (a savepoint), so one
/// failing change leaves the others of the batch in place.
/// </summary>
public sealed class RegistrationBatch : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly SqliteTransaction _transaction;
    private readonly SqliteCommand _upsert;
    private readonly SqliteCommand _delete;
    private readonly SqliteCommand _addPath;
    private readonly SqliteCommand _removePath;
    private readonly SqliteCommand _addClient;
    private readonly SqliteCommand _removeClient;
    private int _savepoints;

    /// <summary>SQLite rolled the whole transaction back by itself: nothing in it is stored, and nothing more can be.</summary>
    public bool Broken { get; private set; }

    internal RegistrationBatch(SqliteConnection connection, SqliteTransaction transaction)
    {
        _connection = connection;
        _transaction = transaction;
        _upsert = Command("""
            INSERT INTO backends (address, pool, weight, source, seq, created_at, updated_at, draining_since)
            VALUES ($address, $pool, $weight, $source, $seq, $now, $now, $draining)
            ON CONFLICT (address) DO UPDATE SET pool = excluded.pool, weight = excluded.weight, updated_at = excluded.updated_at,
                draining_since = excluded.draining_since
            """, "$address", "$pool", "$weight", "$source", "$seq", "$now", "$draining");
        _delete = Command("DELETE FROM backends WHERE address = $address", "$address");
        _addPath = Command("INSERT OR IGNORE INTO backend_paths (address, path) VALUES ($address, $value)", "$address", "$value");
        _removePath = Command("DELETE FROM backend_paths WHERE address = $address AND path = $value", "$address", "$value");
        _addClient = Command("INSERT OR IGNORE INTO backend_clients (address, network) VALUES ($address, $value)", "$address", "$value");
        _removeClient = Command("DELETE FROM backend_clients WHERE address = $address AND network = $value", "$address", "$value");
    }

    /// <summary>
    /// Moves the stored state of one backend from <paramref name="before"/> to <paramref name="after"/> (null: absent).
    /// On a database error, throws and leaves the batch as it was before this call.
    /// </summary>
    public void Write(BackendEntry? before, BackendEntry? after)
    {
        var savepoint = $"change{_savepoints++}";
        _transaction.Save(savepoint);
        try
        {
            if (after is null)
            {
                Run(_delete, before!.Address);
            }
            else
            {
                Run(_upsert, after.Address, after.Pool, after.Weight, after.Source.ToString(), after.Order, DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
                    after.DrainingSince?.ToString("O", CultureInfo.InvariantCulture) ?? (object)DBNull.Value);
                var oldPaths = before?.Paths ?? [];
                var oldClients = before?.Clients.Networks.Select(n => n.ToString()) ?? [];
                var newClients = after.Clients.Networks.Select(n => n.ToString()).ToList();
                foreach (var path in after.Paths.Except(oldPaths))
                {
                    Run(_addPath, after.Address, path);
                }

                foreach (var path in oldPaths.Except(after.Paths))
                {
                    Run(_removePath, after.Address, path);
                }

                foreach (var client in newClients.Except(oldClients))
                {
                    Run(_addClient, after.Address, client);
                }

                foreach (var client in oldClients.Except(newClients))
                {
                    Run(_removeClient, after.Address, client);
                }
            }

            _transaction.Release(savepoint);
        }
        catch (SqliteException)
        {
            try
            {
                _transaction.Rollback(savepoint);
                _transaction.Release(savepoint);
            }
            catch (Exception e) when (e is SqliteException or InvalidOperationException)
            {
                Broken = true; // no transaction (or savepoint) left to roll back to
            }

            throw;
        }
    }

    /// <summary>Makes every write durable (fsync). Throws if it cannot.</summary>
    public void Commit() => _transaction.Commit();

    public void Dispose()
    {
        foreach (var command in new[] { _upsert, _delete, _addPath, _removePath, _addClient, _removeClient })
        {
            command.Dispose();
        }

        _transaction.Dispose(); // rolls back unless committed
    }

    private SqliteCommand Command(string sql, params string[] parameters)
    {
        var command = _connection.CreateCommand();
        command.Transaction = _transaction;
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        }

        command.Prepare();
        return command;
    }

    private static void Run(SqliteCommand command, params object[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            command.Parameters[i].Value = values[i];
        }

        command.ExecuteNonQuery();
    }
}
