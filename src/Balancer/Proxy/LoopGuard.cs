using System.Security.Cryptography;
using Microsoft.Extensions.Primitives;

namespace Balancer.Proxy;

/// <summary>
/// The hop header. Every request this balancer forwards carries <c>Via: 1.1 {Name}</c> (RFC 9110 7.6.3), the name being
/// this process's own pseudonym. A request that arrives already carrying it has come round in a loop (a backend that is
/// this balancer under another name, or two balancers pointing at each other) and is answered <c>508 Loop Detected</c>
/// rather than forwarded again, on the proxy and the admin listener alike.
/// </summary>
internal sealed class LoopGuard
{
    private readonly string _via10;
    private readonly string _via11;
    private readonly string _via2;
    private readonly string _via3;

    public LoopGuard(string? name = null)
    {
        Name = name ?? "balancer-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        _via10 = "1.0 " + Name;
        _via11 = "1.1 " + Name;
        _via2 = "2 " + Name;
        _via3 = "3 " + Name;
    }

    /// <summary>This process's received-by pseudonym.</summary>
    public string Name { get; }

    /// <summary>Our Via entry for a request received over <paramref name="protocol"/> (<c>HTTP/1.1</c>, <c>HTTP/2</c>, ...).</summary>
    public string EntryFor(string protocol) => protocol switch
    {
        "HTTP/2" => _via2,
        "HTTP/3" => _via3,
        "HTTP/1.0" => _via10,
        _ => _via11,
    };

    /// <summary>True when one of the Via entries names this process.</summary>
    public bool CameThrough(StringValues via)
    {
        foreach (var value in via)
        {
            var rest = value.AsSpan();
            int at;
            while ((at = rest.IndexOf(Name, StringComparison.OrdinalIgnoreCase)) >= 0)
            {
                var after = at + Name.Length;
                var before = at == 0 ? ',' : rest[at - 1];
                var next = after == rest.Length ? ',' : rest[after];
                if (before is ' ' or '\t' && next is ',' or ' ' or '\t' or '(')
                {
                    return true;
                }

                rest = rest[after..];
            }
        }

        return false;
    }
}
