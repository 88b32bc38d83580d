#!/usr/bin/env bash
# Proxy throughput and CPU per request, side by side in one run: the backend hit directly (the limit), plain YARP (the
# same YARP version and runtime settings as the balancer), this balancer with every default feature on (active health
# checks, outlier detection, retries, the access log, metrics), the same with checks, outlier detection and retries off,
# with metrics off, with the decision trace enabled (once not asked for, once asked for on every request), the balancer
# and plain YARP with inline socket completions and the balancer with workstation GC (the runtime settings that are
# candidates), and nginx and HAProxy as reverse proxies when installed. Then the bytes allocated per request by each
# feature on the request path against the configuration without it (bench/Allocations).
#
# Each target gets a warm-up (long enough for .NET's tiered JIT) and then a measured wrk run, in rounds (every other
# round in reverse order; each target keeps its best). CPU per request is the user + system time of the proxy's own
# processes over the measured run (/proc/PID/stat), divided by the requests wrk completed, the lowest of the rounds (on a
# shared machine it moves too, if less than requests/s). The table is printed, and written as table.md, results.json and
# chart.html under bench/results/.
#
#   bench/run.sh                      # defaults: 20s warm-up, 20s measured, 64 connections, 1 wrk thread, best of 2 rounds
#   WARMUP=10 DURATION=10 ROUNDS=3 bench/run.sh
#
# The backend is nginx serving a small JSON body when nginx is installed (it leaves the most CPU to the proxies), else
# the fake backend. Needs wrk (apt-get install wrk); nginx and haproxy are optional. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
WARMUP=${WARMUP:-20}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-2}
PATH_TESTED=${PATH_TESTED:-/bench?x=1}

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is not installed (apt-get install curl)" >&2; exit 1; }
out=bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"

source bench/lib.sh

publish src/Balancer src/FakeBackends bench/PlainYarp bench/Allocations

BACKEND=$(free_port); FAKE=$(free_port)
# The fake backend always runs: bench/Allocations measures against it.
dotnet "$work/FakeBackends/FakeBackends.dll" --port "$FAKE" --name b1 >"$out/fake-backend.log" 2>&1 & pids+=($!)
wait_port "$FAKE"
if command -v nginx >/dev/null; then
  mkdir -p "$work/nginx-backend"
  cat >"$work/nginx-backend/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx-backend/nginx.pid;
error_log $work/nginx-backend/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx-backend; proxy_temp_path $work/nginx-backend; fastcgi_temp_path $work/nginx-backend; uwsgi_temp_path $work/nginx-backend; scgi_temp_path $work/nginx-backend;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$BACKEND;
    location / { default_type application/json; return 200 '{"server":"b1","path":"/bench","query":"?x=1","ok":true}'; }
  }
}
NGINX
  nginx -c "$work/nginx-backend/nginx.conf" -g 'daemon off;' >"$out/nginx-backend.log" 2>&1 & pids+=($!)
  wait_port "$BACKEND"
  backend_name="nginx serving a 57-byte JSON body"
else
  BACKEND=$FAKE
  backend_name="the fake backend (FakeBackends)"
fi

# name port pid [a header wrk sends on every request]
targets=("direct $BACKEND ${pids[-1]}")

start_dotnet() { # name port env... -- dll args...
  local name=$1 port=$2; shift 2
  local env=()
  while [ "$1" != "--" ]; do env+=("$1"); shift; done
  shift
  env "${env[@]}" dotnet "$@" >"$out/$name.log" 2>&1 & pids+=($!)
  wait_port "$port"
  targets+=("$name $port ${pids[-1]}")
}

balancer_yaml() { # file port admin-port extra-yaml...
  local file=$1 port=$2 admin=$3; shift 3
  cat >"$file" <<YAML
BalanceHub: { listen: $port, algorithm: round-robin, access-logs-path: $work/logs-$port }
admin: { port: $admin }
proxy: { bind: 127.0.0.1 }
health-checks: { enabled: true, path: /health, interval: 1s }
retries: { attempts: 3 }
outlier-detection: { enabled: true }
backends: [ { address: "http://127.0.0.1:$BACKEND" } ]
YAML
  for line in "$@"; do echo "$line" >>"$file"; done
}

