using Balancer.Configuration;
using Balancer.LoadBalancing;
using Balancer.Persistence;
using Microsoft.AspNetCore.Http;

namespace Balancer.Tests.Unit.Configuration;

/// <summary><c>persistence</c>: the modes, the cookie's attributes, a pool's section over the top-level one, and mistakes.</summary>
public sealed class PersistenceConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-persistence-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private ConfigLoadResult Load(string yaml)
    {
        var path = Path.Combine(_dir, "config.yaml");
        File.WriteAllText(path, yaml);
        return ConfigLoader.Load(path, [], new Dictionary<string, string>());
    }

    [Fact]
    public void NothingSaid_IsNone()
    {
        var o = Load("").Options!;
        Assert.Equal(PersistenceMode.None, o.Pools[0].Persistence.Mode);
        Assert.Null(o.PersistenceKey);
    }

    [Theory]
    [InlineData("cookie", PersistenceMode.Cookie, "lb_session")]
    [InlineData("Cookie", PersistenceMode.Cookie, "lb_session")]
    [InlineData("header:X-Session", PersistenceMode.Header, "X-Session")]
    [InlineData("ip_hash", PersistenceMode.IpHash, "lb_session")]
    [InlineData("consistent-hash", PersistenceMode.ConsistentHash, "lb_session")]
    [InlineData("none", PersistenceMode.None, "lb_session")]
    public void Modes(string mode, PersistenceMode expected, string name)
    {
        var persistence = Load($"persistence: {mode}").Options!.Pools[0].Persistence;
        Assert.Equal((expected, name), (persistence.Mode, persistence.Name));
    }

    [Fact]
    public void APool_OverridesWhatItNames_AndHashModesAreTheirAlgorithm()
    {
        var o = Load("""
            BalanceHub: { algorithm: least-connections }
            persistence: { mode: cookie, name: S, max-age: 30m, secure: true, same-site: none, when-unavailable: reject, key: 0123456789abcdef0123456789abcdef }
            pools:
              - { name: a, paths: [/a], persistence: { http-only: false } }
              - { name: b, paths: [/b], persistence: ip-hash }
              - { name: c, paths: [/c], persistence: { mode: consistent-hash, when-unavailable: repick }, hash-key: "header:X-User" }
            """).Options!;

        var top = o.Pools[0].Persistence;
        Assert.Equal((PersistenceMode.Cookie, "S", TimeSpan.FromMinutes(30), true, true, SameSiteMode.None, true), (top.Mode, top.Name, top.MaxAge, top.Secure, top.HttpOnly, top.SameSite, top.Reject));
        Assert.Equal(top with { HttpOnly = false, Name = "S_a" }, o.Pools[1].Persistence); // each pool its own cookie, unless it names one
        Assert.Equal((PersistenceMode.IpHash, AlgorithmNames.IpHash), (o.Pools[2].Persistence.Mode, o.Pools[2].Algorithm));
        Assert.Equal(AlgorithmNames.ConsistentHash, o.Pools[3].Algorithm);
        Assert.Equal((AlgorithmNames.LeastConnections, AlgorithmNames.LeastConnections), (o.Pools[0].Algorithm, o.Pools[1].Algorithm));
        Assert.Equal("0123456789abcdef0123456789abcdef", o.PersistenceKey);
    }

    [Fact]
    public void TwoPoolsNamingOneCookie_IsAnError()
    {
        Assert.Equal(
            ["pools[1].persistence (line 4): cookie S is also pool a's: two pools with one cookie would overwrite each other's pins; give each its own name"],
            Load("""
                persistence: cookie
                pools:
                  - { name: a, paths: [/a], persistence: { name: S } }
                  - { name: b, paths: [/b], persistence: { name: S } }
                """).Errors);
        Assert.Empty(Load("persistence: cookie\npools: [ { name: a, paths: [/a] }, { name: b, paths: [/b] } ]").Errors);
    }

    [Theory]
    [InlineData("persistence: sticky", "persistence (line 1): sticky is not a persistence mode; use none, cookie, header:NAME, ip-hash or consistent-hash")]
    [InlineData("persistence: \"header:\"", "persistence (line 1): header::  is not a header name")]
    [InlineData("persistence: { mode: cookie, key: short }", "persistence.key (line 1): is 5 characters; a signing key needs at least 32 (e.g. openssl rand -base64 32)")]
    [InlineData("persistence: { mode: cookie, secure: false, same-site: none }", "persistence.same-site (line 1): none needs secure: true or auto (browsers drop a SameSite=None cookie that is not Secure)")]
    [InlineData("persistence: { mode: ip-hash, when-unavailable: reject }", "persistence.when-unavailable (line 1): reject needs cookie or header persistence: a hash moves a client to the next backend by itself")]
    [InlineData("persistence: { mode: header:X-S, name: other }", "persistence.name (line 1): is the cookie's; a header's name is in the mode (mode: header:X-Session)")]
    [InlineData("persistence: { mode: cookie, name: \"a b\" }", "persistence.name (line 1): a b is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)")]
    [InlineData("persistence: { mode: cookie, when-unavailable: wait }", "persistence.when-unavailable (line 1): wait is not one of repick, reject")]
    [InlineData("pools: [ { name: a, paths: [/a], persistence: { key: 0123456789abcdef0123456789abcdef } } ]", "pools[0].persistence.key (line 1): unknown key")]
    public void Mistakes_AreNamed(string yaml, string error) => Assert.Equal([error], Load(yaml).Errors);
}
