#!/usr/bin/env bash
# The cost of the first request to a new name over TLS: the router mints a
# leaf for it during the handshake. curl's handshake time (appconnect -
# connect) for N names asked for the first time, then for the same names
# again (a full handshake each time: separate curl processes, no session
# resumption, the leaf now cached); and the minting alone, in process.
#
#   bench/tls/handshake.sh [NAMES]   (default 200)
set -euo pipefail

NAMES=${1:-200}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
bench_workdir afs-handshake-bench

echo "building (release)..." >&2
(cd "$ROOT" && cargo build -q --release -p agentfs-router --examples && cargo build -q --release -p agentfs-tls --examples)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
HOME_DIR="$WORK/home"
mkdir -p "$HOME_DIR/run" && chmod 700 "$HOME_DIR" "$HOME_DIR/run"
# Any socket will do for the router's one route: only handshakes are timed.
python3 -c "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(3600)" \
  "$HOME_DIR/run/bench_a1.sock" & PIDS+=($!)
for _ in $(seq 1 100); do [ -S "$HOME_DIR/run/bench_a1.sock" ] && break; sleep 0.05; done
PORT=$(free_port)
"$TARGET/release/examples/bench_router" "$HOME_DIR" "$PORT" >"$WORK/router.out" & PIDS+=($!)
for _ in $(seq 1 200); do grep -q ready "$WORK/router.out" 2>/dev/null && break; sleep 0.05; done

handshakes() { # handshakes: one curl per name, handshake time in microseconds
  for i in $(seq 1 "$NAMES"); do
    name="n$i.a1.bench.localhost"
    curl -s -o /dev/null --cacert "$HOME_DIR/ca/ca.pem" --resolve "$name:$PORT:127.0.0.1" \
      -w '%{time_connect} %{time_appconnect}\n' "https://$name:$PORT/health" \
      | awk '{printf "%d\n", ($2 - $1) * 1e6}'
  done
}
stats() { sort -n | awk '{a[NR]=$1} END {printf "median %d us, p99 %d us (%d handshakes)", a[int((NR+1)/2)], a[int(NR*0.99)], NR}'; }
echo "handshake, first request to a new name (leaf minted): $(handshakes | stats)"
echo "handshake, the same names again (leaf cached):        $(handshakes | stats)"
"$TARGET/release/examples/mint_cost" 1000
