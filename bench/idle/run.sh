#!/usr/bin/env bash
# Idle cost: with N wrapped instances and their router running and no
# traffic, how much CPU does each agentfs process use, and how much memory?
# A watcher that reacts to its own reads spins here at ~100% of a core.
#
#   bench/idle/run.sh [INSTANCES] [SECONDS] [WARMUP]      (defaults: 5 10 0)
#
# WARMUP seconds pass before measuring: wrap looks at its app every second
# for the first 10 s (listeners appear as an app starts), then every 30 s.
#
# Needs cargo and python3. Everything lives in a temp dir; nothing is left running.
set -euo pipefail

N=${1:-5}
SECS=${2:-10}
WARMUP=${3:-0}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
bench_workdir afi-bench
bench_at_exit() { AGENTFS_HOME="$WORK/home" "$AGENTFS" router stop >/dev/null 2>&1 || true; }

(cd "$ROOT" && cargo build -q --release)
AGENTFS=${CARGO_TARGET_DIR:-$ROOT/target}/release/agentfs
export AGENTFS_HOME="$WORK/home"
export AGENTFS_ROUTER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

for i in $(seq "$N"); do
  "$AGENTFS" wrap --name idle --instance "i$i" -- python3 -m http.server 8000 >/dev/null 2>&1 &
  PIDS+=($!)
done
for _ in $(seq 300); do
  [ "$(ls "$AGENTFS_HOME"/run/*.json 2>/dev/null | wc -l)" -ge "$N" ] && break
  sleep 0.1
done
ROUTER=$(pgrep -f "^$AGENTFS router --foreground" | head -1)
sleep "$WARMUP"

hz=$(getconf CLK_TCK)
declare -A before
for pid in "$ROUTER" "${PIDS[@]}"; do before[$pid]=$(ticks "$pid"); done
sleep "$SECS"
printf '%-8s %8s %10s %8s\n' process pid "cpu %" "rss MB"
for pid in "$ROUTER" "${PIDS[@]}"; do
  used=$(( $(ticks "$pid") - ${before[$pid]} ))
  name=wrap; [ "$pid" = "$ROUTER" ] && name=router
  awk -v u="$used" -v hz="$hz" -v s="$SECS" -v n="$name" -v p="$pid" -v r="$(rss_kb "$pid")" \
    'BEGIN { printf "%-8s %8d %10.2f %8.1f\n", n, p, 100 * u / hz / s, r / 1024 }'
done
