#!/usr/bin/env bash
# CPU per request of two router builds, the steadier measure on a shared
# machine: each bench_router in front of the same Unix-socket nginx
# backend, driven in turn by wrk; the router's utime+stime (/proc/PID/stat)
# over each run divided by its requests.
#
#   bench/router/cpu.sh AFTER_BENCH_ROUTER BEFORE_BENCH_ROUTER [ROUNDS] [SECONDS]
set -euo pipefail
# shellcheck source=../lib.sh
source "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"
AFTER=$1; BEFORE=$2; ROUNDS=${3:-5}; SECS=${4:-5}
WORK=$(mktemp -d /tmp/afr-cpu.XXXXXX); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
for h in after before; do mkdir -p "$WORK/$h/run" && chmod 700 "$WORK/$h" "$WORK/$h/run"; done
cat >"$WORK/backend.conf" <<CONF
worker_processes 1; pid $WORK/backend.pid; error_log $WORK/backend.err;
events { worker_connections 4096; }
http { access_log off; server {
  listen unix:$WORK/after/run/bench_a1.sock; listen unix:$WORK/before/run/bench_a1.sock;
  location / { return 200 "hello from the backend\n"; } } }
CONF
PATH="$PATH:/usr/sbin" nginx -c "$WORK/backend.conf" -g 'daemon off;' & PIDS+=($!)
for _ in $(seq 200); do [ -S "$WORK/before/run/bench_a1.sock" ] && break; sleep 0.05; done
declare -A PID PORT
for name in after before; do
  bin=$AFTER; [ "$name" = before ] && bin=$BEFORE
  PORT[$name]=$(free_port)
  "$bin" "$WORK/$name" "${PORT[$name]}" >"$WORK/$name.out" & PID[$name]=$!; PIDS+=(${PID[$name]})
  for _ in $(seq 200); do grep -q ready "$WORK/$name.out" && break; sleep 0.05; done
done
for round in $(seq "$ROUNDS"); do
  for name in after before; do
    c0=$(ticks "${PID[$name]}")
    out=$(wrk -t1 -c50 -d"${SECS}s" -H 'Host: bench.localhost' "http://127.0.0.1:${PORT[$name]}/")
    c1=$(ticks "${PID[$name]}")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    python3 -c "import sys; t=(float(sys.argv[2])-float(sys.argv[1]))/float(sys.argv[3]); print(f'round {sys.argv[5]} {sys.argv[6]}: {t/int(sys.argv[4])*1e6:.2f} us CPU per request, {sys.argv[4]} requests')" \
      "$c0" "$c1" "$(getconf CLK_TCK)" "$requests" "$round" "$name"
  done
done
