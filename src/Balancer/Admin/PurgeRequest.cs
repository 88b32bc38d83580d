using System.Text.Json;
using Balancer.Caching;
using Balancer.Text;

namespace Balancer.Admin;

/// <summary>
/// <c>POST /api/cache/purge</c>: <c>{"url": "https://host/path?query"}</c> (one URL, every method and variant; a path
/// alone, <c>/path?query</c>, for every host), <c>{"prefix": "/static/"}</c> (every URL whose path starts so) or
/// <c>{"all": true}</c>; exactly one of them.
/// </summary>
internal sealed record PurgeRequest(IReadOnlyList<string>? Patterns, string? Error, bool TooLarge = false)
{
    public static async Task<PurgeRequest> ReadAsync(HttpRequest request)
    {
        var body = await BackendRequest.ReadBodyAsync(request).ConfigureAwait(false);
        if (body is null)
        {
            return new(null, $"the body is over {BackendRequest.MaxBody} bytes", TooLarge: true);
        }

        if (Utf8Text.InvalidAt(body) is { } at)
        {
            return Fail($"the body is not valid UTF-8 (at byte {at})");
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            return Read(document.RootElement);
        }
        catch (JsonException e)
        {
            return Fail(body.Length == 0 ? "expected a JSON object with one of url, prefix, all" : $"the body is not JSON: {e.Message}");
        }
    }

    private static PurgeRequest Read(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return Fail("the body must be a JSON object with one of url, prefix, all");
        }

        var fields = root.EnumerateObject().ToList();
        if (fields.Count != 1)
        {
            return Fail(fields.Count == 0 ? "give one of url, prefix, all" : "give only one of url, prefix, all");
        }

        var field = fields[0];
        switch (field.Name.ToLowerInvariant())
        {
            case "all":
                return field.Value.ValueKind == JsonValueKind.True ? new([CacheKey.AllPattern], null) : Fail("all: expected true");
            case "prefix":
                return field.Value.ValueKind == JsonValueKind.String && field.Value.GetString() is ['/', ..] prefix
                    ? new([CacheKey.PrefixPattern(Normalize(prefix))], null)
                    : Fail("prefix: expected a path starting with /, such as \"/static/\"");
            case "url":
                return field.Value.ValueKind == JsonValueKind.String ? Url(field.Value.GetString()!) : Fail("url: expected a string such as \"https://example.com/page?id=1\"");
            default:
                return Fail($"unknown field {field.Name} (fields: url, prefix, all)");
        }
    }

    private static PurgeRequest Url(string url)
    {
        if (url.StartsWith('/'))
        {
            return new(CacheKey.UrlPatterns(null, null, NormalizeTarget(url)), null);
        }

        var schemeEnd = url.IndexOf("://", StringComparison.Ordinal);
        var scheme = schemeEnd > 0 ? url[..schemeEnd].ToLowerInvariant() : "";
        if (scheme is not ("http" or "https"))
        {
            return Fail("url: expected http://host/path, https://host/path or /path");
        }

        var rest = url[(schemeEnd + 3)..];
        var slash = rest.IndexOfAny(['/', '?']);
        var host = slash < 0 ? rest : rest[..slash];
        if (host.Length == 0 || host.Contains('@', StringComparison.Ordinal) || host.Any(char.IsWhiteSpace))
        {
            return Fail("url: expected a host after the scheme");
        }

        var target = slash < 0 ? "/" : rest[slash] == '?' ? "/" + rest[slash..] : rest[slash..];
        return new(CacheKey.UrlPatterns(scheme, host, NormalizeTarget(target)), null);
    }

    /// <summary>A path as the cache keys spell it (the escaped form requests are keyed by).</summary>
    private static string Normalize(string path) => PathString.FromUriComponent(path).ToUriComponent();

    private static string NormalizeTarget(string target)
    {
        var query = target.IndexOf('?', StringComparison.Ordinal);
        return query < 0 ? Normalize(target) : Normalize(target[..query]) + target[query..];
    }

    private static PurgeRequest Fail(string error) => new(null, error);
}
