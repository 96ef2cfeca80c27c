#!/usr/bin/env bash
# TLS throughput and p99: the agentfs router (TLS on its own port, rustls),
# nginx and haproxy (OpenSSL) terminating TLS in front of the same
# Unix-socket backend, each with an ECDSA P-256 certificate from the same
# local CA. HTTP/2 with h2load, HTTPS/1.1 with wrk; proxies interleaved run
# by run. Prints one line per run and the medians.
#
#   bench/tls/run.sh [RUNS] [SECONDS] [CONNECTIONS] [STREAMS]   (defaults: 3 5 50 10)
#
# STREAMS is h2load's concurrent streams per connection (-m). PROXIES limits
# the proxies driven (default "router haproxy nginx"). BEFORE_ROUTER=path
# to another bench_router build adds it as proxy "before" (its own home
# and CA, same backend), for before/after in one run. Needs Debian's
# haproxy nginx wrk nghttp2-client (installed with apt-get if missing),
# openssl and cargo. Everything lives in a temp dir; nothing is left running.
set -euo pipefail

RUNS=${1:-3}
SECS=${2:-5}
CONNS=${3:-50}
STREAMS=${4:-10}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
bench_workdir afs-tls-bench

for tool in haproxy nginx wrk h2load; do
  if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
    apt-get install -y haproxy nginx wrk nghttp2-client >/dev/null
    break
  fi
done
export PATH="$PATH:/usr/sbin"

echo "building the router (release)..." >&2
(cd "$ROOT" && cargo build -q --release -p agentfs-router --examples)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ROUTER_BIN=${ROUTER_BIN:-$TARGET/release/examples/bench_router}

HOME_DIR="$WORK/home"
RUN="$HOME_DIR/run"
mkdir -p "$RUN" && chmod 700 "$HOME_DIR" "$RUN"
SOCK="$RUN/bench_a1.sock"
PROXIES=${PROXIES:-router haproxy nginx}
BEFORE=${BEFORE_ROUTER:-}
[ -n "$BEFORE" ] && PROXIES="before $PROXIES"
HOME_B="$WORK/home-before"
mkdir -p "$HOME_B/run" && chmod 700 "$HOME_B" "$HOME_B/run"
NAME=a1.bench.localhost

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
    listen unix:$HOME_B/run/bench_a1.sock;
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

P_ROUTER=$(free_port); P_HAPROXY=$(free_port); P_NGINX=$(free_port); P_BEFORE=$(free_port)

# The router makes its CA in HOME on start; nginx and haproxy get a leaf
# for the same name from that CA, signed with openssl.
"$ROUTER_BIN" "$HOME_DIR" "$P_ROUTER" >"$WORK/router.out" & ROUTER_PID=$!; PIDS+=($ROUTER_PID)
wait_for "router" grep -q ready "$WORK/router.out"
if [ -n "$BEFORE" ]; then
  "$BEFORE" "$HOME_B" "$P_BEFORE" >"$WORK/before.out" & PIDS+=($!)
  wait_for "before router" grep -q ready "$WORK/before.out"
fi
CA="$HOME_DIR/ca/ca.pem"
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/leaf.key"
openssl req -new -key "$WORK/leaf.key" -subj "/CN=$NAME" -out "$WORK/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$NAME" >"$WORK/leaf.ext"
openssl x509 -req -in "$WORK/leaf.csr" -CA "$CA" -CAkey "$HOME_DIR/ca/ca-key.pem" \
  -CAcreateserial -days 2 -extfile "$WORK/leaf.ext" -out "$WORK/leaf.pem" 2>/dev/null
cat "$WORK/leaf.pem" "$WORK/leaf.key" >"$WORK/haproxy.pem"

cat >"$WORK/haproxy.cfg" <<CONF
global
  maxconn 4096
  ssl-default-bind-options ssl-min-ver TLSv1.3
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$P_HAPROXY ssl crt $WORK/haproxy.pem alpn h2,http/1.1
  default_backend be
backend be
  http-reuse always
  server s1 $SOCK maxconn 1024
CONF
haproxy -f "$WORK/haproxy.cfg" -db & PIDS+=($!)

cat >"$WORK/nginx.conf" <<CONF
user $(id -un);
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  # Its default of 1,000 requests per connection ends h2load's connections
  # (h2load does not reconnect): as many as the others serve.
  keepalive_requests 10000000;
  # As many idle backend connections as the router keeps (512).
  upstream be { server unix:$SOCK; keepalive 512; }
  server {
    listen 127.0.0.1:$P_NGINX ssl http2;
    ssl_protocols TLSv1.3;
    ssl_certificate $WORK/leaf.pem;
    ssl_certificate_key $WORK/leaf.key;
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

port_of() {
  case $1 in
    router) echo "$P_ROUTER" ;; haproxy) echo "$P_HAPROXY" ;; nginx) echo "$P_NGINX" ;; before) echo "$P_BEFORE" ;;
  esac
}
for name in $PROXIES; do
  p=$(port_of "$name")
  ca=$CA; [ "$name" = before ] && ca="$HOME_B/ca/ca.pem"
  wait_for "$name on $p" curl -sf --cacert "$ca" --resolve "$NAME:$p:127.0.0.1" "https://$NAME:$p/"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A H2_RPS H2_P99 H1_RPS H1_P99
for run in $(seq 1 "$RUNS"); do
  for name in $PROXIES; do
    port=$(port_of "$name")
    # h2: every request's latency goes to a log; p99 from it.
    log="$WORK/h2-$name-$run.log"
    out=$(h2load -c"$CONNS" -m"$STREAMS" -D"$SECS" --warm-up-time=1 --log-file="$log" \
      --connect-to="127.0.0.1:$port" "https://$NAME:$port/" 2>&1)
    echo "$out" >"$WORK/h2-$name-$run.out"
    rps=$(awk '/^finished in/ {print $4}' <<<"$out")
    failed=$(awk '/^requests:/ {print $10, "failed"}' <<<"$out")
    p99=$(cut -f3 "$log" | sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.99)]}')
    echo "run $run $name h2: $rps req/s, p99 $p99 us ($failed)"
    H2_RPS[$name]+="$rps "; H2_P99[$name]+="$p99 "
    # HTTPS/1.1: wrk (no SNI for an address: the router serves its loopback
    # certificate; routing is by Host).
    out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -H "Host: $NAME" "https://127.0.0.1:$port/")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/' <<<"$out")
    p99us=$(python3 -c "import sys,re; v,u=re.match(r'([\d.]+)(\w+)',sys.argv[1]).groups(); print(round(float(v)*{'us':1,'ms':1e3,'s':1e6}[u]))" "$p99")
    echo "run $run $name https/1.1: $rps req/s, p99 $p99us us $errs"
    H1_RPS[$name]+="$rps "; H1_P99[$name]+="$p99us "
  done
done

echo
echo "medians of $RUNS runs x ${SECS}s, $CONNS connections (h2: $STREAMS streams each), $(nproc) cores:"
for name in $PROXIES; do
  printf '  %-8s h2 %8.0f req/s p99 %6s us | https/1.1 %8.0f req/s p99 %6s us\n' "$name" \
    "$(median <<<"${H2_RPS[$name]}")" "$(median <<<"${H2_P99[$name]}")" \
    "$(median <<<"${H1_RPS[$name]}")" "$(median <<<"${H1_P99[$name]}")"
done
echo "router RSS after load: $(rss_kb "$ROUTER_PID") kB"
