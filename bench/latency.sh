#!/usr/bin/env bash
# Latency added by each proxy at a fixed request rate (issue 14's target 3: p99 over the backend hit directly at most
# 1 ms, at half of nginx's saturation rate). Open model: the testbed's load generator sends each request when it is due
# and times it from then, so a stall shows as latency, not as fewer requests (no coordinated omission). Side by side in
# one run: the backend directly, plain YARP, the balancer (shipped defaults, access log on), nginx as a proxy.
#
#   bench/latency.sh                 # the rate: half of what wrk gets through nginx as a proxy, measured first
#   RATE=5000 DURATION=30 bench/latency.sh
#
# Needs wrk and nginx (the backend and the nginx proxy). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx)" >&2; exit 1; }
out=bench/results/latency-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
source bench/lib.sh

publish src/Balancer src/Testbed bench/PlainYarp
BACKEND=$(free_port); NGINX=$(free_port); LB=$(free_port); YARP=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 128; }
  server { listen 127.0.0.1:$BACKEND; location / { default_type application/json; return 200 '{"server":"b1","ok":true}'; } }
  server {
    listen 127.0.0.1:$NGINX;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header X-Forwarded-For \$remote_addr; }
  }
}
NGINX
nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$out/nginx.log" 2>&1 & pids+=($!)
default_balancer_yaml "$work/lb.yaml" "$LB" "$BACKEND"
dotnet "$work/Balancer/Balancer.dll" --config "$work/lb.yaml" --control-port 0 >"$out/balancer.log" 2>&1 & pids+=($!)
dotnet "$work/PlainYarp/PlainYarp.dll" "http://127.0.0.1:$BACKEND" "http://127.0.0.1:$YARP" >"$out/plainyarp.log" 2>&1 & pids+=($!)
wait_port "$BACKEND"; wait_port "$NGINX"; wait_port "$LB"; wait_port "$YARP"

if [ -z "${RATE:-}" ]; then
  wrk -t1 -c64 -d5s "http://127.0.0.1:$NGINX/" >/dev/null
  saturation=$(wrk -t1 -c64 -d10s "http://127.0.0.1:$NGINX/" | awk '/^Requests\/sec:/ { printf "%d", $2 }')
  RATE=$((saturation / 2))
  echo "nginx as a proxy saturates at $saturation requests/s: measuring at $RATE/s"
fi

declare -A p50 p99 rps failed
for t in "direct $BACKEND" "plain-yarp $YARP" "balancer $LB" "nginx $NGINX"; do
  read -r name port <<<"$t"
  echo "== $name: ${WARMUP}s warm-up, ${DURATION}s at $RATE requests/s"
  # Eight client addresses: an open model holds a connection per request in flight, and one address runs out of ports.
  dotnet "$work/Testbed/Testbed.dll" load "http://127.0.0.1:$port/" --path /bench --rate "$RATE" --duration "${DURATION}s" --warmup "${WARMUP}s" \
    --client 127.0.0.2 --client 127.0.0.3 --client 127.0.0.4 --client 127.0.0.5 --client 127.0.0.6 --client 127.0.0.7 --client 127.0.0.8 --client 127.0.0.9 \
    --out "$work/$name" >"$out/$name.txt" 2>&1 || true
  json="$work/$name/load.json"
  [ -f "$json" ] || { echo "no result for $name (see $out/$name.txt)" >&2; exit 1; }
  p50[$name]=$(grep -o '"p50": [0-9.]*' "$json" | head -1 | awk '{ printf "%.2f", $2 }')
  p99[$name]=$(grep -o '"p99": [0-9.]*' "$json" | head -1 | awk '{ printf "%.2f", $2 }')
  rps[$name]=$(grep -o '"throughput": [0-9.]*' "$json" | head -1 | awk '{ printf "%.0f", $2 }')
  failed[$name]=$(grep -o '"failed": [0-9]*' "$json" | head -1 | awk '{ print $2 }')
done

{
  echo "Open model at $RATE requests/s for ${DURATION}s after ${WARMUP}s of warm-up (testbed load), GET /bench, backend: nginx, $(nproc) cores, $(date -u +%Y-%m-%d)"
  echo
  echo "| target | answered/s | failed | p50 ms | p99 ms | p99 over direct, ms |"
  echo "|---|---:|---:|---:|---:|---:|"
  for name in direct plain-yarp balancer nginx; do
    echo "| $name | ${rps[$name]} | ${failed[$name]} | ${p50[$name]} | ${p99[$name]} | $(awk -v a="${p99[$name]}" -v b="${p99[direct]}" 'BEGIN { printf "%.2f", a - b }') |"
  done
} | tee "$out/table.md"
echo "Results in $out"
