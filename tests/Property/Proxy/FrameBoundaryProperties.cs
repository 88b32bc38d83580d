using Balancer.Proxy.WebSockets;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Balancer.Tests.Properties.Proxy;

public sealed class FrameBoundaryProperties
{
    // Payload sizes on both sides of the 7-bit, 16-bit and 64-bit length encodings; masked (client) or not (server).
    private static readonly Gen<(int Length, bool Masked)> Frames =
        from length in Gen.OneOf(Gen.Choose(0, 130), Gen.Choose(65_530, 65_540), Gen.Elements(125, 126, 127, 65_535, 65_536))
        from masked in Gen.Elements(true, false)
        select (length, masked);

    [Property(MaxTest = 300)]
    public Property AtBoundary_ExactlyWhereAFrameEnds_HoweverTheStreamIsCutIntoWrites() =>
        Prop.ForAll(Gen.NonEmptyListOf(Frames).ToArbitrary(), ArbMap.Default.ArbFor<int[]>(), (frames, cuts) =>
        {
            var stream = new List<byte>();
            var ends = new HashSet<int> { 0 };
            foreach (var (length, masked) in frames)
            {
                stream.AddRange(Header(length, masked));
                stream.AddRange(new byte[length]);
                ends.Add(stream.Count);
            }

            var bytes = stream.ToArray();
            var points = cuts.Select(c => (int)((uint)c % (uint)(bytes.Length + 1))).Append(bytes.Length).Distinct().Order().ToList();
            var boundary = new FrameBoundary();
            var at = 0;
            foreach (var point in points)
            {
                boundary.Advance(bytes.AsSpan(at, point - at));
                at = point;
                if (boundary.AtBoundary != ends.Contains(at))
                {
                    return false;
                }
            }

            return boundary.AtBoundary;
        });

    private static byte[] Header(int length, bool masked)
    {
        var mask = masked ? 0x80 : 0;
        byte[] header = length switch
        {
            < 126 => [0x82, (byte)(mask | length)],
            <= ushort.MaxValue => [0x82, (byte)(mask | 126), (byte)(length >> 8), (byte)length],
            _ => [0x82, (byte)(mask | 127), 0, 0, 0, 0, (byte)(length >> 24), (byte)(length >> 16), (byte)(length >> 8), (byte)length],
        };
        return masked ? [.. header, 1, 2, 3, 4] : header;
    }
}
