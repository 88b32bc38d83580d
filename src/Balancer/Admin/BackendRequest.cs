using System.Net;
using System.Text.Json;
using Balancer.Configuration;
using Balancer.Text;

namespace Balancer.Admin;

/// <summary>
/// A JSON body of the backends API, read by hand so that every problem is named: unknown fields, wrong types,
/// bad values (with the same parsers and messages as config.yaml).
/// </summary>
internal sealed class BackendRequest
{
    /// <summary>POST /backends: <c>{address, weight?, paths?, clients?, pool?}</c>.</summary>
    public static readonly Shape Create = new(["address", "weight", "paths", "clients", "pool"], ["address"]);

    /// <summary>PUT /backends/{address}: <c>{weight?, paths?, clients?}</c>, at least one; the lists given replace the backend's.</summary>
    public static readonly Shape Update = new(["weight", "paths", "clients"], []);

    internal const int MaxBody = 64 * 1024;

    public string? Error { get; private set; }

    /// <summary>The body was refused for its size alone (413).</summary>
    public bool TooLarge { get; private set; }
    public string? Address { get; private set; }
    public int? Weight { get; private set; }
    public string? Pool { get; private set; }
    public List<string> Paths { get; } = [];
    public List<IPNetwork> Clients { get; } = [];

    /// <summary>The fields the body gave, by their canonical names.</summary>
    public HashSet<string> Given { get; } = new(StringComparer.Ordinal);

    public static async Task<BackendRequest> ReadAsync(HttpRequest request, Shape shape)
    {
        var result = new BackendRequest();
        var body = await ReadBodyAsync(request).ConfigureAwait(false);
        if (body is null)
        {
            result.TooLarge = true;
            return result.Fail($"the body is over {MaxBody} bytes");
        }

        if (body.Length == 0)
        {
            return result.Fail($"expected a JSON object with {string.Join(", ", shape.Fields)}");
        }

        if (Utf8Text.InvalidAt(body) is { } at)
        {
            return result.Fail($"the body is not valid UTF-8 (at byte {at})");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException e)
        {
            return result.Fail($"the body is not JSON: {e.Message}");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return result.Fail("the body must be a JSON object");
            }

            foreach (var property in document.RootElement.EnumerateObject())
            {
                var field = shape.Fields.FirstOrDefault(f => f.Equals(property.Name, StringComparison.OrdinalIgnoreCase));
                if (field is null)
                {
                    return result.Fail($"unknown field {property.Name} (fields: {string.Join(", ", shape.Fields)})");
                }

                if (result.Given.Contains(field))
                {
                    return result.Fail($"{field} is given twice");
                }

                if (!result.Read(field, property.Value))
                {
                    return result;
                }

                result.Given.Add(field);
            }
        }

        if (shape.Required.Count == 0 && result.Given.Count == 0)
        {
            return result.Fail($"give at least one of {string.Join(", ", shape.Fields)}");
        }

        foreach (var required in shape.Required)
        {
            var missing = required switch { "address" => result.Address is null, "weight" => result.Weight is null, _ => false };
            if (missing)
            {
                return result.Fail($"{required} is required");
            }
        }

        return result;
    }

    /// <summary>The body, read up to the limit whatever its framing (Content-Length or chunked); null when it is longer.</summary>
    internal static async Task<byte[]?> ReadBodyAsync(HttpRequest request)
    {
        if (request.ContentLength > MaxBody)
        {
            return null;
        }

        var buffer = new byte[MaxBody + 1];
        var length = 0;
        int read;
        while (length < buffer.Length && (read = await request.Body.ReadAsync(buffer.AsMemory(length), request.HttpContext.RequestAborted).ConfigureAwait(false)) > 0)
        {
            length += read;
        }

        return length > MaxBody ? null : buffer[..length];
    }

    private bool Read(string field, JsonElement value)
    {
        switch (field)
        {
            case "address":
                if (value.ValueKind != JsonValueKind.String)
                {
                    return Failed("address: expected a string such as \"http://10.0.0.5:8080\"");
                }

                if (!ValueParsers.BackendAddress(value.GetString()!.Trim(), out var address, out var error))
                {
                    return Failed($"address: {error}");
                }

                Address = address;
                return true;

            case "weight":
                if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var weight) || weight is < 0 or > 1_000_000)
                {
                    return Failed($"weight: {value.GetRawText()} is not a weight (0-1000000)");
                }

                Weight = weight;
                return true;

            case "pool":
                if (value.ValueKind != JsonValueKind.String)
                {
                    return Failed("pool: expected a string");
                }

                Pool = value.GetString()!.Trim();
                return true;

            case "paths":
                return ReadList(field, value, Paths, ValueParsers.PathPrefix);

            default:
                return ReadList(field, value, Clients, ValueParsers.Network);
        }
    }

    private bool ReadList<T>(string field, JsonElement value, List<T> into, ValueParser<T> parse)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            return Failed($"{field}: expected a list of strings");
        }

        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                return Failed($"{field}[{i}]: expected a string");
            }

            if (!parse(item.GetString()!.Trim(), out var parsed, out var error))
            {
                return Failed($"{field}[{i}]: {error}");
            }

            into.Add(parsed);
            i++;
        }

        return true;
    }

    private BackendRequest Fail(string error)
    {
        Error = error;
        return this;
    }

    private bool Failed(string error)
    {
        Error = error;
        return false;
    }

    /// <summary>The fields a body may have, and those it must.</summary>
    public sealed record Shape(IReadOnlyList<string> Fields, IReadOnlyList<string> Required);
}
