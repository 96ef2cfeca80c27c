#!/usr/bin/env bash
# agentfs's main job, end to end: two copies of one unmodified app, both asking
# for port 3000, run side by side and are reached by name through the router.
# Uses a throwaway AGENTFS_HOME and a free router port; leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo node curl python3; do
    command -v "$tool" >/dev/null || { echo "demo: $tool is required" >&2; exit 1; }
done
cargo build --release --quiet
agentfs="$PWD/target/release/agentfs"

export AGENTFS_HOME="$(mktemp -d "${TMPDIR:-/tmp}/agentfs-demo.XXXXXX")"
export AGENTFS_ROUTER_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
pids=()
cleanup() {
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
