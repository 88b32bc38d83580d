namespace Balancer.Reload;

/// <summary>What a reload did.</summary>
/// <param name="Applied">The new configuration is in force (all of it but <paramref name="RestartNeeded"/>).</param>
/// <param name="Errors">Why nothing changed: the file's mistakes with their lines, or the proxy's refusal.</param>
/// <param name="Changed">The settings that changed and are now in force (key paths as in error messages).</param>
/// <param name="RestartNeeded">Settings that changed but take a restart (listeners, Redis, observability...): still as they were.</param>
/// <param name="Registrations">What became of the registrations (all kept).</param>
/// <param name="Invalid">The file was wrong (bad input), as opposed to the proxy refusing what it said.</param>
internal sealed record ReloadResult(bool Applied, IReadOnlyList<string> Errors, IReadOnlyList<string> Changed, IReadOnlyList<string> RestartNeeded, string Registrations, bool Invalid = false);
