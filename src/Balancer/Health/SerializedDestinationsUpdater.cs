using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Rebuilds a cluster's destination lists (all, and available) in place of YARP's updater, which every caller goes
/// through: YARP applying a new config, active health, outlier detection. YARP's own reads the list of all destinations
/// before it takes its lock when only health changed, so a health change that began before a registration was applied
/// could write the old list back after it, and a backend answered as registered vanished until the next change.
/// Here every rebuild reads the destinations as they are, one rebuild at a time per cluster, and requests coalesce:
/// while one runs, the requests made meanwhile are covered by the next one, however many there are (a storm of health
/// changes costs a rebuild per round, not per change). A caller that finds a rebuild running does not wait for it,
/// except <see cref="UpdateAllDestinations"/> (YARP applying a config must see its destinations in place); whoever
/// starts a rebuild runs the rounds asked for meanwhile.
/// </summary>
internal sealed class SerializedDestinationsUpdater(IEnumerable<IAvailableDestinationsPolicy> policies) : IClusterDestinationsUpdater, IDestinationsRefresh
{
    private readonly Dictionary<string, IAvailableDestinationsPolicy> _policies = policies.ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
    private readonly ConditionalWeakTable<ClusterState, Gate> _gates = [];

    /// <summary>A health change: rebuilt by this thread if no rebuild is running, else by the one that is, next.</summary>
    public void UpdateAvailableDestinations(ClusterState cluster)
    {
        var gate = GateOf(cluster);
        Interlocked.Increment(ref gate.Requested);
        Run(cluster, gate);
    }

    /// <summary>The destination set changed (YARP applied a config): returns once the lists show it.</summary>
    public void UpdateAllDestinations(ClusterState cluster)
    {
        var gate = GateOf(cluster);
        var mine = Interlocked.Increment(ref gate.Requested);
        lock (gate.Lock)
        {
            if (gate.Done < mine)
            {
                Rebuild(cluster, gate);
            }
        }
    }

    /// <summary>Completes once a rebuild that began after this call has finished: what the caller changed is in it.</summary>
    public Task RefreshAsync(ClusterState cluster)
    {
        var gate = GateOf(cluster);
        var mine = Interlocked.Increment(ref gate.Requested);
        TaskCompletionSource covered;
        lock (gate.WaitersLock)
        {
            if (gate.Done >= mine)
            {
                return Task.CompletedTask;
            }

            covered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            gate.Waiters.Add((mine, covered));
        }

        Run(cluster, gate);
        return covered.Task;
    }

    private Gate GateOf(ClusterState cluster) => _gates.GetValue(cluster, static _ => new Gate());

    private void Run(ClusterState cluster, Gate gate)
    {
        // One runner at a time; a request made while it runs is picked up by its next round, or by a new runner if it
        // had just stopped: the check after stopping closes that gap (the exchange is a full fence, so that check cannot
        // be read before the runner is seen to have stopped).
        Exception? failure = null;
        while (Volatile.Read(ref gate.Requested) > Volatile.Read(ref gate.Done) && Interlocked.CompareExchange(ref gate.Running, 1, 0) == 0)
        {
            try
            {
                lock (gate.Lock)
                {
                    if (gate.Requested > gate.Done)
                    {
                        Rebuild(cluster, gate);
                    }
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failure ??= e; // the requests made meanwhile still get their round
            }
            finally
            {
                Interlocked.Exchange(ref gate.Running, 0);
            }
        }

        if (failure is not null)
        {
            ExceptionDispatchInfo.Throw(failure);
        }
    }

    /// <summary>Under the gate's lock.</summary>
    private void Rebuild(ClusterState cluster, Gate gate)
    {
        var covers = Volatile.Read(ref gate.Requested);
        Exception? failure = null;
        try
        {
            var config = cluster.Model.Config;
            var name = config.HealthCheck?.AvailableDestinationsPolicy ?? HealthCheckConstants.AvailableDestinations.HealthyOrPanic;
            if (!_policies.TryGetValue(name, out var policy))
            {
                throw new InvalidOperationException($"No available-destinations policy named {name} (policies: {string.Join(", ", _policies.Keys)})");
            }

            // Values is a copy, taken now: whatever changed before this point is in it.
            var all = (IReadOnlyList<DestinationState>)cluster.Destinations.Values;
            cluster.DestinationsState = new ClusterDestinationsState(all, policy.GetAvailalableDestinations(config, all));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            failure = e;
            throw;
        }
        finally
        {
            // Also when the rebuild threw: the waiters it covered learn that it failed rather than wait forever.
            Volatile.Write(ref gate.Done, covers);
            lock (gate.WaitersLock)
            {
                gate.Waiters.RemoveAll(w =>
                {
                    if (w.Target > covers)
                    {
                        return false;
                    }

                    if (failure is null)
                    {
                        w.Covered.TrySetResult();
                    }
                    else
                    {
                        w.Covered.TrySetException(failure);
                    }

                    return true;
                });
            }
        }
    }

    private sealed class Gate
    {
        public readonly Lock Lock = new();
        public readonly Lock WaitersLock = new();
        public readonly List<(long Target, TaskCompletionSource Covered)> Waiters = [];
        public long Requested;
        public long Done;
        public int Running;
    }
}
