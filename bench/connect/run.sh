#!/usr/bin/env bash
# The cost and gain of connect wiring, in one session on one machine.
#
#   bench/connect/run.sh [RUNS] [CALLS] [OTHERS]      (defaults: 7 2000 20)
#
# Three ways of making the same small HTTP call (connect, request, answer to
# EOF, close) with bench/connect/client.c against fixtures/c/server.c,
# interleaved run by run:
#   wired        a wrapped client to a wrapped server of the same instance
#                (the connect to 127.0.0.1:P is wired to the server's socket)
#   tcp          the same client to the same server, both without agentfs,
#                over TCP loopback
#   passthrough  the wrapped client to the plain TCP server: its connect
#                looks up the instance's listeners, finds none on that port,
#                and goes to the kernel
# Each run makes CALLS calls (after 200 not counted) and reports the median
# and p99 of the whole call and of connect() alone; the script prints every
# run and the median of each figure over the runs, the wired/tcp ratio and
# the pass-through connect's added cost (passthrough - tcp, in µs).
# OTHERS wrapped servers of other instances make the run directory look
# used (the lookup is by instance and port, so they are never chosen).
#
# Needs cargo and cc. Everything lives in a temp dir; nothing is left running.
set -euo pipefail

RUNS=${1:-7}
CALLS=${2:-2000}
OTHERS=${3:-20}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
bench_workdir afc-bench

echo "building agentfs (release) and the C programs..." >&2
(cd "$ROOT" && cargo build -q --release --bin agentfs)
AGENTFS=${CARGO_TARGET_DIR:-$ROOT/target}/release/agentfs
cc -O2 -Wall -o "$WORK/server" "$ROOT/fixtures/c/server.c"
cc -O2 -Wall -o "$WORK/client" "$ROOT/bench/connect/client.c"

export AGENTFS_HOME=$WORK/home
mkdir -p "$AGENTFS_HOME" && chmod 700 "$AGENTFS_HOME"
unset AGENTFS_APP AGENTFS_INSTANCE AGENTFS_RUN_DIR AGENTFS_LOG LD_PRELOAD

wait_for() { # wait_for DESCRIPTION COMMAND...: up to 20 s
  local what=$1; shift
  for _ in $(seq 1 400); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "timed out waiting for $what" >&2
  exit 1
}
listening() { grep -q '"listening": *true' "$AGENTFS_HOME/run/$1.json"; }

WIRED_PORT=$(free_port)
TCP_PORT=$(free_port)
wrap() { "$AGENTFS" wrap --no-router "$@"; }

wrap --name srv --instance bench -- "$WORK/server" "$WIRED_PORT" >"$WORK/srv.out" 2>&1 & PIDS+=($!)
"$WORK/server" "$TCP_PORT" >"$WORK/tcp.out" 2>&1 & PIDS+=($!)
for i in $(seq 1 "$OTHERS"); do
  wrap --name "other$i" --instance "o$i" -- "$WORK/server" "$WIRED_PORT" >/dev/null 2>&1 & PIDS+=($!)
done
wait_for "the wrapped server" listening srv_bench
wait_for "the plain server" grep -q listening "$WORK/tcp.out"
for i in $(seq 1 "$OTHERS"); do wait_for "other server $i" listening "other${i}_o$i"; done
# Let the run directory settle: a lookup trusts a directory unchanged for 100 ms.
sleep 0.5

declare -A FIGURES
run() { # run NAME COMMAND...: one run, its figures appended per name
  local name=$1 line; shift
  line=$("$@" 2>/dev/null | grep '^calls ')
  printf '%-12s %s\n' "$name" "$line"
  FIGURES[$name]+="$line"$'\n'
}

for r in $(seq 1 "$RUNS"); do
  echo "run $r/$RUNS"
  run wired wrap --name cli --instance bench -- "$WORK/client" 127.0.0.1 "$WIRED_PORT" "$CALLS"
  run tcp "$WORK/client" 127.0.0.1 "$TCP_PORT" "$CALLS"
  run passthrough wrap --name cli --instance bench -- "$WORK/client" 127.0.0.1 "$TCP_PORT" "$CALLS"
done

median() { # median FIELD NAME: the median over the runs of one figure
  awk -v field="$1" '{ for (i = 1; i < NF; i++) if ($i == field) print $(i + 1) }' <<<"${FIGURES[$2]}" |
    sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "medians over $RUNS runs of $CALLS calls ($OTHERS other instances listening):"
printf '%-12s %12s %12s %14s %14s\n' "" "call p50 µs" "call p99 µs" "connect p50 µs" "connect p99 µs"
for name in wired tcp passthrough; do
  printf '%-12s %12s %12s %14s %14s\n' "$name" "$(median call_p50_us "$name")" "$(median call_p99_us "$name")" \
    "$(median connect_p50_us "$name")" "$(median connect_p99_us "$name")"
done
awk -v w="$(median call_p50_us wired)" -v t="$(median call_p50_us tcp)" \
  'BEGIN { printf "wired / tcp, call p50: %.2fx\n", w / t }'
awk -v p="$(median connect_p50_us passthrough)" -v t="$(median connect_p50_us tcp)" \
  'BEGIN { printf "pass-through connect, added cost: %.2f µs (p50 %.2f vs %.2f)\n", p - t, p, t }'
