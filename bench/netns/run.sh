#!/usr/bin/env bash
# The namespace lane's cost, in one session on one machine.
#
#   bench/netns/run.sh [RUNS] [SECS] [CONNS] [STARTS]    (defaults: 5 5 32 15)
#
# Throughput and p99 through the router (wrk, interleaved run by run) to the
# same Go HTTP server (fixtures/go/server.go) on three paths:
#   lane    the static build (CGO_ENABLED=0) under `agentfs wrap`: in its own
#           network namespace, reached router -> run-dir socket -> init's
#           forwarder -> the server's TCP port on the namespace's loopback
#   shim    the path a shimmed app has, router -> run-dir socket -> the app:
#           a dynamically linked build (cgo) listening on a Unix socket
#           itself (--unix), named with `agentfs route`. Go makes its own
#           system calls even when dynamically linked, so the shim cannot
#           convert its listener: this is the shim's data path without it.
#   bridge  the static build under `agentfs wrap --no-netns` (the old lane):
#           router -> run-dir socket -> wrap's bridge -> TCP on the host
# And start-up: from `agentfs wrap -- server` to the server's first answer
# on its run-dir socket, in the lane and with --no-netns (the bridge),
# STARTS times each, interleaved; the difference of the medians is what the
# lane adds.
#
# Needs cargo, go (Debian's golang-go), wrk, pasta (passt). Everything lives
# in a temp dir; nothing is left running.
set -euo pipefail

RUNS=${1:-5}
SECS=${2:-5}
CONNS=${3:-32}
STARTS=${4:-15}
THREADS=2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
bench_workdir afn-bench

for tool in wrk pasta go; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install wrk passt golang-go)" >&2; exit 1; }
done
echo "building agentfs (release) and the Go server, static and dynamic..." >&2
(cd "$ROOT" && cargo build -q --release --bin agentfs)
AGENTFS=${CARGO_TARGET_DIR:-$ROOT/target}/release/agentfs
export GOCACHE=$WORK/gocache GO111MODULE=off
CGO_ENABLED=0 go build -o "$WORK/server-static" "$ROOT/fixtures/go/server.go"
CGO_ENABLED=1 go build -o "$WORK/server-dynamic" "$ROOT/fixtures/go/server.go"
file "$WORK/server-dynamic" | grep -q 'dynamically linked' || { echo "the cgo build is not dynamic" >&2; exit 1; }

export AGENTFS_HOME=$WORK/home
mkdir -p "$AGENTFS_HOME" && chmod 700 "$AGENTFS_HOME"
unset AGENTFS_APP AGENTFS_INSTANCE AGENTFS_RUN_DIR AGENTFS_LOG LD_PRELOAD

wait_for() { # wait_for DESCRIPTION COMMAND...: up to 20 s
  local what=$1; shift
  for _ in $(seq 1 400); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "timed out waiting for $what" >&2
  exit 1
}

PORT=$(free_port)
"$AGENTFS" router --foreground --port "$PORT" 2>"$WORK/router.log" & PIDS+=($!)
wait_for "the router" curl -sf "http://127.0.0.1:$PORT/health" -H 'Host: agentfs.localhost'
"$AGENTFS" wrap --no-router --name lane --instance a -- "$WORK/server-static" --listen :8080 \
  >/dev/null 2>"$WORK/lane.log" & PIDS+=($!)
"$AGENTFS" wrap --no-router --no-netns --name bridge --instance a -- "$WORK/server-static" \
  >/dev/null 2>"$WORK/bridge.log" & PIDS+=($!)
mkdir -p "$WORK/sock" && chmod 700 "$WORK/sock"
"$WORK/server-dynamic" --unix "$WORK/sock/shim.sock" 2>"$WORK/shim.log" & PIDS+=($!)
wait_for "the unix server" test -S "$WORK/sock/shim.sock"
"$AGENTFS" route shim "$WORK/sock/shim.sock" >/dev/null 2>&1

host_of() {
  case $1 in lane) echo a.lane.localhost ;; bridge) echo a.bridge.localhost ;; shim) echo shim.localhost ;; esac
}
PATHS="lane shim bridge"
for name in $PATHS; do
  wait_for "$name through the router" curl -sf -H "Host: $(host_of "$name")" "http://127.0.0.1:$PORT/"
done

declare -A RPS P99
for run in $(seq 1 "$RUNS"); do
  for name in $PATHS; do
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency \
      -H "Host: $(host_of "$name")" "http://127.0.0.1:$PORT/")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/' <<<"$out")
    # wrk prints latencies with units; normalise to microseconds.
    p99us=$(python3 -c "import sys,re; v,u=re.match(r'([\d.]+)(\w+)',sys.argv[1]).groups(); print(round(float(v)*{'us':1,'ms':1e3,'s':1e6}[u]))" "$p99")
    echo "run $run $name: ${rps} req/s, p99 ${p99us} us ${errs}"
    RPS[$name]+="$rps "
    P99[$name]+="$p99us "
  done
done

# Start-up: from `agentfs wrap` to the server's first answer on its socket
# (polled every millisecond), then SIGTERM; microseconds. Instance s: in
# instance a the lane's forwarder would hold port 8080 (the other lane
# server's) before the program starts, as one machine would.
first_answer() { # first_answer NAME [WRAP FLAGS...]
  python3 - "$AGENTFS" "$AGENTFS_HOME/run/$1_s.sock" "$WORK/server-static" "$1" "${@:2}" <<'PY'
import os, signal, socket, subprocess, sys, time
agentfs, sock, server, name, flags = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
t0 = time.perf_counter()
wrap = subprocess.Popen([agentfs, "wrap", "--no-router", *flags, "--name", name, "--instance", "s", "--", server],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if s.recv(64).startswith(b"HTTP/1.1 200"):
            break
    except OSError:
        pass
    finally:
        s.close()
    if time.perf_counter() - t0 > 20:
        sys.exit("no answer within 20 s")
    time.sleep(0.001)
print(round((time.perf_counter() - t0) * 1e6))
wrap.send_signal(signal.SIGTERM)
wrap.wait()
PY
}
declare -A START
for _ in $(seq 1 "$STARTS"); do
  START[lane]+="$(first_answer startlane) "
  START[bridge]+="$(first_answer startbridge --no-netns) "
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "medians of $RUNS runs x ${SECS}s, $CONNS connections, wrk -t$THREADS, $(nproc) cores:"
for name in $PATHS; do
  echo "  $name: $(median <<<"${RPS[$name]}") req/s, p99 $(median <<<"${P99[$name]}") us"
done
ratio() { # ratio A B: A's medians over B's
  python3 -c "import sys; r,h,rp,hp=map(float,sys.argv[3:]); print(f'{sys.argv[1]}/{sys.argv[2]}: throughput {r/h:.2f}x, p99 {rp/hp:.2f}x')" \
    "$1" "$2" "$(median <<<"${RPS[$1]}")" "$(median <<<"${RPS[$2]}")" \
    "$(median <<<"${P99[$1]}")" "$(median <<<"${P99[$2]}")"
}
ratio lane shim
ratio bridge shim
ratio lane bridge
lane_us=$(median <<<"${START[lane]}"); bridge_us=$(median <<<"${START[bridge]}")
echo "start-up, wrap to the server's first answer on its socket, median of $STARTS: lane $((lane_us / 1000)) ms, bridge $((bridge_us / 1000)) ms, the lane adds $(((lane_us - bridge_us) / 1000)) ms"
