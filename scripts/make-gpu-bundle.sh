#!/usr/bin/env bash
# Build everything scripts/gpu-check.sh needs on a GPU machine that has no network
# and maybe no Vulkan loader, and pack it into one folder small enough to travel.
#
#   scripts/make-gpu-bundle.sh [BUNDLE_DIR]      (default: target/gpu-bundle)
#
# Run it on x86-64 Linux with cargo (and the crates already fetched). It
#   - builds `cargo build --release` (the ketasim binary) and
#     `cargo test --release --no-run` (every test executable: lib and bin unit
#     tests, tests/*.rs),
#   - builds scripts/vk_pipeline_stats.c with gcc where the Vulkan headers are here
#     (libvulkan-dev), for the check's shader statistics,
#   - copies them, debug info stripped (symbols kept for backtraces), with the Vulkan
#     loader libvulkan.so.1 and the GL-vendor-neutral libraries NVIDIA's Vulkan driver
#     may need (libGLdispatch.so.0, libGLX.so.0, libEGL.so.1, ...), taken from this
#     machine (symlinks followed),
#   - packs them into BUNDLE_DIR/payload.tar.xz (the test binaries share most of
#     their code, so one xz stream shrinks them several times over),
#   - writes BUNDLE_DIR/MANIFEST.txt (git commit, rustc, build paths, file list with
#     sizes, payload checksum),
#   - checks that the bundle plus the working tree fits the device tool's 64 MiB
#     limit on what travels, and fails loudly if not.
#
# Environment: GPU_BUNDLE_LIMIT_BYTES (default 67108864, 64 MiB) to change the limit;
# GPU_BUNDLE_XZ_LEVEL (default 9).
# See docs/gpu-check.md.
set -euo pipefail

