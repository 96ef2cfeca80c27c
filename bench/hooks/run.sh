#!/usr/bin/env bash
# What the shim's close and syscall hooks cost, and a listener's whole life.
#
#   bench/hooks/run.sh [RUNS] [CALLS]      (defaults: 7 200000)
#
# bench/hooks/calls.c makes CALLS dup+close pairs, CALLS syscall(SYS_getppid)
# calls and CALLS/100 listener lives (socket, bind to 127.0.0.1:0, listen,
# close), and prints nanoseconds per operation. It runs plainly and under
# `agentfs wrap` (the shim active, converting the listeners), interleaved
# run by run; the script prints every run, the median of each figure over
# the runs, and the wrapped/plain ratio. A dup+close and a syscall that are
# not about a listener cost the hooks one atomic load and one compare.
#
# Needs cargo and cc. Everything lives in a temp dir.
set -euo pipefail

RUNS=${1:-7}
CALLS=${2:-200000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
bench_workdir afh-bench

echo "building agentfs (release) and the C program..." >&2
(cd "$ROOT" && cargo build -q --release --bin agentfs)
AGENTFS=${CARGO_TARGET_DIR:-$ROOT/target}/release/agentfs
cc -O2 -Wall -o "$WORK/calls" "$ROOT/bench/hooks/calls.c"
export AGENTFS_HOME=$WORK/home
mkdir -p "$AGENTFS_HOME" && chmod 700 "$AGENTFS_HOME"
unset AGENTFS_APP AGENTFS_INSTANCE AGENTFS_RUN_DIR AGENTFS_LOG LD_PRELOAD

for run in $(seq 1 "$RUNS"); do
  "$WORK/calls" "$CALLS" | sed "s/^/plain $run /" >>"$WORK/results"
  "$AGENTFS" wrap --no-router --name hooks --instance b -- "$WORK/calls" "$CALLS" 2>/dev/null \
    | sed "s/^/wrapped $run /" >>"$WORK/results"
done
cat "$WORK/results"
echo
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-14s %12s %12s %8s\n' figure plain_ns wrapped_ns ratio
for figure in dup_close syscall listener_life; do
  plain=$(awk -v f="$figure" '$1 == "plain" && $3 == f { print $4 }' "$WORK/results" | median)
  wrapped=$(awk -v f="$figure" '$1 == "wrapped" && $3 == f { print $4 }' "$WORK/results" | median)
  printf '%-14s %12s %12s %8.2f\n' "$figure" "$plain" "$wrapped" "$(awk -v a="$wrapped" -v b="$plain" 'BEGIN { print a / b }')"
done
