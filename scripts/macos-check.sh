#!/usr/bin/env bash
# Checks the macOS build from Linux, since no Mac is at hand: builds the
# release shim for arm64 and x86_64 and as a universal dylib with
# cargo-zigbuild, inspects what was built with llvm-objdump, checks the arm64
# slice's code signature page by page (python3), and type-checks the whole
# workspace for both darwin targets.
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
hooked=(_accept '_accept$NOCANCEL' _bind _close '_close$NOCANCEL' _connect '_connect$NOCANCEL' _execve
    _getaddrinfo _gethostbyname _gethostbyname2 _getpeername _getsockname
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

# The code signature of one slice, checked as the kernel checks it when
# dyld maps the library: every Apple-silicon Mac refuses an arm64 library
# without a valid one (the linker signs ad hoc; x86_64 needs none). Reads the
# LC_CODE_SIGNATURE's SuperBlob and its CodeDirectory, and hashes each page
# of the slice up to the signature against the CodeDirectory's hash of it.
#   signature check DYLIB ARCH               prints what it checked, or why not and exits 1
#   signature corrupt DYLIB ARCH WHAT OUT    a copy with one byte flipped: WHAT is code or directory
signature() {
    python3 - "$@" <<'PY'
import hashlib, struct, sys

CPU = {"arm64": 0x0100000C, "x86_64": 0x01000007}
HASHES = {1: ("sha1", 20), 2: ("sha256", 32), 3: ("sha256", 20), 4: ("sha384", 48)}


def image(data, arch):
    """The bytes of arch's slice of a thin or universal file, and where they start."""
    magic = struct.unpack_from(">I", data)[0]
    if magic not in (0xCAFEBABE, 0xCAFEBABF):
        return 0, data
    wide = magic == 0xCAFEBABF
    for i in range(struct.unpack_from(">I", data, 4)[0]):
        fields = ">iiQQ" if wide else ">iiII"
        cpu, _, off, size = struct.unpack_from(fields, data, 8 + (32 if wide else 20) * i)
        if cpu & 0xFFFFFFFF == CPU[arch]:
            return off, data[off : off + size]
    raise ValueError(f"no {arch} slice")


def signature(img, arch):
    """(signature offset, CodeDirectory offset, its fields) of a thin image."""
    magic, cpu, _, _, ncmds, _ = struct.unpack_from("<6I", img)
    if magic != 0xFEEDFACF or cpu != CPU[arch]:
        raise ValueError("no 64-bit Mach-O header")
    at, sig = 32, None
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", img, at)
        if cmd == 0x1D:  # LC_CODE_SIGNATURE
            sig = struct.unpack_from("<II", img, at + 8)
        at += size
    if sig is None:
        raise ValueError("no LC_CODE_SIGNATURE")
    dataoff, datasize = sig
    if dataoff + datasize > len(img):
        raise ValueError("LC_CODE_SIGNATURE points past the end of the slice")
    magic, length, count = struct.unpack_from(">3I", img, dataoff)
    if magic != 0xFADE0CC0 or length > datasize:
        raise ValueError(f"no embedded-signature SuperBlob (magic {magic:#x})")
    index = [struct.unpack_from(">II", img, dataoff + 12 + 8 * i) for i in range(count)]
    cds = [dataoff + off for slot, off in index if slot == 0]
    if not cds:
        raise ValueError("the SuperBlob has no CodeDirectory")
    return dataoff, cds[0], struct.unpack_from(">9I4B", img, cds[0])


def check(img, arch):
    dataoff, cd, fields = signature(img, arch)
    magic, length, _, flags, hash_at, _, _, slots, limit, hsize, htype, _, page_log = fields
    if magic != 0xFADE0C02:
        raise ValueError(f"CodeDirectory magic is {magic:#x}")
    if HASHES.get(htype, (None, 0))[1] != hsize:
        raise ValueError(f"hash type {htype} with {hsize}-byte hashes")
    if not 12 <= page_log <= 16:
        raise ValueError(f"page size 2^{page_log}")
    if limit != dataoff:
        raise ValueError(f"code limit {limit:#x} is not the signature's offset {dataoff:#x}")
    page, algo = 1 << page_log, HASHES[htype][0]
    if slots != -(-limit // page) or hash_at + slots * hsize > length:
        raise ValueError(f"{slots} code slots for {limit} bytes in {page}-byte pages")
    for i in range(slots):
        want = img[cd + hash_at + i * hsize : cd + hash_at + (i + 1) * hsize]
        got = hashlib.new(algo, img[i * page : min((i + 1) * page, limit)]).digest()
        if got[:hsize] != want:
            raise ValueError(f"page {i} (from {i * page:#x}) does not match its hash")
    return f"flags {flags:#x}, {slots} {algo} hashes of {page}-byte pages up to {limit:#x}"


def corrupt(data, arch, what):
    """data with one byte flipped: in the signed code, or in the CodeDirectory's magic."""
    base, img = image(data, arch)
    dataoff, cd, _ = signature(img, arch)
    data[base + (dataoff // 2 if what == "code" else cd + 3)] ^= 0xFF
    return data


try:
    mode, path, arch = sys.argv[1:4]
    data = bytearray(open(path, "rb").read())
    if mode == "check":
        print(check(image(data, arch)[1], arch))
    else:
        open(sys.argv[5], "wb").write(corrupt(data, arch, sys.argv[4]))
except (ValueError, struct.error, IndexError) as e:
    sys.exit(f"{e}" if not isinstance(e, struct.error) else f"truncated ({e})")
PY
}

# The arm64 slice carries a valid code signature; then the check is shown to
# fail on copies with one byte flipped in the signed code or the CodeDirectory.
verify_signature() {
    local dylib=$1 arch=arm64 out what bent=$target_dir/corrupted-signature.dylib
    if ! out=$(signature check "$dylib" "$arch" 2>&1); then
        fail "$arch: no valid code signature (dyld on Apple silicon refuses the shim): $out"
        return
    fi
    ok "$arch: code signature valid: $out"
    for what in code directory; do
        if ! signature corrupt "$dylib" "$arch" "$what" "$bent" >>"$log" 2>&1; then
            fail "$arch: could not write a copy with a corrupted $what byte"
        elif out=$(signature check "$bent" "$arch" 2>&1); then
            fail "$arch: the signature check passes a copy with a flipped $what byte: $out"
        else
            ok "$arch: the signature check refuses a copy with a flipped $what byte ($out)"
        fi
    done
    rm -f "$bent"
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
    verify_signature "$dylib"
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

# A C compiler for the darwin targets, for the build scripts that compile C
# (signal-hook's siginfo reader; ring, the TLS crypto): zig's clang, which brings the macOS headers.
# cc-rs passes Apple's `-arch X` and clang's `--target=`, which zig spells
# its own way: dropped, and zig's target given instead.
zig_cc() {
    local target=$1 wrapper=$target_dir/zig-cc-$1
    mkdir -p "$target_dir"
    cat >"$wrapper" <<WRAPPER
#!/usr/bin/env bash
args=()
while [ \$# -gt 0 ]; do
    if [ "\$1" = -arch ]; then shift 2; continue; fi
    case "\$1" in --target=*) shift; continue ;; esac
    args+=("\$1"); shift
done
if command -v zig >/dev/null; then exec zig cc -target ${target%%-*}-macos "\${args[@]}"; fi
exec python3 -m ziglang cc -target ${target%%-*}-macos "\${args[@]}"
WRAPPER
    chmod +x "$wrapper"
    echo "$wrapper"
}

# The agentfs binary embeds the universal shim; cargo check links nothing, so
# no macOS SDK is needed (notify's FSEvents backend binds CoreServices
# through objc2-core-services, plain Rust).
for target in "${targets[@]}"; do
    cc_var=CC_${target//-/_}
    export "$cc_var=$(zig_cc "$target")"
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
