#!/usr/bin/env bash
# How the router holds many connections at once: opens N connections to a
# bench_router in front of one Unix-socket nginx backend, sends a GET on
# each, reads every answer with all of them still open, closes them all,
# and does that three times. Prints how many were answered 200 and 503 and
# the router's RSS and descriptors, with the connections open and after.
#
#   bench/router/connections.sh [N] [BENCH_ROUTER]    (defaults: 5000, this tree's)
#
# The router's limit follows the descriptor limit (`ulimit -n`) of this shell.
set -euo pipefail
N=${1:-5000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${2:-}" ]; then
  (cd "$ROOT" && cargo build -q --release -p agentfs-router --examples)
fi
BIN=${2:-${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench_router}
WORK=$(mktemp -d /tmp/afr-conns.XXXXXX); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/home/run" && chmod 700 "$WORK/home" "$WORK/home/run"
SOCK="$WORK/home/run/bench_a1.sock"
cat >"$WORK/backend.conf" <<CONF
worker_processes 1; pid $WORK/backend.pid; error_log $WORK/backend.err;
events { worker_connections 16384; }
http { access_log off; server { listen unix:$SOCK backlog=8192;
  location / { return 200 "hello from the backend\n"; } } }
CONF
PATH="$PATH:/usr/sbin" nginx -c "$WORK/backend.conf" -g 'daemon off;' & PIDS+=($!)
for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" "$WORK/home" "$PORT" >"$WORK/router.out" 2>"$WORK/router.err" & ROUTER=$!; PIDS+=($ROUTER)
for _ in $(seq 200); do grep -q ready "$WORK/router.out" && break; sleep 0.05; done
python3 - "$PORT" "$ROUTER" "$N" <<'PY'
import os, socket, sys, time
port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    line = next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS"))
    return int(line.split()[1]) // 1024
def fds():
    return len(os.listdir(f"/proc/{pid}/fd"))
print(f"idle: RSS {rss()} MB, {fds()} descriptors")
for round in range(1, 4):
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench.localhost\r\n\r\n")
        conns.append(s)
    counts = {}
    for s in conns:
        s.settimeout(10)
        try:
            status = s.recv(4096)[9:12].decode() or "closed"
        except OSError as e:
            status = type(e).__name__
        counts[status] = counts.get(status, 0) + 1
    held = f"RSS {rss()} MB, {fds()} descriptors"
    for s in conns:
        s.close()
    time.sleep(2)
    print(f"round {round}: {n} connections, answers {counts}; open: {held}; closed: RSS {rss()} MB, {fds()} descriptors")
PY