YARP=$(free_port); start_dotnet plain-yarp "$YARP" -- "$work/PlainYarp/PlainYarp.dll" "http://127.0.0.1:$BACKEND" "http://127.0.0.1:$YARP"
YARP_INLINE=$(free_port); start_dotnet plain-yarp-inline-completions "$YARP_INLINE" DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 -- \
  "$work/PlainYarp/PlainYarp.dll" "http://127.0.0.1:$BACKEND" "http://127.0.0.1:$YARP_INLINE"

# The balancer as shipped: active checks (every second here), outlier detection, retries, the access log, metrics.
P=$(free_port); balancer_yaml "$work/lb.yaml" "$P" "$(free_port)"
start_dotnet balancer "$P" -- "$work/Balancer/Balancer.dll" --config "$work/lb.yaml" --control-port 0
P=$(free_port); balancer_yaml "$work/lb-inline.yaml" "$P" "$(free_port)"
start_dotnet balancer-inline-completions "$P" DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 -- "$work/Balancer/Balancer.dll" --config "$work/lb-inline.yaml" --control-port 0
P=$(free_port); balancer_yaml "$work/lb-workstation.yaml" "$P" "$(free_port)"
start_dotnet balancer-workstation-gc "$P" DOTNET_gcServer=0 -- "$work/Balancer/Balancer.dll" --config "$work/lb-workstation.yaml" --control-port 0
# Checks, outlier detection and retries off, to price them; metrics off, to price recording them (nobody scrapes here).
P=$(free_port); balancer_yaml "$work/lb-off.yaml" "$P" "$(free_port)"
sed -i -e 's/enabled: true, path: \/health, interval: 1s/enabled: false/' -e 's/attempts: 3/attempts: 1/' -e 's/outlier-detection: { enabled: true }/outlier-detection: { enabled: false }/' "$work/lb-off.yaml"
start_dotnet balancer-resilience-off "$P" -- "$work/Balancer/Balancer.dll" --config "$work/lb-off.yaml" --control-port 0
P=$(free_port); balancer_yaml "$work/lb-nometrics.yaml" "$P" "$(free_port)" "observability: { metrics: false }"
start_dotnet balancer-metrics-off "$P" -- "$work/Balancer/Balancer.dll" --config "$work/lb-nometrics.yaml" --control-port 0
# The decision trace enabled; wrk is a trusted proxy here, so that the asked-for run gets its trace.
LB_EXPLAIN=$(free_port); balancer_yaml "$work/lb-explain.yaml" "$LB_EXPLAIN" "$(free_port)" "observability: { explain: { enabled: true } }"
sed -i 's|proxy: { bind: 127.0.0.1 }|proxy: { bind: 127.0.0.1, trusted-proxies: [127.0.0.1] }|' "$work/lb-explain.yaml"
start_dotnet balancer-explain-enabled "$LB_EXPLAIN" -- "$work/Balancer/Balancer.dll" --config "$work/lb-explain.yaml" --control-port 0
targets+=("balancer-explain-asked $LB_EXPLAIN ${pids[-1]} X-Balancer-Explain: 1")

curl -s -o /dev/null -D "$work/explain.headers" -H "X-Balancer-Explain: 1" "http://127.0.0.1:$LB_EXPLAIN$PATH_TESTED"
grep -qi '^x-balancer-explain: id=' "$work/explain.headers" \
  || { echo "the explain-enabled balancer answered without a trace" >&2; exit 1; }

if command -v nginx >/dev/null; then
  NGINX=$(free_port); mkdir -p "$work/nginx"
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
  wait_port "$NGINX" && targets+=("nginx $NGINX ${pids[-1]}")
fi
if command -v haproxy >/dev/null; then
  HAPROXY=$(free_port)
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
  wait_port "$HAPROXY" && targets+=("haproxy $HAPROXY ${pids[-1]}")
fi

TICK=$(getconf CLK_TCK)
# CPU ticks (user + system) of a process and its children (nginx's workers): fields 14 and 15 of /proc/PID/stat,
# counted after the command name, which may hold spaces.
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$total"
}

