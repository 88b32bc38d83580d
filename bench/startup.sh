#!/usr/bin/env bash
# Start-up (issue 14's target 4: 90% of steady throughput within 5 s of the process starting). Starts a Release build
# of the balancer (shipped defaults, access log on) and of plain YARP, each alone, and from the moment the process is
# started sends wrk load in one-second slices for SECONDS_MEASURED seconds; steady throughput is the mean of the last
# three slices, and the table gives each slice's share of it and when 90% was first reached (from the process start,
# so the time to bind the listeners counts). Loopback only.
#
#   bench/startup.sh
#   SECONDS_MEASURED=20 bench/startup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_MEASURED=${SECONDS_MEASURED:-15}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
source bench/lib.sh

publish src/Balancer src/FakeBackends bench/PlainYarp
BACKEND=$(free_port)
dotnet "$work/FakeBackends/FakeBackends.dll" --port "$BACKEND" --name b1 >"$work/backend.log" 2>&1 & pids+=($!)
wait_port "$BACKEND"

slices() { # name port command...
  local name=$1 port=$2; shift 2
  local started=$(date +%s.%N)
  "$@" >"$work/$name.log" 2>&1 & local pid=$!; pids+=($pid)
  local tries=0
  until (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; do
    tries=$((tries + 1)); [ "$tries" -lt 3000 ] || { echo "$name never listened (see its log)" >&2; cat "$work/$name.log" >&2; exit 1; }
    sleep 0.01
  done
  local listening=$(date +%s.%N)
  local end; end=$(awk -v s="$started" -v n="$SECONDS_MEASURED" 'BEGIN { printf "%.3f", s + n }')
  : >"$work/$name.slices"
  while awk -v e="$end" -v now="$(date +%s.%N)" 'BEGIN { exit !(now < e) }'; do
    local at; at=$(awk -v s="$started" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - s }')
    # Answers that are not 2xx or 3xx (a 503 before the first probe is in, say) do not count as throughput.
    echo "$at $(wrk -t1 -c64 -d1s "http://127.0.0.1:$port/bench?x=1" | awk '/^Non-2xx/ { bad = $NF } /requests in/ { n = $1; s = $4 + 0 } END { printf "%.0f", (n - bad) / s }')" >>"$work/$name.slices"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v n="$name" -v l="$(awk -v s="$started" -v t="$listening" 'BEGIN { printf "%.2f", t - s }')" '
    { at[NR] = $1; r[NR] = $2 }
    END {
      if (NR < 3) { printf "| %s | %s | - | - | fewer than three slices |\n", n, l; exit }
      steady = (r[NR] + r[NR-1] + r[NR-2]) / 3; reached = "-"
      if (steady == 0) { printf "| %s | %s | 0 | - | nothing answered |\n", n, l; exit }
      for (i = 1; i <= NR; i++) if (reached == "-" && r[i] >= 0.9 * steady) reached = at[i]
      line = ""; for (i = 1; i <= NR && i <= 8; i++) line = line sprintf(" %s s: %.0f%% |", at[i], 100 * r[i] / steady)
      printf "| %s | %s | %.0f | %s |%s\n", n, l, steady, reached, line
    }' "$work/$name.slices"
}

{
  echo "wrk -t1 -c64 in one-second slices from the process start, $(nproc) cores, $(date -u +%Y-%m-%d); a slice's time is when it began"
  echo
  echo "| target | listening after, s | steady req/s | 90% of steady from, s | first slices (start time: share of steady) |"
  echo "|---|---:|---:|---:|---|"
  LB=$(free_port)
  default_balancer_yaml "$work/lb.yaml" "$LB" "$BACKEND"
  slices balancer "$LB" dotnet "$work/Balancer/Balancer.dll" --config "$work/lb.yaml" --control-port 0
  YARP=$(free_port)
  slices plain-yarp "$YARP" dotnet "$work/PlainYarp/PlainYarp.dll" "http://127.0.0.1:$BACKEND" "http://127.0.0.1:$YARP"
}
