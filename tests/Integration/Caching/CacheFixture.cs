using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Balancer.Caching;
using Balancer.Tests.Kit;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Testbed.Scenarios;

namespace Balancer.Tests.Integration.Caching;

/// <summary>
/// One redis-server, one scripted backend and one balancer caching the pool <c>/c</c> (ttl 30 s when the backend
/// says nothing, objects up to 4 KB), shared by the cache rule tests: each uses paths of its own. The backend answers
/// <c>/c/{case}</c> with the case's status and fields (<see cref="Cases"/>) and a body naming the case and how many
/// times it was asked, so a cached answer is told apart from a fresh one.
/// </summary>
public sealed class CacheFixture : IAsyncLifetime
{
    /// <summary>Fields by case; <c>{+60}</c> and <c>{-60}</c> stand for HTTP dates that far from now.</summary>
    public static readonly System.Collections.Concurrent.ConcurrentDictionary<string, (int Status, string Fields)> Cases = new(StringComparer.Ordinal);

    private RedisServer? _redis;
    private ScriptedBackend? _backend;
    private TestBalancer? _balancer;

    public RedisServer Redis => _redis!;

    public ScriptedBackend Backend => _backend!;

    public TestBalancer Balancer => _balancer!;

    /// <summary>A client of the proxy that does not follow redirects (cached 301s are under test).</summary>
    public HttpClient Client { get; private set; } = null!;

    public const string Prefix = "cachetest:";

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _backend = await ScriptedBackend.StartAsync(AnswerAsync);
        _balancer = await TestBalancer.StartAsync($$"""
            BalanceHub: { redis-server: { port: {{_redis.Port}}, key-prefix: "{{Prefix}}", timeout: 10s, max-object-size: 4KB } }
            admin: { token: "purge-secret" }
            retries: { attempts: 1 }
            outlier-detection: { enabled: false }
            pools: [ { name: cached, paths: [/c], cache: { ttl: 30s }, backends: [ { address: "{{_backend.Address}}" } ] } ]
            """);
        Client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = _balancer.Client.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        await Eventually.TrueAsync(async () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/health");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "purge-secret");
            using var response = await _balancer.Admin.SendAsync(request);
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("redis").GetProperty("state").GetString() == "up";
        }, "the balancer to connect to Redis");
    }

    private static async Task AnswerAsync(HttpContext context, int count)
    {
        var name = context.Request.Path.Value!.Split('/').Last();
        var (status, fields) = Cases.TryGetValue(name, out var found) ? found : (200, "");
        context.Response.StatusCode = status;
        foreach (var line in fields.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            var value = line[(colon + 1)..].Trim()
                .Replace("{+60}", DateTimeOffset.UtcNow.AddSeconds(60).ToString("R", CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Replace("{-60}", DateTimeOffset.UtcNow.AddSeconds(-60).ToString("R", CultureInfo.InvariantCulture), StringComparison.Ordinal);
            context.Response.Headers.Append(line[..colon].Trim(), value);
        }

        if (context.Request.Query.TryGetValue("size", out var size))
        {
            await context.Response.WriteAsync(new string('x', int.Parse(size!, CultureInfo.InvariantCulture)));
            return;
        }

        if (context.Request.Query.TryGetValue("delay", out var delay))
        {
            await Task.Delay(int.Parse(delay!, CultureInfo.InvariantCulture));
        }

        if (status is not (204 or 304) && !HttpMethods.IsHead(context.Request.Method))
        {
            var accept = context.Request.Headers.Accept.ToString();
            await context.Response.WriteAsync($"{name} #{count}{(accept.Length > 0 ? " for " + accept : "")}");
        }
    }

    /// <summary>Waits until the balancer has heard back from Redis about every store it sent.</summary>
    public Task StoredAsync() =>
        Eventually.TrueAsync(() => Balancer.Running.App.Services.GetRequiredService<ResponseCache>().PendingStores == 0, "the cache stores to finish");

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        if (_balancer is not null)
        {
            await _balancer.DisposeAsync();
        }

        if (_backend is not null)
        {
            await _backend.DisposeAsync();
        }

        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }
}
