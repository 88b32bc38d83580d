# Helpers the bench scripts share (sourced, not run). Sourcing it also makes the run's scratch directory ($work) and
# stops, at exit, every process whose pid was added to $pids.
# A free loopback port, never one handed out before in this run (the kernel may offer a just-released one again). The
# ports given are kept in a file: free_port runs in a subshell, $(free_port), where a variable would not outlive it.
given_ports=${TMPDIR:-/tmp}/bench-ports.$$
free_port() {
  local port
  while :; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
      || echo $((20000 + RANDOM % 20000)))
    grep -qx "$port" "$given_ports" 2>/dev/null && continue
    echo "$port" >>"$given_ports"
    echo "$port"
    return
  done
}
wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
to_ms() { # wrk prints 812.00us, 1.23ms, 2.01s
  awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }

work=$(mktemp -d)
pids=()
cleanup() {
  exec 9>&- 2>/dev/null || true # a fifo some scripts hold open for a child: closed, so that child can end
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work" "$given_ports"
}
trap cleanup EXIT

# Release builds of the projects given, each in $work/<its folder's name>.
publish() {
  echo "Building Release..."
  local p
  for p in "$@"; do
    dotnet publish "$p" -c Release -o "$work/$(basename "$p")" --nologo -v quiet >/dev/null
  done
}

# A balancer's config.yaml with the shipped defaults in front of one backend: FILE PORT BACKEND_PORT (access log in $work).
default_balancer_yaml() {
  cat >"$1" <<YAML
BalanceHub: { listen: $2, algorithm: round-robin, access-logs-path: $work/logs-$2 }
admin: { port: $(free_port) }
proxy: { bind: 127.0.0.1 }
backends: [ { address: "http://127.0.0.1:$3" } ]
YAML
}
