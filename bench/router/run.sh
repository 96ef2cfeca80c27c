#!/usr/bin/env bash
# Puts the agentfs router, haproxy, nginx and caddy in front of the same
# Unix-socket backend and drives each with wrk: same connections, same
# duration, proxies interleaved run by run. Prints one line per run and the
# medians. Also measures the router's idle RSS and its discovery latency.
#
#   bench/router/run.sh [RUNS] [SECONDS] [CONNECTIONS]    (defaults: 3 5 50)
#
# BEFORE_ROUTER=path/to/another/bench_router adds that build as proxy
# "before" (same backend, own run dir), for before/after in one run.
# PROXIES="router haproxy" limits the proxies driven (default: all).
#
# Needs Debian's haproxy nginx caddy wrk (installed with apt-get if missing)
# and cargo. Everything lives in a temp dir; nothing is left running.
set -euo pipefail

RUNS=${1:-3}
SECS=${2:-5}
CONNS=${3:-50}
THREADS=${WRK_THREADS:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
WORK=$(mktemp -d /tmp/afr-bench.XXXXXX)
PIDS=()

cleanup() {
  # CONT too: a stopped process ("before" between its runs) ignores TERM until resumed.
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null && kill -CONT "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in haproxy nginx caddy wrk; do
  if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
    apt-get install -y haproxy nginx caddy wrk >/dev/null
    break
  fi
done
export PATH="$PATH:/usr/sbin"

echo "building the router (release)..." >&2
(cd "$ROOT" && cargo build -q --release -p agentfs-router --examples)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

HOME_DIR="$WORK/home"
RUN="$HOME_DIR/run"
mkdir -p "$RUN" && chmod 700 "$HOME_DIR" "$RUN"
SOCK="$RUN/bench_a1.sock"
BEFORE=${BEFORE_ROUTER:-}
HOME_B="$WORK/home-before"
RUN_B="$HOME_B/run"
mkdir -p "$RUN_B" && chmod 700 "$HOME_B" "$RUN_B"
SOCK_B="$RUN_B/bench_a1.sock"
# Builds before the socket names used `_` named it bench-a1.sock: the
# backend listens under both names there, so any build can be "before".
SOCK_B_OLD="$RUN_B/bench-a1.sock"
PROXIES=${PROXIES:-router haproxy nginx caddy}
[ -n "$BEFORE" ] && PROXIES="before $PROXIES"

# The backend: nginx answering a small fixed body on a Unix socket.
cat >"$WORK/backend.conf" <<CONF
worker_processes 1;
pid $WORK/backend.pid;
error_log $WORK/backend.err;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen unix:$SOCK;
    listen unix:$SOCK_B;
    listen unix:$SOCK_B_OLD;
    location / { return 200 "hello from the backend\n"; }
  }
}
CONF
nginx -c "$WORK/backend.conf" -g 'daemon off;' & PIDS+=($!)

wait_for() { # wait_for DESCRIPTION COMMAND...: up to 10 s
  local what=$1; shift
  for _ in $(seq 1 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "timed out waiting for $what" >&2
  tail -n 5 "$WORK"/*.log "$WORK"/*.err "$WORK"/*.out >&2 2>/dev/null || true
  exit 1
}
wait_for "backend socket" test -S "$SOCK"

P_ROUTER=$(free_port); P_HAPROXY=$(free_port); P_NGINX=$(free_port); P_CADDY=$(free_port)
P_BEFORE=$(free_port)

"$TARGET/release/examples/bench_router" "$HOME_DIR" "$P_ROUTER" >"$WORK/router.out" & ROUTER_PID=$!; PIDS+=($ROUTER_PID)
wait_for "router" grep -q ready "$WORK/router.out"
if [ -n "$BEFORE" ]; then
  "$BEFORE" "$HOME_B" "$P_BEFORE" >"$WORK/before.out" & BEFORE_PID=$!; PIDS+=($BEFORE_PID)
  wait_for "before router" grep -q ready "$WORK/before.out"
fi
# Router builds without the discovery fix re-scan the run dir nonstop, idle too;
# "before" is stopped outside its own runs so it does not slow the others.
pause_before() { [ -n "$BEFORE" ] && kill "-$1" "$BEFORE_PID"; return 0; }

cat >"$WORK/haproxy.cfg" <<CONF
global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$P_HAPROXY
  default_backend be
backend be
  http-reuse always
  server s1 $SOCK maxconn 1024
CONF
haproxy -f "$WORK/haproxy.cfg" -db & PIDS+=($!)

# Workers must reach the socket in the private (0700) run dir: same user as its owner.
cat >"$WORK/nginx.conf" <<CONF
user $(id -un);
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  upstream be { server unix:$SOCK; keepalive 128; }
  server {
    listen 127.0.0.1:$P_NGINX;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
    }
  }
}
CONF
nginx -c "$WORK/nginx.conf" -g 'daemon off;' & PIDS+=($!)

cat >"$WORK/Caddyfile" <<CONF
{
  admin off
  auto_https off
}
http://:$P_CADDY {
  bind 127.0.0.1
  reverse_proxy unix/$SOCK
}
CONF
HOME="$WORK" XDG_DATA_HOME="$WORK" XDG_CONFIG_HOME="$WORK" \
  caddy run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 & PIDS+=($!)

port_of() {
  case $1 in
    router) echo "$P_ROUTER" ;; haproxy) echo "$P_HAPROXY" ;;
    nginx) echo "$P_NGINX" ;; caddy) echo "$P_CADDY" ;; before) echo "$P_BEFORE" ;;
  esac
}
for name in $PROXIES; do
  p=$(port_of "$name")
  wait_for "port $p" curl -sf -H 'Host: bench.localhost' "http://127.0.0.1:$p/"
done

pause_before STOP
IDLE_RSS=$(rss_kb "$ROUTER_PID")

declare -A RPS P99
for run in $(seq 1 "$RUNS"); do
  for name in $PROXIES; do
    port=$(port_of "$name")
    [ "$name" = before ] && pause_before CONT
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency \
      -H 'Host: bench.localhost' "http://127.0.0.1:$port/")
    pause_before STOP
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
LOADED_RSS=$(rss_kb "$ROUTER_PID")

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "medians of $RUNS runs x ${SECS}s, $CONNS connections, wrk -t$THREADS, $(nproc) cores:"
for name in $PROXIES; do
  echo "  $name: $(median <<<"${RPS[$name]}") req/s, p99 $(median <<<"${P99[$name]}") us"
done
ratio() { # ratio A B: A's medians over B's
  local r h rp hp
  r=$(median <<<"${RPS[$1]:-}"); h=$(median <<<"${RPS[$2]:-}")
  rp=$(median <<<"${P99[$1]:-}"); hp=$(median <<<"${P99[$2]:-}")
  [ -n "$r" ] && [ -n "$h" ] || return 0
  python3 -c "import sys; r,h,rp,hp=map(float,sys.argv[3:]); print(f'{sys.argv[1]}/{sys.argv[2]}: throughput {r/h:.2f}x, p99 {rp/hp:.2f}x')" "$1" "$2" "$r" "$h" "$rp" "$hp"
}
ratio router haproxy
ratio before haproxy
ratio router before
echo "router RSS: idle ${IDLE_RSS} kB, after load ${LOADED_RSS} kB"
"$TARGET/release/examples/discovery_latency" 200
