#!/usr/bin/env bash
# Checks the macOS build from Linux, since no Mac is at hand: builds the
# release shim for arm64 and x86_64 and as a universal dylib with
# cargo-zigbuild, inspects what was built with llvm-objdump, and type-checks
# the whole workspace for both darwin targets.
#
#   scripts/macos-check.sh                      everything (installs what is missing)
#   scripts/macos-check.sh verify-dylib PATH    only the inspection of a built dylib
#
# Prints one `ok:` or `FAIL:` line per check and exits non-zero on any
# failure. Prints `SKIPPED:` and exits 0 only when the darwin targets or zig
# cannot be installed at all. Build output goes to a log file, named on failure.
#
# Settings: MACOS_CHECK_TARGET_DIR (default target/macos-check), and
# MACOSX_DEPLOYMENT_TARGET (default 11.0, the first macOS on Apple silicon;
# zig would otherwise stamp its own, newer minimum, and dyld refuses to load
# a library that asks for a newer macOS than the one running).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
targets=(aarch64-apple-darwin x86_64-apple-darwin)
slices=(arm64 x86_64)
# Every symbol the shim interposes (shim/src/hooks/macos.rs), as Mach-O names.
hooked=(_accept '_accept$NOCANCEL' _bind _execve _getpeername _getsockname
    _getsockopt _listen _posix_spawn _posix_spawnp _recvfrom '_recvfrom$NOCANCEL'
    _recvmsg '_recvmsg$NOCANCEL' _setsockopt)
export MACOSX_DEPLOYMENT_TARGET=${MACOSX_DEPLOYMENT_TARGET:-11.0}
target_dir=${MACOS_CHECK_TARGET_DIR:-$repo/target/macos-check}
log=$target_dir/macos-check.log
passed=0
failed=0

ok() {
    echo "ok: $*"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}
skip() {
    echo "SKIPPED: macOS check: $*"
    exit 0
}

# Runs a command with its output appended to the log; on failure shows the
# end of what it printed.
logged() {
    echo "+ $*" >>"$log"
    if "$@" >>"$log" 2>&1; then
        return 0
    fi
    echo "  (last lines of $log:)"
    tail -n 15 "$log" | sed 's/^/  | /'
    return 1
}

