# Small helpers the bench scripts share (sourced, not run).

# A TCP port free on loopback right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU time a process used so far, in clock ticks (user + system).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# A process's resident memory, in KiB.
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
