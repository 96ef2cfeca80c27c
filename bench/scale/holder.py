"""Holds N live instances in a run directory for bench/scale/run.sh: for each,
the liveness lock (flocked), a listening Unix socket and its sidecar, as the
shim makes them. Prints "ready" once all are in place, then waits for stdin
to close. Every connection is accepted and closed (nothing connects in the
benchmark but the router's own checks).

Usage: python3 holder.py RUN_DIR FIRST COUNT   (instances iFIRST .. iFIRST+COUNT-1)
"""
import fcntl
import json
import os
import socket
import sys
import time

run_dir, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for i in range(first, first + count):
    stem = os.path.join(run_dir, f"bench_i{i}")
    lock = open(stem + ".lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(stem + ".sock")
    sock.listen(16)
    os.chmod(stem + ".sock", 0o600)
    car = {
        "version": 1, "kind": "shim", "app": "bench", "instance": f"i{i}",
        "pid": os.getpid(), "socket": stem + ".sock", "address": "0.0.0.0",
        "port": 3000, "primary": True, "listening": True,
        "hostname": f"i{i}.bench.localhost", "argv": ["holder"], "cwd": "/",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = os.path.join(run_dir, f".bench_i{i}.json.tmp")
    with open(tmp, "w") as f:
        json.dump(car, f)
    os.chmod(tmp, 0o600)
    os.rename(tmp, stem + ".json")
    held.append((lock, sock))
print("ready", flush=True)
sys.stdin.read()
