namespace Balancer.Registry;

/// <summary>The registration database holds rows that cannot be restored: each named, with what to do about them.</summary>
public sealed class StoredRegistrationsException : Exception
{
    public StoredRegistrationsException(string path, IReadOnlyList<string> problems)
        : base(Describe(path, problems))
    {
        Problems = problems;
    }

    public StoredRegistrationsException()
    {
        Problems = [];
    }

    public StoredRegistrationsException(string message)
        : base(message)
    {
        Problems = [];
    }

    public StoredRegistrationsException(string message, Exception innerException)
        : base(message, innerException)
    {
        Problems = [];
    }

    public IReadOnlyList<string> Problems { get; }

    private static string Describe(string path, IReadOnlyList<string> problems) =>
        $"the registration database {path} holds {problems.Count} row(s) that cannot be restored:\n"
        + string.Concat(problems.Select(p => $"  {p}\n"))
        + $"Nothing was started. Correct or delete those rows (sqlite3 {path}), or move the file aside to start with no registrations.";
}
