#!/usr/bin/env bash
# Discovery at scale: a run directory with N live instances (held by
# holder.py: lock, listening socket, sidecar each), and a router started on
# it. Measures, per N:
#   - until routable: router start until /health counts all N routes
#     (it answers nothing before its first full read);
#   - idle CPU (% of one core) and RSS of the router over the next SECONDS,
#     with nothing changing (the 5 s safety-net read still runs);
#   - the size of the 404 page for an unknown name (it lists live apps).
#
#   bench/scale/run.sh [SECONDS] [N...]        (defaults: 10 1000 10000)
#
# BEFORE_AGENTFS=path/to/an/older/agentfs is measured the same way right
# after each run of this one, for a before/after on the same machine.
# Needs cargo, python3, curl. Runs in a temp dir; nothing is left running.
set -euo pipefail

SECS=${1:-10}
shift || true
if [ $# -gt 0 ]; then COUNTS=("$@"); else COUNTS=(1000 10000); fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
bench_workdir afs-scale
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

(cd "$ROOT" && cargo build -q --release)
AFTER=${CARGO_TARGET_DIR:-$ROOT/target}/release/agentfs
now_ms() { date +%s%3N; }
HZ=$(getconf CLK_TCK)

# Instances per holder process: each holds two descriptors per instance,
# and the descriptor limit may not be raised past 20,000 here.
PER_HOLDER=5000

# measure LABEL AGENTFS N
measure() {
  local label=$1 agentfs=$2 n=$3
  local home="$WORK/$label-$n" port
  mkdir -p "$home/run" && chmod 700 "$home" "$home/run"
  local holders=() pipes=() first
  for (( first = 0; first < n; first += PER_HOLDER )); do
    local count=$(( n - first < PER_HOLDER ? n - first : PER_HOLDER ))
    exec {hold}> >(python3 "$ROOT/bench/scale/holder.py" "$home/run" "$first" "$count" > "$home/holder-$first.out")
    holders+=($!)
    pipes+=("$hold")
    PIDS+=($!)
  done
  for (( first = 0; first < n; first += PER_HOLDER )); do
    until grep -q ready "$home/holder-$first.out" 2>/dev/null; do sleep 0.05; done
  done
  port=$(free_port)
  local start
  start=$(now_ms)
  AGENTFS_HOME="$home" "$agentfs" router --foreground --port "$port" 2>"$home/router.log" &
  local router=$!
  PIDS+=("$router")
  local routes=0
  until [ "$routes" -ge "$n" ]; do
    routes=$(curl -s -H 'Host: agentfs.localhost' "http://127.0.0.1:$port/health" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["routes"])' 2>/dev/null || echo 0)
    [ "$routes" -ge "$n" ] || sleep 0.02
  done
  local routable=$(( $(now_ms) - start ))
  local before
  before=$(ticks "$router")
  sleep "$SECS"
  local used=$(( $(ticks "$router") - before ))
  local page
  page=$(curl -s -o /dev/null -w '%{size_download}' -H 'Host: nope.localhost' "http://127.0.0.1:$port/")
  awk -v l="$label" -v n="$n" -v r="$routable" -v u="$used" -v hz="$HZ" -v s="$SECS" \
      -v m="$(rss_kb "$router")" -v p="$page" \
    'BEGIN { printf "%-8s %7d %12d %10.2f %8.1f %10d\n", l, n, r, 100 * u / hz / s, m / 1024, p }'
  kill "$router"; wait "$router" 2>/dev/null || true
  for hold in "${pipes[@]}"; do exec {hold}>&-; done
  for holder in "${holders[@]}"; do wait "$holder" 2>/dev/null || true; done
  rm -rf "$home"
}

printf '%-8s %7s %12s %10s %8s %10s\n' build N "routable ms" "idle cpu%" "rss MB" "404 bytes"
for n in "${COUNTS[@]}"; do
  measure after "$AFTER" "$n"
  [ -n "${BEFORE_AGENTFS:-}" ] && measure before "$BEFORE_AGENTFS" "$n"
done
