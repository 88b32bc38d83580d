using Balancer.Observability;

namespace Balancer.Tests.Unit.Observability;

public sealed class TraceParentTests
{
    [Theory]
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736")]
    [InlineData("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more", "4bf92f3577b34da6a3ce929d0e0e4736")] // a later version may add fields
    public void AValidTraceparent_GivesItsTraceId(string value, string traceId) => Assert.Equal(traceId, TraceParent.TraceIdOf(value));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")] // no flags
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")] // version 00 has exactly four fields
    [InlineData("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")] // version ff is invalid
    [InlineData("00-00000000000000000000000000000000-00f067aa0ba902b7-01")] // all-zero trace id
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")] // all-zero parent id
    [InlineData("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")] // upper case
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01")] // not hex
    [InlineData("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01")]
    [InlineData("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x")] // a longer one continues with a dash
    public void AnythingElse_GivesNone(string? value) => Assert.Null(TraceParent.TraceIdOf(value));
}
