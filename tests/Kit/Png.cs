using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Balancer.Tests.Kit;

/// <summary>Just enough PNG decoding to look at a browser's screenshot: 8-bit RGB or RGBA, not interlaced.</summary>
public sealed class Png
{
    private readonly byte[] _rgba;

    private Png(int width, int height, byte[] rgba)
    {
        Width = width;
        Height = height;
        _rgba = rgba;
    }

    public int Width { get; }

    public int Height { get; }

    /// <summary>The pixel at (x, y) as 0xRRGGBB.</summary>
    public int Rgb(int x, int y)
    {
        var i = ((y * Width) + x) * 4;
        return (_rgba[i] << 16) | (_rgba[i + 1] << 8) | _rgba[i + 2];
    }

    public IEnumerable<int> Pixels()
    {
        for (var y = 0; y < Height; y++)
        {
            for (var x = 0; x < Width; x++)
            {
                yield return Rgb(x, y);
            }
        }
    }

    public static Png Read(byte[] file)
    {
        if (!file.AsSpan(0, 8).SequenceEqual(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }))
        {
            throw new InvalidDataException("not a PNG file");
        }

        int width = 0, height = 0, channels = 0;
        using var data = new MemoryStream();
        for (var at = 8; at < file.Length;)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at));
            var type = Encoding.ASCII.GetString(file, at + 4, 4);
            var body = file.AsSpan(at + 8, length);
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(body);
                height = BinaryPrimitives.ReadInt32BigEndian(body[4..]);
                var (depth, color, interlace) = (body[8], body[9], body[12]);
                channels = color switch { 2 => 3, 6 => 4, _ => 0 };
                if (depth != 8 || channels == 0 || interlace != 0)
                {
                    throw new InvalidDataException($"only 8-bit, non-interlaced RGB(A) PNGs are read here (depth {depth}, color type {color}, interlace {interlace})");
                }
            }
            else if (type == "IDAT")
            {
                data.Write(body);
            }

            at += 12 + length;
        }

        data.Position = 0;
        using var inflate = new ZLibStream(data, CompressionMode.Decompress);
        using var raw = new MemoryStream();
        inflate.CopyTo(raw);
        var bytes = raw.ToArray();
        var stride = width * channels;
        var previous = new byte[stride];
        var rgba = new byte[width * height * 4];
        for (var y = 0; y < height; y++)
        {
            var filter = bytes[y * (stride + 1)];
            var line = bytes.AsSpan((y * (stride + 1)) + 1, stride).ToArray();
            for (var i = 0; i < stride; i++)
            {
                int left = i >= channels ? line[i - channels] : 0, up = previous[i], upLeft = i >= channels ? previous[i - channels] : 0;
                line[i] = (byte)(line[i] + filter switch
                {
                    0 => 0,
                    1 => left,
                    2 => up,
                    3 => (left + up) / 2,
                    4 => Paeth(left, up, upLeft),
                    _ => throw new InvalidDataException($"unknown filter {filter}"),
                });
            }

            for (var x = 0; x < width; x++)
            {
                var o = ((y * width) + x) * 4;
                rgba[o] = line[x * channels];
                rgba[o + 1] = line[(x * channels) + 1];
                rgba[o + 2] = line[(x * channels) + 2];
                rgba[o + 3] = channels == 4 ? line[(x * channels) + 3] : (byte)255;
            }

            previous = line;
        }

        return new Png(width, height, rgba);
    }

    private static int Paeth(int a, int b, int c)
    {
        var p = a + b - c;
        var (pa, pb, pc) = (Math.Abs(p - a), Math.Abs(p - b), Math.Abs(p - c));
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