find_objdump() {
    local candidate
    for candidate in llvm-objdump $(compgen -c llvm-objdump- | sort -t- -k3 -rn | uniq); do
        if command -v "$candidate" >/dev/null && "$candidate" --version >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_objdump() {
    objdump=$(find_objdump) && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        logged apt-get update && logged env DEBIAN_FRONTEND=noninteractive apt-get install -y llvm || true
    fi
    objdump=$(find_objdump)
}

zig_version() {
    zig version 2>/dev/null || python3 -m ziglang version 2>/dev/null
}

# The darwin standard libraries, zig (from PyPI) and cargo-zigbuild (from crates.io).
install_tools() {
    if ! logged rustup target add "${targets[@]}"; then
        skip "could not add the darwin targets with rustup"
    fi
    # cargo-zigbuild runs `zig` from PATH, or else `python3 -m ziglang`.
    if ! zig_version >/dev/null; then
        logged python3 -m pip install --quiet ziglang ||
            logged python3 -m pip install --quiet --break-system-packages ziglang ||
            true
    fi
    if ! zig_version >/dev/null; then
        skip "could not install zig (pip install ziglang)"
    fi
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    if ! command -v cargo-zigbuild >/dev/null; then
        if ! logged cargo install cargo-zigbuild --locked; then
            fail "cargo install cargo-zigbuild"
            return 1
        fi
    fi
    ok "tools: darwin targets, zig $(zig_version), $(cargo-zigbuild --version)"
}

# Prints what llvm-objdump says of one slice. Its whole output is read before
# anything parses it: a reader that stops early (awk's `exit`, `grep -q`)
# makes llvm-objdump fail with EX_IOERR (74) on the broken pipe, which
# pipefail would turn into a failed check, at random.
slice_output() {
    local dylib=$1 arch=$2 out
    shift 2
    out=$("$objdump" --macho --arch="$arch" "$@" "$dylib" 2>&1) || true
    printf '%s\n' "$out"
}

# Inspects one architecture's slice of a dylib.
verify_slice() {
    local dylib=$1 arch=$2 binds bound expected symbol missing=() extra=() size start entries misplaced
    local sections
    binds=$("$objdump" --macho --arch="$arch" --bind "$dylib" 2>&1) || {
        fail "$arch: llvm-objdump --bind could not read the slice"
        return
    }
    # Bind table columns: segment section address type addend dylib symbol.
    bound=$(awk '$1 == "__DATA" && $2 == "__interpose" && $6 == "libSystem" { print $7 }' <<<"$binds" | sort -u)
    expected=$(printf '%s\n' "${hooked[@]}" | sort -u)
    for symbol in "${hooked[@]}"; do
        grep -qxF -- "$symbol" <<<"$bound" || missing+=("$symbol")
    done
    while read -r symbol; do
        [ -z "$symbol" ] || grep -qxF -- "$symbol" <<<"$expected" || extra+=("$symbol")
    done <<<"$bound"
    sections=$(slice_output "$dylib" "$arch" --section-headers)
    read -r size start < <(awk '$2 == "__interpose" { print $3, $4 }' <<<"$sections") || true
    entries=$((16#${size:-0} / 16))
    # dyld reads {replacement, original} pairs: every bind must fill the
    # second word of a pair, or the pair would redirect the wrong way.
    local segment section address rest
    misplaced=
    while read -r segment section address _ _ _ symbol rest; do
        if [ "$segment $section" = "__DATA __interpose" ] &&
            (((address - 16#${start:-0}) % 16 != 8)); then
            misplaced+="$symbol "
        fi
    done <<<"$binds"
    if [ ${#missing[@]} -eq 0 ] && [ ${#extra[@]} -eq 0 ] && [ "$entries" -eq ${#hooked[@]} ] &&
        [ -z "$misplaced" ]; then
        ok "$arch: __DATA,__interpose binds all ${#hooked[@]} hooks to libSystem (${hooked[*]})"
    else
        fail "$arch: __DATA,__interpose has $entries entries; not bound from libSystem: ${missing[*]:-none}; unexpected: ${extra[*]:-none}; bound as the replacement: ${misplaced:-none}"
    fi

    local minos headers
    headers=$(slice_output "$dylib" "$arch" --private-headers)
    minos=$(awk '$1 == "cmd" && $2 == "LC_BUILD_VERSION" { b = 1 } b && $1 == "minos" { print $2; exit }' \
        <<<"$headers")
    if [ -n "$minos" ] && printf '%s\n%s\n' "$minos" "$MACOSX_DEPLOYMENT_TARGET" | sort -V -C; then
        ok "$arch: minimum macOS $minos (deployment target $MACOSX_DEPLOYMENT_TARGET)"
    else
        fail "$arch: minimum macOS is ${minos:-unknown}, newer than the deployment target $MACOSX_DEPLOYMENT_TARGET"
    fi

    local id foreign
    id=$(slice_output "$dylib" "$arch" --dylib-id | sed -n '2p' | tr -d '\t')
    foreign=$(slice_output "$dylib" "$arch" --dylibs-used | sed '1d' | awk '{ print $1 }' |
        grep -vxF -- "$id" | grep -vE '^(/usr/lib/|/System/Library/)' || true)
    if [ -z "$foreign" ] && [[ $id == @rpath/* ]]; then
        ok "$arch: links only system libraries; install name $id"
    else
        fail "$arch: install name '$id'; libraries outside the system: ${foreign:-none}"
    fi
}

# Inspects a built dylib: both slices present, then each slice.
verify_dylib() {
    local dylib=$1 headers arch
    if [ ! -f "$dylib" ]; then
        fail "no dylib at $dylib"
        return
    fi
    headers=$("$objdump" --macho --universal-headers "$dylib" 2>&1 || true)
    if grep -q 'CPU_TYPE_ARM64$' <<<"$headers" && grep -q 'CPU_SUBTYPE_ARM64_ALL' <<<"$headers" &&
        grep -q 'CPU_TYPE_X86_64$' <<<"$headers" && grep -q 'nfat_arch 2$' <<<"$headers"; then
        ok "universal dylib has exactly the slices arm64 and x86_64"
    else
        fail "universal dylib lacks an arm64 or x86_64 slice: $(grep -E 'nfat_arch|cputype' <<<"$headers" | tr -s ' \n' ' ')"
    fi
    for arch in "${slices[@]}"; do
        verify_slice "$dylib" "$arch"
    done
}

finish() {
    echo "macos-check took $((SECONDS - start))s; log: $log"
    echo "macos-check: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

start=$SECONDS
mkdir -p "$target_dir"
: >"$log"

if [ "${1:-}" = verify-dylib ]; then
    [ $# -eq 2 ] || { echo "usage: $0 verify-dylib PATH" >&2; exit 2; }
    install_objdump || { fail "llvm-objdump not found and could not be installed"; finish; }
    verify_dylib "$2"
    finish
    exit
fi

cd "$repo"
export CARGO_TARGET_DIR=$target_dir
install_tools || { finish; exit 1; }
install_objdump || fail "llvm-objdump not found and could not be installed (Debian package llvm)"

universal=$target_dir/universal2-apple-darwin/release/libagentfs_shim.dylib
built=
if logged cargo zigbuild --release -p agentfs-shim --lib --target universal2-apple-darwin; then
    ok "release shim built for arm64 and x86_64 and as a universal dylib"
    built=1
    if [ -n "${objdump:-}" ]; then
        verify_dylib "$universal"
    fi
else
    fail "cargo zigbuild --release -p agentfs-shim --target universal2-apple-darwin"
fi

# The agentfs binary embeds the universal shim; cargo check links nothing, so
# no macOS SDK is needed (notify's FSEvents backend binds CoreServices
# through objc2-core-services, plain Rust).
for target in "${targets[@]}"; do
    if [ -n "$built" ] && logged env AGENTFS_SHIM_PREBUILT="$universal" \
        cargo check --workspace --target "$target"; then
        ok "cargo check --workspace --target $target"
    else
        fail "cargo check --workspace --target $target"
    fi
    if [ -n "$built" ] && logged env AGENTFS_SHIM_PREBUILT="$universal" \
        cargo clippy --workspace --target "$target" -- -D warnings; then
        ok "cargo clippy --workspace --target $target -- -D warnings"
    else
        fail "cargo clippy --workspace --target $target -- -D warnings"
    fi
done

finish