# Targets are measured in ROUNDS rounds, every other one in reverse order, and each keeps its best round: the
# machine's drift over a run (other work, heat) then favours no target by its place in the list.
declare -A rps p50 p99 cpu
order=("${targets[@]}")
for round in $(seq 1 "$ROUNDS"); do
  warmup=$WARMUP; [ "$round" -gt 1 ] && warmup=5 # the JIT is warm by now
  for t in "${order[@]}"; do
    read -r name port pid header <<<"$t"
    url="http://127.0.0.1:$port$PATH_TESTED"
    extra=(); [ -n "$header" ] && extra=(-H "$header")
    echo "== round $round, $name: warm-up ${warmup}s"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${warmup}s" "${extra[@]}" "$url" >/dev/null
    echo "== round $round, $name: measuring ${DURATION}s"
    before=$(cpu_ticks "$pid")
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "${extra[@]}" "$url" | tee "$out/$name.$round.wrk"
    after=$(cpu_ticks "$pid")
    if grep -q "Non-2xx" "$out/$name.$round.wrk"; then echo "warning: $name answered non-2xx responses" >&2; fi
    r=$(awk '/^Requests\/sec:/ { print $2 }' "$out/$name.$round.wrk")
    n=$(awk '/requests in/ { print $1 }' "$out/$name.$round.wrk")
    [ -n "$n" ] && [ "$n" -gt 0 ] || { echo "wrk completed no request against $name" >&2; exit 1; }
    c=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$n" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
    echo "   CPU: $c µs per request ($((after - before)) ticks of 1/$TICK s over $n requests)"
    if [ -z "${rps[$name]:-}" ] || awk -v a="$r" -v b="${rps[$name]}" 'BEGIN { exit !(a > b) }'; then
      rps[$name]=$r
      p50[$name]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out/$name.$round.wrk")")
      p99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out/$name.$round.wrk")")
    fi
    # CPU per request: the lowest of the rounds (the one least disturbed by the rest of the machine).
    if [ -z "${cpu[$name]:-}" ] || awk -v a="$c" -v b="${cpu[$name]}" 'BEGIN { exit !(a < b) }'; then cpu[$name]=$c; fi
  done
  reversed=(); for ((i=${#order[@]}-1; i>=0; i--)); do reversed+=("${order[i]}"); done; order=("${reversed[@]}")
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
{
  echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s after ${WARMUP}s warm-up, best of $ROUNDS rounds, GET $PATH_TESTED, backend: $backend_name, $(nproc) cores, $(date -u +%Y-%m-%d)"
  echo
  echo "| target | requests/s | p50 ms | p99 ms | CPU µs per request | req/s vs direct | req/s vs plain YARP | CPU vs plain YARP |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for t in "${targets[@]}"; do
    read -r name _ <<<"$t"
    echo "| $name | ${rps[$name]%.*} | ${p50[$name]} | ${p99[$name]} | ${cpu[$name]} | $(ratio "${rps[$name]}" "${rps[direct]}") | $(ratio "${rps[$name]}" "${rps[plain-yarp]}") | $(ratio "${cpu[$name]}" "${cpu[plain-yarp]}") |"
  done
  echo
  echo "balancer / plain YARP: throughput $(ratio "${rps[balancer]}" "${rps[plain-yarp]}"), CPU per request $(ratio "${cpu[balancer]}" "${cpu[plain-yarp]}")"
  [ -n "${rps[nginx]:-}" ] && echo "balancer / nginx: throughput $(ratio "${rps[balancer]}" "${rps[nginx]}"), CPU per request $(ratio "${cpu[balancer]}" "${cpu[nginx]}")"
  echo "inline socket completions on / off: balancer throughput $(ratio "${rps[balancer-inline-completions]}" "${rps[balancer]}"), CPU $(ratio "${cpu[balancer-inline-completions]}" "${cpu[balancer]}"); plain YARP throughput $(ratio "${rps[plain-yarp-inline-completions]}" "${rps[plain-yarp]}"), CPU $(ratio "${cpu[plain-yarp-inline-completions]}" "${cpu[plain-yarp]}")"
  echo "workstation / server GC: balancer throughput $(ratio "${rps[balancer-workstation-gc]}" "${rps[balancer]}"), CPU $(ratio "${cpu[balancer-workstation-gc]}" "${cpu[balancer]}")"
  echo "health checks, outlier detection and retries on / off: throughput $(ratio "${rps[balancer]}" "${rps[balancer-resilience-off]}"), CPU $(ratio "${cpu[balancer]}" "${cpu[balancer-resilience-off]}")"
  echo "metrics on / off: throughput $(ratio "${rps[balancer]}" "${rps[balancer-metrics-off]}"), CPU $(ratio "${cpu[balancer]}" "${cpu[balancer-metrics-off]}")"
  echo "explain enabled but not asked / off: throughput $(ratio "${rps[balancer-explain-enabled]}" "${rps[balancer]}"), CPU $(ratio "${cpu[balancer-explain-enabled]}" "${cpu[balancer]}")"
  echo "explain asked on every request / off: throughput $(ratio "${rps[balancer-explain-asked]}" "${rps[balancer]}"), CPU $(ratio "${cpu[balancer-explain-asked]}" "${cpu[balancer]}")"
} | tee "$out/table.md"

# The same figures as JSON, and as a chart (one bar per target: requests/s, and CPU per request).
{
  echo "{ \"command\": \"wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s\", \"warmup_s\": $WARMUP, \"rounds\": $ROUNDS, \"backend\": \"$backend_name\", \"cores\": $(nproc), \"date\": \"$(date -u +%Y-%m-%d)\", \"targets\": ["
  sep=""
  for t in "${targets[@]}"; do
    read -r name _ <<<"$t"
    printf '%s  { "name": "%s", "requests_per_s": %s, "p50_ms": %s, "p99_ms": %s, "cpu_us_per_request": %s }' "$sep" "$name" "${rps[$name]}" "${p50[$name]}" "${p99[$name]}" "${cpu[$name]}"
    sep=$',\n'
  done
  echo; echo "] }"
} >"$out/results.json"
{
  max_rps=0; max_cpu=0
  for t in "${targets[@]}"; do read -r name _ <<<"$t"
    max_rps=$(awk -v a="${rps[$name]}" -v b="$max_rps" 'BEGIN { print (a > b ? a : b) }')
    max_cpu=$(awk -v a="${cpu[$name]}" -v b="$max_cpu" 'BEGIN { print (a > b ? a : b) }'); done
  rows=${#targets[@]}; height=$((rows * 22 + 30))
  echo "<!doctype html><meta charset=utf-8><title>bench/run.sh $(date -u +%Y-%m-%d)</title><style>body{font:14px system-ui,sans-serif;margin:2em}text{font-size:12px}</style>"
  echo "<h1>Proxy throughput and CPU per request</h1><p>wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s after ${WARMUP}s warm-up, best of $ROUNDS rounds; backend: $backend_name; $(nproc) cores; $(date -u +%Y-%m-%d)</p>"
  for metric in rps cpu; do
    [ $metric = rps ] && { title="requests/s (higher is better)"; max=$max_rps; } || { title="CPU µs per request (lower is better)"; max=$max_cpu; }
    echo "<h2>$title</h2><svg width=760 height=$height>"
    i=0
    for t in "${targets[@]}"; do read -r name _ <<<"$t"
      [ $metric = rps ] && v=${rps[$name]} || v=${cpu[$name]}
      awk -v i=$i -v n="$name" -v v="$v" -v m="$max" 'BEGIN { y = 10 + i * 22; w = 500 * v / m;
        c = (n ~ /^balancer/) ? "#2563eb" : (n == "plain-yarp" || n ~ /^plain-yarp/) ? "#7c3aed" : "#6b7280";
        printf "<text x=0 y=%d>%s</text><rect x=230 y=%d width=%.1f height=16 fill=\"%s\"/><text x=%.1f y=%d>%s</text>\n", y + 12, n, y, w, c, 236 + w, y + 12, v }'
      i=$((i + 1))
    done
    echo "</svg>"
  done
} >"$out/chart.html"
# Last, as it takes a while: the bytes each feature allocates per request (appended to table.md).
{
  echo
  echo "Allocation per request (bench/Allocations, in-process, 20000 sequential requests after 20000 of warm-up):"
  echo
  dotnet "$work/Allocations/Allocations.dll" "http://127.0.0.1:$FAKE" 20000 | sed -n '/^|/p'
} | tee -a "$out/table.md"
echo "Results in $out (table.md, results.json, chart.html)"
