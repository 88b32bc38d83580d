#!/usr/bin/env bash
# The response cache and rate limits against a real redis-server, side by side in one run: the backend hit
# directly, the balancer without either feature, with the cache on (every measured request a HIT from Redis),
# with a rate limit kept in-process, and with the same limit shared through Redis (one script call per request).
# The limit is set far above what wrk sends, so what is priced is the check, not refusals. Each target gets a
# warm-up, then a measured wrk run; the table gives requests/s, p50 and p99, each as a ratio to the balancer
# without the features.
#
#   bench/redis.sh                    # defaults: 10s warm-up, 15s measured, 64 connections
#   WARMUP=20 DURATION=30 bench/redis.sh
#
# Needs wrk and redis-server. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
WARMUP=${WARMUP:-10}
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PATH_TESTED=${PATH_TESTED:-/bench?x=1}

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
out=bench/results/redis-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"

publish src/Balancer src/FakeBackends

REDIS=$(free_port); BACKEND=$(free_port)
redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no >"$out/redis.log" 2>&1 & pids+=($!)
# The origin says its answers may be kept for ten minutes (and with the cache off, that changes nothing).
dotnet "$work/FakeBackends/FakeBackends.dll" --port "$BACKEND" --name b1 --behavior 'headers: { Cache-Control: "max-age=600" }' >"$out/backend.log" 2>&1 & pids+=($!)
wait_port "$REDIS"; wait_port "$BACKEND"

targets=("direct $BACKEND")
start_balancer() { # name, extra redis-server keys, extra YAML
  local port admin; port=$(free_port); admin=$(free_port)
  cat >"$work/$1.yaml" <<YAML
BalanceHub: { listen: $port, algorithm: round-robin, redis-server: { port: $REDIS, timeout: 1s$2 } }
admin: { port: $admin }
proxy: { bind: 127.0.0.1 }
backends: [ { address: "http://127.0.0.1:$BACKEND" } ]
$3
YAML
  dotnet "$work/Balancer/Balancer.dll" --config "$work/$1.yaml" --control-port 0 >"$out/$1.log" 2>&1 & pids+=($!)
  wait_port "$port"
  targets+=("$1 $port")
}
start_balancer balancer "" ""
start_balancer cache-hits ", caching: true" ""
start_balancer rate-limit-local "" "rate-limit: { rate: 1000000/s, burst: 1000000 }"
start_balancer rate-limit-redis "" "rate-limit: { rate: 1000000/s, burst: 1000000, shared: true }"

declare -A rps p50 p99
for t in "${targets[@]}"; do
  read -r name port <<<"$t"
  url="http://127.0.0.1:$port$PATH_TESTED"
  echo "== $name: warm-up ${WARMUP}s"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$url" >/dev/null
  echo "== $name: measuring ${DURATION}s"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" | tee "$out/$name.wrk"
  if grep -q "Non-2xx" "$out/$name.wrk"; then echo "warning: $name answered non-2xx responses" >&2; fi
  rps[$name]=$(awk '/^Requests\/sec:/ { print $2 }' "$out/$name.wrk")
  p50[$name]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out/$name.wrk")")
  p99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out/$name.wrk")")
done

curl -s -D - -o /dev/null "http://127.0.0.1:${targets[2]##* }$PATH_TESTED" | grep -qi '^x-cache: HIT' \
  || { echo "the caching balancer did not answer from its cache" >&2; exit 1; }
{
  echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s after ${WARMUP}s warm-up, GET $PATH_TESTED, redis-server $(redis-server --version | awk '{print $3}' | tr -d v=), $(nproc) cores, $(date -u +%Y-%m-%d)"
  echo
  echo "| target | requests/s | p50 ms | p99 ms | req/s vs balancer | p99 vs balancer |"
  echo "|---|---:|---:|---:|---:|---:|"
  for t in "${targets[@]}"; do
    read -r name _ <<<"$t"
    awk -v n="$name" -v r="${rps[$name]}" -v a="${p50[$name]}" -v b="${p99[$name]}" -v br="${rps[balancer]}" -v bb="${p99[balancer]}" \
        'BEGIN { printf "| %s | %.0f | %.2f | %.2f | %.2f | %.2f |\n", n, r, a, b, r/br, b/bb }'
  done
} | tee "$out/table.md"
echo "Results in $out"