die() { echo "make-gpu-bundle: ERROR: $*" >&2; exit 1; }
note() { echo "make-gpu-bundle: $*" >&2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUNDLE=${1:-$REPO/target/gpu-bundle}
case $BUNDLE in /*) ;; *) BUNDLE=$PWD/$BUNDLE ;; esac
LIMIT=${GPU_BUNDLE_LIMIT_BYTES:-67108864}
XZ_LEVEL=${GPU_BUNDLE_XZ_LEVEL:-9}

[ "$(uname -s)" = Linux ] || die "build on Linux (the GPU machine runs x86-64 Linux)"
[ "$(uname -m)" = x86_64 ] || die "this is $(uname -m); the GPU machine is x86-64, so build the bundle on x86-64 Linux"
for t in cargo rustc tar xz; do
  command -v "$t" >/dev/null || die "'$t' not found"
done
if command -v jq >/dev/null; then JSON=jq
elif command -v python3 >/dev/null; then JSON=python3
else die "need jq or python3 to read cargo's JSON output"; fi
HAVE_STRIP=1
command -v strip >/dev/null || { HAVE_STRIP=0; note "WARNING: no 'strip': binaries keep their debug info and the bundle will likely be too big"; }

# The bundle folder is ours to replace only if it is empty or one of ours.
if [ -e "$BUNDLE" ]; then
  [ -d "$BUNDLE" ] || die "$BUNDLE exists and is not a folder"
  if [ -n "$(ls -A "$BUNDLE")" ] && [ ! -f "$BUNDLE/MANIFEST.txt" ]; then
    die "$BUNDLE is not empty and holds no MANIFEST.txt; refusing to overwrite it"
  fi
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gpu-bundle.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
STAGE=$TMP/payload
mkdir -p "$STAGE/bin" "$STAGE/tests" "$STAGE/lib"

cd "$REPO"
T0=$(date +%s)

# 1. Build. Both commands print cargo's progress on stderr; the JSON goes to files.
note "cargo build --release"
cargo build --release --message-format=json >"$TMP/build.json" || die "cargo build --release failed"
note "cargo test --release --no-run"
cargo test --release --no-run --message-format=json >"$TMP/test.json" || die "cargo test --release --no-run failed"

# Rows: kind <TAB> target name <TAB> executable, for the bin (build) and every test executable.
artifacts() { # $1: json file, $2: 1 for test executables, 0 for binaries
  if [ "$JSON" = jq ]; then
    jq -r --argjson t "$2" 'select(.reason=="compiler-artifact" and .executable != null and .profile.test == ($t==1))
      | [.target.kind[0], .target.name, .executable] | @tsv' "$1"
  else
    python3 - "$1" "$2" <<'EOF'
import json, sys
want = sys.argv[2] == "1"
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"] == want:
        print("\t".join([m["target"]["kind"][0], m["target"]["name"], m["executable"]]))
EOF
  fi
}

artifacts "$TMP/build.json" 0 | awk -F'\t' '$1=="bin" && $2=="ketasim"' >"$TMP/bin.tsv"
[ "$(wc -l <"$TMP/bin.tsv")" -eq 1 ] || die "could not find the ketasim binary in cargo's output"
BUILD_BIN=$(cut -f3 "$TMP/bin.tsv")
artifacts "$TMP/test.json" 1 | sort -u >"$TMP/tests-raw.tsv"
[ -s "$TMP/tests-raw.tsv" ] || die "cargo test --no-run listed no test executables"

# 2. Copy (and strip) the binaries. Test executables are named KIND-NAME (lib-ketasim,
# bin-ketasim, test-gpu_vs_cpu, ...).
copy_bin() { # src dst
  if [ "$HAVE_STRIP" = 1 ]; then strip --strip-debug -o "$2" "$1"; else cp "$1" "$2"; fi
  chmod 755 "$2"
}
copy_bin "$BUILD_BIN" "$STAGE/bin/ketasim"
# The driver statistics tool of scripts/shader-stats.sh (registers, spills, occupancy
# per kernel), where this machine can build it: gcc and the Vulkan headers.
if command -v gcc >/dev/null && [ -f /usr/include/vulkan/vulkan.h ]; then
  gcc -O2 -Wall -Wextra -o "$STAGE/bin/vk_pipeline_stats" "$REPO/scripts/vk_pipeline_stats.c" -lvulkan ||
    die "cannot build scripts/vk_pipeline_stats.c"
else
  note "note: no gcc or no Vulkan headers (apt-get install -y libvulkan-dev): the bundle has no vk_pipeline_stats, so gpu-check.sh skips the shader statistics"
fi
: >"$STAGE/tests.tsv"
while IFS=$'\t' read -r kind name exe; do
  dst="$kind-$name"
  [ ! -e "$STAGE/tests/$dst" ] || die "two test executables map to tests/$dst"
  copy_bin "$exe" "$STAGE/tests/$dst"
  printf '%s\t%s\t%s\n' "$kind" "$name" "tests/$dst" >>"$STAGE/tests.tsv"
done <"$TMP/tests-raw.tsv"
note "$(wc -l <"$STAGE/tests.tsv") test executables"

# 3. The Vulkan loader and the glvnd libraries (the set the device README carries as
# .gl debs: libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0 libgles2).
# libvulkan.so.1 is required; the others are taken when this machine has them.
# awk reads ldconfig's whole listing: leaving at the first match would end ldconfig
# with SIGPIPE once its listing outgrows the pipe's buffer, which pipefail and set -e
# turn into the script's exit (status 141, with no message).
lib_path() { ldconfig -p 2>/dev/null | awk -v n="$1" '!found && $1==n && /x86-64/ {print $NF; found=1}'; }
for lib in libvulkan.so.1 libGLdispatch.so.0 libGLX.so.0 libEGL.so.1 libGL.so.1 libOpenGL.so.0 libGLESv2.so.2; do
  src=$(lib_path "$lib")
  if [ -z "$src" ]; then
    for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
      [ -e "$d/$lib" ] && { src=$d/$lib; break; }
    done
  fi
  if [ -n "$src" ]; then
    cp -L "$src" "$STAGE/lib/$lib"
  elif [ "$lib" = libvulkan.so.1 ]; then
    die "no libvulkan.so.1 on this machine: apt-get install -y --no-install-recommends libvulkan1 (or mesa-vulkan-drivers libvulkan1), then rerun"
  else
    note "note: $lib not on this machine; not bundled"
  fi
done

# 4. Manifest and payload.
GIT_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
GIT_DESCRIBE=$(git describe --always --dirty 2>/dev/null || echo unknown)
GIT_DIFF_SHA=$( (git diff HEAD 2>/dev/null || true) | sha256sum | cut -c1-16)
{
  echo "format=1"
  echo "created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "git_commit=$GIT_COMMIT"
  echo "git_describe=$GIT_DESCRIBE"
  echo "git_diff_sha256_16=$GIT_DIFF_SHA"
  echo "rustc=$(rustc -V)"
  echo "cargo=$(cargo -V)"
  echo "host=$(uname -srm)"
  echo "glibc=$(ldd --version 2>/dev/null | head -1 | awk '{print $NF}')"
  echo "build_manifest_dir=$REPO"
  echo "build_bin=$BUILD_BIN"
  echo "stripped=$HAVE_STRIP"
} >"$TMP/header"
cp "$TMP/header" "$STAGE/MANIFEST.txt"

note "packing (xz -$XZ_LEVEL)"
tar -C "$STAGE" -cf - . | xz "-$XZ_LEVEL" -T0 -c >"$TMP/payload.tar.xz"
PAYLOAD_BYTES=$(stat -c %s "$TMP/payload.tar.xz")
PAYLOAD_SHA=$(sha256sum "$TMP/payload.tar.xz" | cut -d' ' -f1)

mkdir -p "$BUNDLE"
rm -f "$BUNDLE/payload.tar.xz" "$BUNDLE/MANIFEST.txt"
mv "$TMP/payload.tar.xz" "$BUNDLE/payload.tar.xz"
{
  cat "$TMP/header"
  echo "payload=payload.tar.xz"
  echo "payload_bytes=$PAYLOAD_BYTES"
  echo "payload_sha256=$PAYLOAD_SHA"
  echo
  echo "# files in the payload (bytes, unpacked)"
  (cd "$STAGE" && find . -type f ! -name MANIFEST.txt -printf '%s\t%P\n' | sort -k2)
  echo
  echo "# test executables: kind, target, file"
  cat "$STAGE/tests.tsv"
} >"$BUNDLE/MANIFEST.txt"

# 5. Size check: what travels to the device is the working tree (tracked and
# untracked-not-ignored files) plus carried paths (this bundle, and .gl if you carry it).
BUNDLE_BYTES=$(du -sb "$BUNDLE" | cut -f1)
TREE_BYTES=$(git ls-files -co --exclude-standard -z 2>/dev/null | (cd "$REPO" && xargs -0r du -cb -- 2>/dev/null) | awk '$2=="total"{s+=$1} END{print s+0}')
GL_BYTES=0
[ -d "$REPO/.gl" ] && GL_BYTES=$(du -sb "$REPO/.gl" | cut -f1)
TOTAL=$((BUNDLE_BYTES + TREE_BYTES))
UNPACKED=$(du -sb "$STAGE" | cut -f1)
mib() { awk -v b="$1" 'BEGIN{printf "%.1f MiB", b/1048576}'; }
note "bundle $BUNDLE: $(mib "$BUNDLE_BYTES") ($(mib "$UNPACKED") unpacked); working tree $(mib "$TREE_BYTES"); together $(mib "$TOTAL") of $(mib "$LIMIT")"
if [ "$GL_BYTES" -gt 0 ]; then
  note "(.gl is $(mib "$GL_BYTES"); the bundle's loader makes carrying .gl unnecessary; with it: $(mib $((TOTAL + GL_BYTES))))"
fi
if [ "$TOTAL" -gt "$LIMIT" ]; then
  echo "make-gpu-bundle: ERROR: bundle + working tree = $(mib "$TOTAL"), over the $(mib "$LIMIT") the device tool carries." >&2
  echo "make-gpu-bundle: ERROR: the device call would be refused. Shrink the tree or the bundle (see docs/gpu-check.md)." >&2
  exit 1
fi
note "done in $(( $(date +%s) - T0 )) s. Device command: bash scripts/gpu-check.sh \"\$OUT\" ${BUNDLE#"$REPO"/}  (carry: ${BUNDLE#"$REPO"/})"
