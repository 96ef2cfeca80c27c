#!/usr/bin/env bash
# agentfs's main job, end to end: two copies of one unmodified app, both asking
# for port 3000, run side by side and are reached by name through the router;
# then a whole stack (a web calling an API, both on fixed ports) brought up
# with one command in each of two git work trees, and taken down.
# Uses a throwaway AGENTFS_HOME and a free router port; leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo node curl python3 git; do
    command -v "$tool" >/dev/null || { echo "demo: $tool is required" >&2; exit 1; }
done
cargo build --release --quiet
agentfs="$PWD/target/release/agentfs"

export AGENTFS_HOME="$(mktemp -d "${TMPDIR:-/tmp}/agentfs-demo.XXXXXX")"
export AGENTFS_ROUTER_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
pids=()
stacks=()
cleanup() {
    for tree in "${stacks[@]}"; do
        (cd "$tree" && "$agentfs" down >/dev/null 2>&1) || true
    done
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    "$agentfs" router stop >/dev/null 2>&1 || true
    rm -rf "$AGENTFS_HOME"
}
trap cleanup EXIT

for instance in blue green; do
    "$agentfs" wrap --name demo --instance "$instance" -- node fixtures/node/server.js 3000 &
    pids+=($!)
done

# Wait (at most 20 s) until the router routes both instances.
for _ in $(seq 200); do
    if curl -sf "http://blue.demo.localhost:$AGENTFS_ROUTER_PORT/" >/dev/null &&
        curl -sf "http://green.demo.localhost:$AGENTFS_ROUTER_PORT/" >/dev/null; then
        break
    fi
    sleep 0.1
done

echo
for host in blue.demo green.demo demo demo; do
    printf 'GET http://%s.localhost:%s/ -> ' "$host" "$AGENTFS_ROUTER_PORT"
    curl -sf "http://$host.localhost:$AGENTFS_ROUTER_PORT/"
    echo
done
echo
# Every instance is a private localhost: a command run as instance green
# reaches green's own app on localhost:3000.
printf 'inside instance green, GET http://localhost:3000/ -> '
"$agentfs" wrap --no-router --name client --instance green -- curl -sf http://localhost:3000/ 2>/dev/null
echo
echo
"$agentfs" ps

# A whole stack per git work tree: agentfs.toml names the services, `up -d
# --wait` starts them in order (api first) and returns once each is ready.
echo
repo="$AGENTFS_HOME/src/shop"
mkdir -p "$repo"
cp fixtures/stack/web.js "$repo/"
cat >"$repo/api.py" <<'PY'
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
hits = 0
class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        global hits
        hits += 1
        body = json.dumps({"instance": os.environ["AGENTFS_INSTANCE"], "hits": hits}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", 8000), Api).serve_forever()
PY
cat >"$repo/agentfs.toml" <<'TOML'
[services.api]
run = "exec python3 api.py"
ready = "http://localhost:8000/health"

[services.web]
run = "exec node web.js 3000 8000"
after = ["api"]
TOML
git() { command git -C "$repo" -c user.name=demo -c user.email=demo@agentfs.invalid "$@"; }
git init -q -b main && git add -A && git commit -qm shop
for branch in feat-x feat-y; do
    git worktree add -q -b "$branch" "$AGENTFS_HOME/src/$branch"
    stacks+=("$AGENTFS_HOME/src/$branch")
    echo "\$ cd src/$branch && agentfs up -d --wait"
    (cd "$AGENTFS_HOME/src/$branch" && "$agentfs" up -d --wait)
done
echo
for instance in feat-x feat-y feat-x; do
    printf 'GET http://%s.web.localhost:%s/count -> ' "$instance" "$AGENTFS_ROUTER_PORT"
    curl -sf "http://$instance.web.localhost:$AGENTFS_ROUTER_PORT/count"
    echo
done
echo
"$agentfs" ps --stacks
for tree in "${stacks[@]}"; do
    echo "\$ cd src/$(basename "$tree") && agentfs down"
    (cd "$tree" && "$agentfs" down)
done
stacks=()
