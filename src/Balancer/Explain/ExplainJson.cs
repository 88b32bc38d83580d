using System.Text.Json;
using System.Text.Json.Serialization;

namespace Balancer.Explain;

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(ExplainView))]
[JsonSerializable(typeof(List<ExplainSummary>))]
internal sealed partial class ExplainJson : JsonSerializerContext;
