#!/usr/bin/env bash
# Proxy throughput, side by side in one run: the backend hit directly (the limit), plain YARP,
# this balancer (health checks, outlier detection, retries and metrics on), the same balancer with the
# first three off, the same with metrics off, the same with the decision trace enabled (once not asked for, once
# asked for on every request), and nginx and HAProxy as reverse proxies when installed. Then the bytes allocated
# per request by each feature on the request path against the configuration without it (bench/Allocations). Each target gets a warm-up
# (long enough for .NET's tiered JIT) and then a measured wrk run, in rounds; the table gives requests/s,
# p50 and p99 of each target's best round, and each as a ratio to the backend hit directly.
#
#   bench/run.sh                      # defaults: 20s warm-up, 20s measured, 64 connections, best of 2 rounds
#   WARMUP=30 DURATION=30 CONNECTIONS=128 ROUNDS=3 bench/run.sh
#
# Needs wrk (apt-get install wrk); nginx and haproxy are optional. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
WARMUP=${WARMUP:-20}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
PATH_TESTED=${PATH_TESTED:-/bench?x=1}

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
out=bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

source bench/lib.sh

echo "Building Release..."
for p in src/Balancer src/FakeBackends bench/PlainYarp bench/Allocations; do
  dotnet publish "$p" -c Release -o "$work/$(basename "$p")" --nologo -v quiet >/dev/null
done

BACKEND=$(free_port); LB=$(free_port); ADMIN=$(free_port); LB_OFF=$(free_port); ADMIN_OFF=$(free_port)
LB_NOMETRICS=$(free_port); ADMIN_NOMETRICS=$(free_port); LB_EXPLAIN=$(free_port); ADMIN_EXPLAIN=$(free_port)
YARP=$(free_port); NGINX=$(free_port); HAPROXY=$(free_port)

dotnet "$work/FakeBackends/FakeBackends.dll" --port "$BACKEND" --name b1 >"$out/backend.log" 2>&1 & pids+=($!)
wait_port "$BACKEND"

# The balancer as shipped for production use: active checks every second, outlier detection and retries
# (the last two are on by default). And the same with all three off, to price them.
cat >"$work/lb.yaml" <<YAML
BalanceHub: { listen: $LB, algorithm: round-robin, access-logs-path: $work/logs }
admin: { port: $ADMIN }
proxy: { bind: 127.0.0.1 }
health-checks: { enabled: true, path: /health, interval: 1s }
retries: { attempts: 3 }
outlier-detection: { enabled: true }
backends: [ { address: "http://127.0.0.1:$BACKEND" } ]
YAML
cat >"$work/lb-off.yaml" <<YAML
BalanceHub: { listen: $LB_OFF, algorithm: round-robin, access-logs-path: $work/logs-off }
admin: { port: $ADMIN_OFF }
proxy: { bind: 127.0.0.1 }
health-checks: { enabled: false }
retries: { attempts: 1 }
outlier-detection: { enabled: false }
backends: [ { address: "http://127.0.0.1:$BACKEND" } ]
YAML
# Metrics are on by default (and scraped by nobody here: what is priced is recording them).
sed -e "s/listen: $LB,/listen: $LB_NOMETRICS,/" -e "s/port: $ADMIN }/port: $ADMIN_NOMETRICS }/" -e "s|logs }|logs-nometrics }|" "$work/lb.yaml" >"$work/lb-nometrics.yaml"
echo "observability: { metrics: false }" >>"$work/lb-nometrics.yaml"
# The decision trace enabled; wrk is a trusted proxy here, so that the asked-for run gets its trace.
sed -e "s/listen: $LB,/listen: $LB_EXPLAIN,/" -e "s/port: $ADMIN }/port: $ADMIN_EXPLAIN }/" -e "s|logs }|logs-explain }|" \
    -e "s|proxy: { bind: 127.0.0.1 }|proxy: { bind: 127.0.0.1, trusted-proxies: [127.0.0.1] }|" "$work/lb.yaml" >"$work/lb-explain.yaml"
echo "observability: { explain: { enabled: true } }" >>"$work/lb-explain.yaml"
dotnet "$work/Balancer/Balancer.dll" --config "$work/lb.yaml" --control-port 0 >"$out/balancer.log" 2>&1 & pids+=($!)
dotnet "$work/Balancer/Balancer.dll" --config "$work/lb-nometrics.yaml" --control-port 0 >"$out/balancer-nometrics.log" 2>&1 & pids+=($!)
dotnet "$work/Balancer/Balancer.dll" --config "$work/lb-explain.yaml" --control-port 0 >"$out/balancer-explain.log" 2>&1 & pids+=($!)
dotnet "$work/Balancer/Balancer.dll" --config "$work/lb-off.yaml" --control-port 0 >"$out/balancer-off.log" 2>&1 & pids+=($!)
dotnet "$work/PlainYarp/PlainYarp.dll" "http://127.0.0.1:$BACKEND" "http://127.0.0.1:$YARP" >"$out/plainyarp.log" 2>&1 & pids+=($!)
wait_port "$LB"; wait_port "$LB_OFF"; wait_port "$LB_NOMETRICS"; wait_port "$LB_EXPLAIN"; wait_port "$YARP"

