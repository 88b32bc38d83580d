using FakeBackends.Behaviors;

namespace Balancer.Tests.Unit.FakeBackends.Behaviors;

public sealed class OnPathTests
{
    [Theory]
    [InlineData("/api", true)]
    [InlineData("/api/users", true)]
    [InlineData("/API/users", true)]
    [InlineData("/apix", false)]
    [InlineData("/", false)]
    public async Task AppliesUnderItsPrefixOnly(string path, bool applies)
    {
        var request = new Harness(path);

        await request.RunAsync(new OnPath("/api", new Fail(500, 1.0, new Random(1))));

        Assert.True(request.Proceeded);
        Assert.Equal(applies ? 500 : 200, request.Http.Response.StatusCode);
    }
}
