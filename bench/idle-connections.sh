#!/usr/bin/env bash
# Memory with many idle keep-alive client connections (issue 14's target 5: at most 100 MB RSS with 10,000).
# Starts one backend and a Release build of the balancer (the shipped defaults, access log on), reads its RSS idle,
# after a warm-up of traffic, then opens CONNECTIONS keep-alive connections from 127.0.0.2, 127.0.0.3, ... (a few
# thousand per source address), sends one request on each and leaves them open, and reads the RSS again; plain YARP
# gets the same, side by side. Loopback only; the connections close when the script ends.
#
#   bench/idle-connections.sh            # 10,000 connections
#   CONNECTIONS=20000 bench/idle-connections.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-10000}
command -v python3 >/dev/null || { echo "python3 is needed (the client that holds the connections)" >&2; exit 1; }
# Each side (the balancer, the client) holds one descriptor per connection.
ulimit -n "$(ulimit -Hn)"; [ "$(ulimit -n)" -ge $((CONNECTIONS + 1024)) ] 2>/dev/null || { echo "cannot raise the open-files limit to $((CONNECTIONS + 1024)) (ulimit -n; the hard limit is $(ulimit -Hn))" >&2; exit 1; }
source bench/lib.sh

publish src/Balancer src/FakeBackends bench/PlainYarp
BACKEND=$(free_port); LB=$(free_port); YARP=$(free_port)
dotnet "$work/FakeBackends/FakeBackends.dll" --port "$BACKEND" --name b1 >"$work/backend.log" 2>&1 & pids+=($!)
wait_port "$BACKEND"
default_balancer_yaml "$work/lb.yaml" "$LB" "$BACKEND"
dotnet "$work/Balancer/Balancer.dll" --config "$work/lb.yaml" --control-port 0 >"$work/lb.log" 2>&1 & lb_pid=$!; pids+=($lb_pid)
dotnet "$work/PlainYarp/PlainYarp.dll" "http://127.0.0.1:$BACKEND" "http://127.0.0.1:$YARP" >"$work/yarp.log" 2>&1 & yarp_pid=$!; pids+=($yarp_pid)
wait_port "$LB"; wait_port "$YARP"

rss_mb() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# Opens the connections, one request each, and holds them until told to stop (a line on stdin).
cat >"$work/hold.py" <<'PY'
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
held, per_source = [], 5000
for i in range(count):
    s = socket.socket()
    s.bind(("127.0.%d.%d" % (i // per_source // 250, 2 + (i // per_source) % 250), 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /idle HTTP/1.1\r\nHost: bench\r\n\r\n")
    held.append(s)
answered = 0
for s in held:
    s.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    answered += data.startswith(b"HTTP/1.1 200")
print("held %d connections, %d answered 200" % (len(held), answered), flush=True)
sys.stdin.readline()
PY

measure() { # name port pid
  local idle warm held
  idle=$(rss_mb "$3")
  for _ in $(seq 1 2000); do curl -s -o /dev/null "http://127.0.0.1:$2/warm"; done
  warm=$(rss_mb "$3")
  mkfifo "$work/$1.in"
  python3 "$work/hold.py" "$2" "$CONNECTIONS" <"$work/$1.in" >"$work/$1.out" & local holder=$!; pids+=($holder)
  exec 9>"$work/$1.in"
  for _ in $(seq 1 600); do grep -q "held" "$work/$1.out" 2>/dev/null && break; kill -0 "$holder" 2>/dev/null || break; sleep 0.5; done
  sleep 2
  held=$(rss_mb "$3")
  echo "| $1 | $idle | $warm | $held | $(cat "$work/$1.out") |"
  exec 9>&-
  wait "$holder" || true
}

{
  echo "$CONNECTIONS idle keep-alive connections, one request each, $(nproc) cores, $(date -u +%Y-%m-%d)"
  echo
  echo "| target | RSS at start, MB | after 2000 requests | with $CONNECTIONS connections open | client |"
  echo "|---|---:|---:|---:|---|"
  measure balancer "$LB" "$lb_pid"
  measure plain-yarp "$YARP" "$yarp_pid"
}