curl -s -o /dev/null -D "$work/explain.headers" -H "X-Balancer-Explain: 1" "http://127.0.0.1:$LB_EXPLAIN$PATH_TESTED"
grep -qi '^x-balancer-explain: id=' "$work/explain.headers" \
  || { echo "the explain-enabled balancer answered without a trace" >&2; exit 1; }

# name port [a header wrk sends on every request]
targets=("direct $BACKEND" "plain-yarp $YARP" "balancer $LB" "balancer-resilience-off $LB_OFF" "balancer-metrics-off $LB_NOMETRICS"
  "balancer-explain-enabled $LB_EXPLAIN" "balancer-explain-asked $LB_EXPLAIN X-Balancer-Explain: 1")
if command -v nginx >/dev/null; then
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header X-Forwarded-For \$remote_addr; }
  }
}
NGINX
  nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$out/nginx.log" 2>&1 & pids+=($!)
  wait_port "$NGINX" && targets+=("nginx $NGINX")
fi
if command -v haproxy >/dev/null; then
  cat >"$work/haproxy.cfg" <<HAPROXY
global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  option forwardfor
frontend f
  bind 127.0.0.1:$HAPROXY
  default_backend b
backend b
  server b1 127.0.0.1:$BACKEND
HAPROXY
  haproxy -f "$work/haproxy.cfg" >"$out/haproxy.log" 2>&1 & pids+=($!)
  wait_port "$HAPROXY" && targets+=("haproxy $HAPROXY")
fi


# Targets are measured in ROUNDS rounds, every other one in reverse order, and each keeps its best round: the
# machine's drift over a run (other work, heat) then favours no target by its place in the list.
declare -A rps p50 p99
order=("${targets[@]}")
for round in $(seq 1 "$ROUNDS"); do
  warmup=$WARMUP; [ "$round" -gt 1 ] && warmup=5 # the JIT is warm by now
  for t in "${order[@]}"; do
    read -r name port header <<<"$t"
    url="http://127.0.0.1:$port$PATH_TESTED"
    extra=(); [ -n "$header" ] && extra=(-H "$header")
    echo "== round $round, $name: warm-up ${warmup}s"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${warmup}s" "${extra[@]}" "$url" >/dev/null
    echo "== round $round, $name: measuring ${DURATION}s"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "${extra[@]}" "$url" | tee "$out/$name.$round.wrk"
    if grep -q "Non-2xx" "$out/$name.$round.wrk"; then echo "warning: $name answered non-2xx responses" >&2; fi
    r=$(awk '/^Requests\/sec:/ { print $2 }' "$out/$name.$round.wrk")
    if [ -z "${rps[$name]:-}" ] || awk -v a="$r" -v b="${rps[$name]}" 'BEGIN { exit !(a > b) }'; then
      rps[$name]=$r
      p50[$name]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out/$name.$round.wrk")")
      p99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out/$name.$round.wrk")")
    fi
  done
  reversed=(); for ((i=${#order[@]}-1; i>=0; i--)); do reversed+=("${order[i]}"); done; order=("${reversed[@]}")
done

{
  echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s after ${WARMUP}s warm-up, best of $ROUNDS rounds, GET $PATH_TESTED, $(nproc) cores, $(date -u +%Y-%m-%d)"
  echo
  echo "| target | requests/s | p50 ms | p99 ms | req/s vs direct | p50 vs direct | p99 vs direct |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for t in "${targets[@]}"; do
    read -r name _ <<<"$t"
    awk -v n="$name" -v r="${rps[$name]}" -v a="${p50[$name]}" -v b="${p99[$name]}" \
        -v dr="${rps[direct]}" -v da="${p50[direct]}" -v db="${p99[direct]}" \
        'BEGIN { printf "| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", n, r, a, b, r/dr, a/da, b/db }'
  done
  echo
  awk -v l="${rps[balancer]}" -v y="${rps[plain-yarp]}" 'BEGIN { printf "balancer / plain YARP throughput: %.2f\n", l/y }'
  awk -v l="${rps[balancer]}" -v o="${rps[balancer-resilience-off]}" \
    'BEGIN { printf "health checks, outlier detection and retries on / off throughput: %.2f\n", l/o }'
  awk -v l="${rps[balancer]}" -v o="${rps[balancer-metrics-off]}" 'BEGIN { printf "metrics on / off throughput: %.2f\n", l/o }'
  awk -v e="${rps[balancer-explain-enabled]}" -v o="${rps[balancer]}" 'BEGIN { printf "explain enabled but not asked / off throughput: %.2f\n", e/o }'
  awk -v a="${rps[balancer-explain-asked]}" -v o="${rps[balancer]}" 'BEGIN { printf "explain asked on every request / off throughput: %.2f\n", a/o }'
  echo
  echo "Allocation per request (bench/Allocations, in-process, 20000 sequential requests after 20000 of warm-up):"
  echo
  dotnet "$work/Allocations/Allocations.dll" "http://127.0.0.1:$BACKEND" 20000 | sed -n '/^|/p'
} | tee "$out/table.md"
echo "Results in $out"
