using System.Security.Cryptography;
using System.Text;

namespace Balancer.Persistence;

/// <summary>
/// The HMAC key that signs persistence cookies and headers: <c>persistence.key</c> when configured, else 32 random
/// bytes kept in <c>affinity.key</c> beside the registration database (created on first start, readable by the owner
/// only), so that cookies outlive restarts and every balancer sharing the directory (or the configured key) accepts them.
/// </summary>
internal sealed class AffinityKey
{
    public const string FileName = "affinity.key";

    private AffinityKey(byte[] key) => Bytes = key;

    public byte[] Bytes { get; }

    public static AffinityKey Configured(string key) => new(Encoding.UTF8.GetBytes(key));

    /// <summary>The key in <paramref name="directory"/>, created there when absent; an <see cref="IOException"/> saying why not.</summary>
    public static AffinityKey InDirectory(string directory)
    {
        try
        {
            return ReadOrCreate(directory);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new IOException($"the persistence key in {directory} cannot be read or made: {e.Message}", e);
        }
    }

    private static AffinityKey ReadOrCreate(string directory)
    {
        var path = System.IO.Path.Combine(directory, FileName);
        if (File.Exists(path))
        {
            var existing = File.ReadAllBytes(path);
            if (existing.Length >= 32)
            {
                return new AffinityKey(existing);
            }

            throw new IOException($"{path} holds {existing.Length} bytes, fewer than the 32 a persistence key needs; delete it to have a new one made (sticky sessions then start over)");
        }

        Directory.CreateDirectory(directory);
        var key = RandomNumberGenerator.GetBytes(32);
        var temporary = path + ".tmp";
        var create = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var file = new FileStream(temporary, create))
        {
            file.Write(key);
            file.Flush(flushToDisk: true);
        }

        try
        {
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary);
            return ReadOrCreate(directory); // another balancer sharing the directory made it first: use theirs
        }

        return new AffinityKey(key);
    }
}
