# Small helpers the bench scripts share (sourced, not run).

# A TCP port free on loopback right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU time a process used so far, in clock ticks (user + system).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# A process's resident memory, in KiB.
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# A temp work dir, $WORK, removed at exit after every process in $PIDS has
# been stopped. A script that needs more done at exit defines bench_at_exit.
bench_workdir() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
}
bench_cleanup() {
  if declare -F bench_at_exit >/dev/null; then bench_at_exit; fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
