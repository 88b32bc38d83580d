using System.Net;
using Balancer.ControlPlane;
using Balancer.Networking;

namespace Balancer.Tests.Kit;

/// <summary>Control-plane requests, tersely.</summary>
public static class Registrations
{
    public static RegistrationRequest Add(int port, string[]? paths = null, string[]? clients = null, int? weight = null) =>
        new(ControlAction.Add, port, paths ?? [], [.. (clients ?? []).Select(Network)], weight);

    public static RegistrationRequest Remove(int port, string[]? paths = null, string[]? clients = null) =>
        new(ControlAction.Remove, port, paths ?? [], [.. (clients ?? []).Select(Network)], null);

    public static IPNetwork Network(string text) =>
        NetworkList.TryParseNetwork(text, out var network, out var error) ? network : throw new FormatException(error);
}
