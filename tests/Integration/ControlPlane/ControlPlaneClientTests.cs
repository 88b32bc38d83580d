using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Balancer.ControlPlane;

namespace Balancer.Tests.Integration.ControlPlane;

public sealed class ControlPlaneClientTests
{
    [Fact]
    public async Task ReadResponseAsync_SeveralAnswersArrivingTogether_ReturnsEachWithoutWaitingForMoreBytes()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        await using var client = await ControlPlaneClient.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        using var server = await listener.AcceptTcpClientAsync();
        var answers = new ArrayBufferWriter<byte>();
        ControlPlaneCodec.WriteResponse(answers, true, "first");
        ControlPlaneCodec.WriteResponse(answers, false, "second");

        await server.GetStream().WriteAsync(answers.WrittenMemory); // one write; the server then stays silent
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        Assert.Equal(new ControlResponse(true, "first"), await client.ReadResponseAsync(bound.Token));
        Assert.Equal(new ControlResponse(false, "second"), await client.ReadResponseAsync(bound.Token));
    }
}
