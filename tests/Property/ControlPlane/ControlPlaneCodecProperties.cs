using System.Buffers;
using System.Net;
using Balancer.ControlPlane;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Balancer.Tests.Properties.ControlPlane;

public sealed class ControlPlaneCodecProperties
{
    private static readonly Gen<IPNetwork> Networks =
        Gen.OneOf(
            from a in Gen.Choose(0, 255) from b in Gen.Choose(0, 255) from prefix in Gen.Choose(0, 32)
            select new IPNetwork(Mask(new IPAddress([(byte)a, (byte)b, 7, 9]), prefix), prefix),
            from prefix in Gen.Choose(0, 128)
            select new IPNetwork(Mask(IPAddress.Parse("fd12:3456:789a::42"), prefix), prefix));

    private static readonly Gen<string> Paths =
        from segments in Gen.Choose(1, 3)
        from parts in Gen.ListOf(Gen.Elements("api", "v2", "users", "a-b", "x_y", "%C3%A9", "7"), segments)
        select "/" + string.Join('/', parts);

    private static readonly Gen<RegistrationRequest> Requests =
        from action in Gen.Elements(ControlAction.Add, ControlAction.Remove)
        from port in Gen.Choose(1, 65535)
        from pathCount in Gen.Choose(0, 3)
        from paths in Gen.ListOf(Paths, pathCount)
        from clientCount in Gen.Choose(0, 3)
        from clients in Gen.ListOf(Networks, clientCount)
        from weight in Gen.OneOf(Gen.Constant<int?>(null), Gen.Choose(0, 1000).Select(w => (int?)w))
        select new RegistrationRequest(action, port, [.. paths.Distinct()], [.. clients.Distinct()], weight);

    [Property(MaxTest = 500)]
    public Property EncodeThenDecode_GivesBackTheSameRequest() =>
        Prop.ForAll(Requests.ToArbitrary(), request =>
        {
            var buffer = new ReadOnlySequence<byte>(ControlPlaneCodec.EncodeRequest(request));
            return ControlPlaneCodec.TryReadFrame(ref buffer, out var frame, out _) == FrameStatus.Frame
                && buffer.Length == 0
                && ControlPlaneCodec.TryParseRequest(frame, out var decoded, out _)
                && decoded.Action == request.Action
                && decoded.Port == request.Port
                && decoded.Weight == request.Weight
                && decoded.Paths.SequenceEqual(request.Paths)
                && decoded.Clients.SequenceEqual(request.Clients);
        });

    [Property(MaxTest = 2000)]
    public Property AnyBytes_DecodeToFramesOrClearErrors_NeverAnException() =>
        Prop.ForAll(ArbMap.Default.ArbFor<byte[]>(), Arb.From(Gen.Elements(true, false)), (bytes, startWithMagic) =>
        {
            byte[] input = startWithMagic ? [(byte)'L', (byte)'B', .. bytes] : bytes;
            var buffer = new ReadOnlySequence<byte>(input);
            while (true)
            {
                var status = ControlPlaneCodec.TryReadFrame(ref buffer, out var frame, out var framingError);
                if (status == FrameStatus.Incomplete)
                {
                    return true;
                }

                if (status == FrameStatus.FramingError)
                {
                    return !string.IsNullOrEmpty(framingError);
                }

                if (!ControlPlaneCodec.TryParseRequest(frame, out _, out var payloadError) && string.IsNullOrEmpty(payloadError))
                {
                    return false;
                }
            }
        });

    [Property(MaxTest = 300)]
    public Property AnyChunkingOfAValidStream_DecodesToTheSamePackets() =>
        Prop.ForAll(
            Gen.NonEmptyListOf(Requests).ToArbitrary(),
            ArbMap.Default.ArbFor<int[]>(),
            (requests, cuts) =>
            {
                var stream = requests.SelectMany(ControlPlaneCodec.EncodeRequest).ToArray();
                var chunks = Chunk(stream, cuts);

                // Feed the chunks one at a time, as reads from a socket would deliver them.
                var decoded = new List<RegistrationRequest>();
                var pending = Array.Empty<byte>();
                foreach (var chunk in chunks)
                {
                    var buffer = Segments([pending, chunk]);
                    while (ControlPlaneCodec.TryReadFrame(ref buffer, out var frame, out _) == FrameStatus.Frame)
                    {
                        if (!ControlPlaneCodec.TryParseRequest(frame, out var request, out _))
                        {
                            return false;
                        }

                        decoded.Add(request);
                    }

                    pending = buffer.ToArray();
                }

                return pending.Length == 0
                    && decoded.Count == requests.Count
                    && decoded.Zip(requests).All(p => p.First.Port == p.Second.Port && p.First.Action == p.Second.Action && p.First.Paths.SequenceEqual(p.Second.Paths));
            });

    private static List<byte[]> Chunk(byte[] stream, int[] cuts)
    {
        var points = cuts.Select(c => (int)((uint)c % (uint)(stream.Length + 1))).Append(0).Append(stream.Length).Distinct().Order().ToList();
        return [.. points.Zip(points.Skip(1)).Select(p => stream[p.First..p.Second])];
    }

    // A multi-segment sequence, so frames that straddle segments are exercised too.
    private static ReadOnlySequence<byte> Segments(byte[][] parts)
    {
        var nonEmpty = parts.Where(p => p.Length > 0).ToArray();
        if (nonEmpty.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(nonEmpty[0], 0);
        var last = first;
        foreach (var part in nonEmpty.Skip(1))
        {
            last = last.Append(part);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private static IPAddress Mask(IPAddress address, int prefix)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] &= (byte)(0xFF << (8 - Math.Clamp(prefix - (i * 8), 0, 8)));
        }

        return new IPAddress(bytes);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
