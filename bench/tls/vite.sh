#!/usr/bin/env bash
# Cold page load of a Vite dev server's page of N ES modules in headless
# Chromium (fresh context, cache disabled), three ways side by side, loads
# interleaved: direct to Vite over HTTP/1.1, through agentfs over HTTP/1.1,
# and through agentfs over HTTPS with HTTP/2 (the CA trusted through the
# NSS database `agentfs trust` fills, in a temporary HOME). Prints each
# load and the medians.
#
#   bench/tls/vite.sh [RUNS] [MODULES...]        (defaults: 10 100 600 2000)
#
# Needs Debian's chromium, node, and tests/node's packages (npm ci there:
# vite, puppeteer-core), certutil (libnss3-tools) and cargo. Everything
# lives in a temp dir; nothing is left running.
set -euo pipefail

RUNS=${1:-10}
shift || true
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100 600 2000)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
bench_workdir afs-vite-bench
NODE_MODULES="$ROOT/tests/node/node_modules"
[ -d "$NODE_MODULES/vite" ] || (cd "$ROOT/tests/node" && npm ci --no-audit --no-fund --loglevel=error)

echo "building agentfs (release)..." >&2
(cd "$ROOT" && cargo build -q --release)
AGENTFS=${CARGO_TARGET_DIR:-$ROOT/target}/release/agentfs
export AGENTFS_HOME="$WORK/home"
USER_HOME="$WORK/user"
mkdir -p "$USER_HOME"
HOME="$USER_HOME" "$AGENTFS" trust --no-system >/dev/null

PORT=$(free_port)
"$AGENTFS" router --foreground --port "$PORT" 2>"$WORK/router.log" & PIDS+=($!)

wait_for() { # wait_for DESCRIPTION COMMAND...: up to 60 s
  local what=$1; shift
  for _ in $(seq 1 1200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "timed out waiting for $what" >&2
  tail -n 5 "$WORK"/*.log >&2 2>/dev/null || true
  exit 1
}

# A project whose main.js imports N modules, each a small ES module.
make_project() { # make_project DIR N
  local dir=$1 n=$2 i
  mkdir -p "$dir/src"
  printf '<!doctype html>\n<html><body><p id="app">loading</p><script type="module" src="/main.js"></script></body></html>\n' >"$dir/index.html"
  {
    for i in $(seq 0 $((n - 1))); do echo "import v$i from './src/m$i.js';"; done
    echo "let sum = 0;"
    for i in $(seq 0 $((n - 1))); do echo "sum += v$i;"; done
    echo 'document.getElementById("app").textContent = `ready ${sum}`;'
  } >"$dir/main.js"
  for i in $(seq 0 $((n - 1))); do
    printf 'const value = %d;\nexport function describe() { return `module %d`; }\nexport default value;\n' "$i" "$i" >"$dir/src/m$i.js"
  done
}

VITE="$NODE_MODULES/vite/bin/vite.js"
declare -A URLS
for n in "${SIZES[@]}"; do
  dir="$WORK/page$n"
  make_project "$dir" "$n"
  direct=$(free_port)
  (cd "$dir" && node "$VITE" --port "$direct" --strictPort --host 127.0.0.1 >"$WORK/direct$n.log" 2>&1) & PIDS+=($!)
  (cd "$dir" && "$AGENTFS" wrap --no-router --name "page$n" --instance a -- \
    node "$VITE" --port 5173 --strictPort --host 127.0.0.1 >"$WORK/wrapped$n.log" 2>&1) & PIDS+=($!)
  wait_for "direct Vite ($n)" curl -sf "http://127.0.0.1:$direct/"
  wait_for "Vite through agentfs ($n)" curl -sf "http://a.page$n.localhost:$PORT/"
  URLS[$n]="http://127.0.0.1:$direct/ http://a.page$n.localhost:$PORT/ https://a.page$n.localhost:$PORT/"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "cold loads, median of $RUNS (ms), $(nproc) cores, $(chromium --version 2>/dev/null | head -1):"
for n in "${SIZES[@]}"; do
  # shellcheck disable=SC2086
  json=$(NODE_PATH="$NODE_MODULES" HOME="$USER_HOME" node "$ROOT/bench/tls/page_load.js" "$RUNS" ${URLS[$n]})
  read -r direct h1 h2 <<<"${URLS[$n]}"
  line() { python3 -c "import json,sys; r=json.loads(sys.argv[1])[sys.argv[2]]; print(' '.join(map(str,r['ms'])), r['protocol'])" "$json" "$1"; }
  read -r -a d <<<"$(line "$direct")"; read -r -a a1 <<<"$(line "$h1")"; read -r -a a2 <<<"$(line "$h2")"
  md=$(echo "${d[@]:0:$RUNS}" | median); m1=$(echo "${a1[@]:0:$RUNS}" | median); m2=$(echo "${a2[@]:0:$RUNS}" | median)
  echo "  $n modules: direct ${md} ms (${d[$RUNS]}), agentfs ${m1} ms (${a1[$RUNS]}), agentfs https ${m2} ms (${a2[$RUNS]}); h2/direct $(python3 -c "print(f'{$m2/$md:.2f}')")x, h1/direct $(python3 -c "print(f'{$m1/$md:.2f}')")x"
  echo "    loads: direct ${d[*]:0:$RUNS} | h1 ${a1[*]:0:$RUNS} | h2 ${a2[*]:0:$RUNS}"
done
