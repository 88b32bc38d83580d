using System.Collections.Frozen;
using System.Reflection;

namespace Balancer.Admin;

/// <summary>
/// The live dashboard, <c>GET /</c> on the admin listener: three static files embedded in the balancer (no CDN, no build
/// step), which read <c>/api/stats</c> and <c>/events</c> and call the backends API. Served with a content security policy
/// that lets the page load and call nothing but this admin API.
/// </summary>
internal static class Dashboard
{
    private const string Policy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

    private static readonly FrozenDictionary<string, (byte[] Body, string ContentType)> Files = new Dictionary<string, (byte[], string)>
    {
        ["/"] = (Read("index.html"), "text/html; charset=utf-8"),
        ["/dashboard.js"] = (Read("dashboard.js"), "text/javascript; charset=utf-8"),
        ["/dashboard.css"] = (Read("dashboard.css"), "text/css; charset=utf-8"),
    }.ToFrozenDictionary();

    public static void Map(RouteGroupBuilder files)
    {
        foreach (var (path, file) in Files)
        {
            files.MapGet(path, (HttpContext context) =>
            {
                var headers = context.Response.Headers;
                headers.ContentSecurityPolicy = Policy;
                headers.XContentTypeOptions = "nosniff";
                headers.CacheControl = "no-cache";
                headers["Referrer-Policy"] = "no-referrer";
                return Results.Bytes(file.Body, file.ContentType);
            });
        }
    }

    private static byte[] Read(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("dashboard/" + name)
            ?? throw new InvalidOperationException($"the dashboard's {name} is not embedded in this build");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
