#!/usr/bin/env bash
# Runs every test project and ends with one line: "N passed, N failed".
# Installs what the tests need (redis-server; prometheus, which scrapes the balancer; chromium, to check that reports
# and the dashboard render) when missing.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} (needed by the tests)..."
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "Need root or sudo to apt-get install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# Release: the tests run the code as it ships (the allocation tests compare it with plain YARP, a Release build).
dotnet build Balancer.sln -c Release --nologo -v quiet

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
passed=0; failed=0; skipped=0; status=0
for project in tests/Unit tests/Property tests/Integration tests/Load; do
  name=$(basename "$project")
  echo "== $name"
  if ! dotnet test "$project" -c Release --no-build --nologo --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=normal" \
       --results-directory "$results" -- RunConfiguration.TreatNoTestsAsError=false; then
    status=1
  fi
  trx="$results/$name.trx"
  if [ -f "$trx" ]; then
    counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
    count() { echo "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
    p=$(count passed); f=$(( $(count failed) + $(count error) + $(count timeout) + $(count aborted) )); s=$(count notExecuted)
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  else
    echo "$name produced no results (the test host crashed?): counted as one failure" >&2
    failed=$((failed + 1)); status=1
  fi
done

if [ "$skipped" -gt 0 ]; then
  echo "$skipped test(s) were skipped; a skipped test counts as failed"
  failed=$((failed + skipped)); status=1
fi
[ "$failed" -gt 0 ] && status=1
echo "$passed passed, $failed failed"
exit $status
