using System.Net;
using System.Net.Http.Headers;
using Balancer.Tests.Kit;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Proxy;

/// <summary>HTTP/2 without TLS (h2c, prior knowledge) on the h2c proxy listener, and gRPC's framing passing through to an h2c backend.</summary>
public sealed class Http2Tests(ITestOutputHelper output)
{
    /// <summary>A gRPC-shaped echo: application/grpc in and out, the status in trailers; it says which protocol it was spoken to in.</summary>
    private static Task<ScriptedBackend> GrpcBackendAsync() => ScriptedBackend.StartAsync(async (context, _) =>
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["X-Protocol"] = context.Request.Protocol;
        await context.Response.Body.WriteAsync(body.ToArray());
        context.Response.AppendTrailer("grpc-status", "0");
        context.Response.AppendTrailer("grpc-message", "echoed");
    }, http2Only: true);

    private static HttpClient H2cClient(int port) => new(new SocketsHttpHandler(), disposeHandler: true) { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };

    private static HttpRequestMessage GrpcCall()
    {
        // One length-prefixed message: no compression, 5 bytes of payload.
        var request = new HttpRequestMessage(HttpMethod.Post, "/echo.Echo/Say")
        {
            Content = new ByteArrayContent([0, 0, 0, 0, 5, .. "hello"u8]),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact, // http:// and 2.0 exactly: prior knowledge
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        return request;
    }

    [Fact]
    public async Task GrpcOverH2c_PassesThrough_WithItsTrailers()
    {
        await using var backend = await GrpcBackendAsync();
        await using var lb = await TestBalancer.StartAsync($$"""
            proxy: { h2c-port: 0 }
            pools:
              - name: grpc
                paths: [/echo.Echo]
                backend-protocol: http2
                backends: [ { address: "{{backend.Address}}" } ]
            """, output);
        using var client = H2cClient(lb.Running.H2cEndpoint!.Port);

        using var response = await client.SendAsync(GrpcCall(), HttpCompletionOption.ResponseContentRead);
        Assert.Equal((HttpStatusCode.OK, HttpVersion.Version20), (response.StatusCode, response.Version));
        Assert.Equal("HTTP/2", response.Headers.GetValues("X-Protocol").Single()); // the backend was spoken to in HTTP/2 too
        Assert.Equal("application/grpc", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal([0, 0, 0, 0, 5, .. "hello"u8], await response.Content.ReadAsByteArrayAsync());
        Assert.Equal("0", response.TrailingHeaders.GetValues("grpc-status").Single());
        Assert.Equal("echoed", response.TrailingHeaders.GetValues("grpc-message").Single());

        // HTTP/1.1 goes on to the main listener; the h2c one speaks HTTP/2 only.
        using var plain = new HttpClient { BaseAddress = lb.Running.ProxyUri };
        using var one = await plain.GetAsync("/nothing-here");
        Assert.Equal(HttpVersion.Version11, one.Version);
        using var wrong = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{lb.Running.H2cEndpoint.Port}") };
        using var refused = await wrong.GetAsync("/echo.Echo/Say");
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode); // Kestrel's answer to HTTP/1.1 on an HTTP/2-only endpoint
        Assert.Equal(1, backend.Seen("/echo.Echo/Say"));
    }

    [Fact]
    public async Task WithoutH2cPort_ThereIsNoH2cListener_AndTheProxyListenerRefusesPriorKnowledge()
    {
        await using var backend = await GrpcBackendAsync();
        await using var lb = await TestBalancer.StartAsync($$"""
            backends: [ { address: "{{backend.Address}}" } ]
            """, output);
        Assert.Null(lb.Running.H2cEndpoint);
        using var client = H2cClient(lb.Running.ProxyEndpoint.Port);

        await Assert.ThrowsAsync<HttpRequestException>(() => client.SendAsync(GrpcCall()));
    }
}
