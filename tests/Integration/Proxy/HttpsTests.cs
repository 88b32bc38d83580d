using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Balancer.Tests.Kit;
using FakeBackends;
using Xunit.Abstractions;

namespace Balancer.Tests.Integration.Proxy;

public sealed class HttpsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Https_ServesTlsWithTheConfiguredPemCertificate_OverHttp2AndHttp11()
    {
        await using var backends = await Backends.StartAsync(1);
        using var certificate = SelfSigned();
        var directory = Directory.CreateTempSubdirectory("lb-tls-").FullName;
        await File.WriteAllTextAsync(Path.Combine(directory, "lb.crt"), certificate.ExportCertificatePem());
        using (var key = certificate.GetRSAPrivateKey()!)
        {
            await File.WriteAllTextAsync(Path.Combine(directory, "lb.key"), key.ExportPkcs8PrivateKeyPem());
        }

        await using var lb = await TestBalancer.StartAsync($"""
            BalanceHub:
              protocol: HTTPS
              ssl_certificate: {Path.Combine(directory, "lb.crt")}
              ssl_certificate_key: {Path.Combine(directory, "lb.key")}
            """ + "\n" + TestBalancer.BackendsYaml(backends.All), output);
        X509Certificate2? seen = null;
        using var handler = new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, cert, _, _) =>
            {
                seen = cert is null ? null : new X509Certificate2(cert);
                return seen?.Thumbprint == certificate.Thumbprint;
            } },
        };
        using var client = new HttpClient(handler) { BaseAddress = lb.Running.ProxyUri };
        Assert.Equal("https", lb.Running.ProxyUri.Scheme);

        using var h2 = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/secure") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact });
        using var h1 = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/secure") { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact });

        Assert.Equal(HttpVersion.Version20, h2.Version);
        Assert.Equal(HttpVersion.Version11, h1.Version);
        Assert.Equal("b1", (await h2.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Server);
        Assert.Equal("https", (await h1.Content.ReadFromJsonAsync(FakeBackendJson.Default.EchoBody))!.Headers["X-Forwarded-Proto"]);
        Assert.Equal(certificate.Thumbprint, seen?.Thumbprint);
        seen?.Dispose();
        Directory.Delete(directory, recursive: true);
    }

    private static X509Certificate2 SelfSigned()
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }
}
