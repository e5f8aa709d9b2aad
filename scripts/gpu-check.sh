#!/usr/bin/env bash
# One prepared GPU check, for a machine with a real GPU and nothing else: no network,
# maybe no Rust toolchain, maybe no Vulkan loader. Runs every test executable with
# KETASIM_REQUIRE_GPU=1, the bench suite, a default-scenario run and a dose sweep
# (one and four simulations at a time) on the GPU, and
# writes the results under OUT_DIR, inside a wall-clock budget (default 450 s).
#
#   scripts/gpu-check.sh OUT_DIR [BUNDLE_DIR]        (BUNDLE_DIR default: target/gpu-bundle)
#
# The binaries come from BUNDLE_DIR, made beforehand by scripts/make-gpu-bundle.sh on
# x86-64 Linux. Without a bundle it builds from source with `cargo --offline`, if cargo
# and the crates are there.
#
# OUT_DIR receives at most six files (the device tool brings back eight):
#   summary.txt      the final table (tests, shader statistics, bench, run) and the verdict
#   environment.txt  nvidia-smi, `ketasim devices`, which libvulkan was loaded, bundle manifest
#   bench.json       bench results (suite JSON, or the per-size runs merged)
#   bench.md         the suite's Markdown table (when `bench --suite` exists)
#   failures.txt     the tail of each failing log (only when something failed)
#   logs.tar.gz      every log and output: one per test executable, bench, run
#
# Exit status: 0 all passed; 1 a test failed, timed out or was not reached in the
# budget, the bench, run or sweep failed (not a budget timeout), the sweep's rows differed
# between one and four simulations at a time, or no hardware GPU adapter was
# found; 2 nothing to run (no bundle, no offline build).
#
# Environment:
#   GPU_CHECK_QUICK=1            smoke sizes: bench --suite quick (or tiny sizes), short run
#   GPU_CHECK_BUDGET_S=450       whole-script wall-clock budget, seconds
#   GPU_CHECK_TEST_TIMEOUT_S=150 cap per test executable
#   GPU_CHECK_ONLY=REGEX         run only the test executables whose name (test-gpu_vs_cpu,
#                                lib-ketasim, ...) matches (awk regex)
#   GPU_CHECK_TEST_ARGS=         extra arguments for every test executable (e.g. --test-threads=4)
#   GPU_CHECK_BENCH_BACKEND=gpu  --backend for `bench --suite` (cpu,gpu for both)
#   GPU_CHECK_RUN_ARGS=          scenario arguments for the `ketasim run` step (default: none,
#                                the default scenario; quick: coba --duration-ms 100)
#   GPU_CHECK_SCALE_NEURONS=10000000  size of the extra large-network bench ("" to skip)
#   GPU_CHECK_VARIANTS=           ';'-separated settings ("VAR=value VAR2=value"), each
#                                running the suite again after the main one
#   GPU_CHECK_LOADER=auto        auto: bundled loader libraries only where the system lacks
#                                them; bundle: always the bundled ones; system: never
#   GPU_CHECK_ALLOW_SOFTWARE=1   accept a software adapter (llvmpipe) as the GPU
#   GPU_CHECK_KEEP_TREE=1        keep OUT_DIR/logs/ unpacked beside logs.tar.gz
# See docs/gpu-check.md.
set -uo pipefail

START=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage >&2; exit 2; fi
case $1 in -h|--help) usage; exit 0 ;; esac

abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
OUT=$(abspath "$1")
if [ $# -ge 2 ]; then
  BUNDLE=$(abspath "$2")
  # A relative bundle path not found from here is tried from the repository root.
  [ -e "$BUNDLE" ] || case $2 in /*) ;; *) [ -e "$REPO/$2" ] && BUNDLE=$REPO/$2 ;; esac
else
  BUNDLE=$REPO/target/gpu-bundle
fi

QUICK=${GPU_CHECK_QUICK:-0}
BUDGET=${GPU_CHECK_BUDGET_S:-450}
TEST_CAP=${GPU_CHECK_TEST_TIMEOUT_S:-150}
read -r -a TEST_ARGS <<<"${GPU_CHECK_TEST_ARGS:-}"
BENCH_BACKEND=${GPU_CHECK_BENCH_BACKEND:-gpu}
SCALE_N=${GPU_CHECK_SCALE_NEURONS-10000000}
LOADER=${GPU_CHECK_LOADER:-auto}
ALLOW_SW=${GPU_CHECK_ALLOW_SOFTWARE:-0}
# Time kept back for the later phases, so the tests can't eat all of it.
RUN_RESERVE=60
# Part of RUN_RESERVE kept from the run for the sweep after it.
SWEEP_RESERVE=25
PACK_RESERVE=15
BENCH_RESERVE=150
SCALE_RESERVE=90
if [ "$QUICK" = 1 ]; then BENCH_RESERVE=90; SCALE_RESERVE=40; fi
if [ "$BUDGET" -lt 450 ]; then # a smaller budget shrinks every reserve alike
  for v in RUN_RESERVE SWEEP_RESERVE PACK_RESERVE BENCH_RESERVE SCALE_RESERVE; do
    printf -v "$v" '%d' $(( ${!v} * BUDGET / 450 ))
  done
fi
DEADLINE=$((START + BUDGET))

mkdir -p "$OUT" || { echo "gpu-check: cannot create $OUT" >&2; exit 2; }
rm -rf "$OUT/logs"
rm -f "$OUT/summary.txt" "$OUT/environment.txt" "$OUT/bench.json" "$OUT/bench.md" "$OUT/failures.txt" "$OUT/logs.tar.gz"
LOGS=$OUT/logs
mkdir -p "$LOGS/tests" "$LOGS/bench" "$LOGS/run"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
ENV_TXT=$LOGS/environment.txt
: >"$ENV_TXT"

say() { printf '[gpu-check %4ds] %s\n' "$(( $(date +%s) - START ))" "$*"; }
now() { date +%s; }
# Seconds left before deadline $1, capped at $2 (if given), at least 0.
left() {
  local l=$(( $1 - $(now) ))
  [ $# -ge 2 ] && [ "$2" -lt "$l" ] && l=$2
  [ "$l" -lt 0 ] && l=0
  echo "$l"
}

# Paths made to stand in for build-time paths; removed on exit.
CREATED_FILES=()
CREATED_DIRS=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local i
  for ((i=${#CREATED_FILES[@]}-1; i>=0; i--)); do rm -f -- "${CREATED_FILES[i]}"; done
  for ((i=${#CREATED_DIRS[@]}-1; i>=0; i--)); do rmdir -- "${CREATED_DIRS[i]}" 2>/dev/null; done
  rm -rf -- "$WORK"
}
trap cleanup EXIT
# Stopped from outside: keep what was written, packed, so OUT_DIR stays a few files.
trap 'say "interrupted; packing the logs written so far"; tar -C "$OUT" -czf "$OUT/logs.tar.gz" logs 2>/dev/null && rm -rf "$LOGS"; exit 130' INT TERM
mkdir_tracked() { # mkdir -p, remembering which folders it made
  local d=$1 todo=()
  while [ ! -e "$d" ]; do todo=("$d" "${todo[@]}"); d=$(dirname "$d"); done
  for d in "${todo[@]}"; do mkdir "$d" || return 1; CREATED_DIRS+=("$d"); done
}

json_tool() { if command -v jq >/dev/null; then echo jq; elif command -v python3 >/dev/null; then echo python3; else echo none; fi; }
JSON=$(json_tool)

VERDICT_NOTES=()
FAILED=0
fail_note() { VERDICT_NOTES+=("$1"); FAILED=1; }

say "repo $REPO, out $OUT, budget ${BUDGET}s, quick=$QUICK"

# ---------------------------------------------------------------- 1. binaries
BIN=
TESTS_TSV=$WORK/tests.tsv
MANIFEST=
if [ -f "$BUNDLE/payload.tar.xz" ] && [ -f "$BUNDLE/MANIFEST.txt" ]; then
  MANIFEST=$BUNDLE/MANIFEST.txt
  mget() { sed -n "s/^$1=//p" "$MANIFEST" | head -1; }
  say "bundle $BUNDLE ($(mget git_describe), built $(mget created))"
  want=$(mget payload_sha256)
  if command -v sha256sum >/dev/null && [ -n "$want" ]; then
    got=$(sha256sum "$BUNDLE/payload.tar.xz" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { say "ERROR: payload.tar.xz checksum differs from MANIFEST.txt (corrupt or partial copy)"; exit 2; }
  fi
  mkdir -p "$WORK/b"
  if command -v xz >/dev/null; then
    xz -dc "$BUNDLE/payload.tar.xz" | tar -C "$WORK/b" -xf - || { say "ERROR: cannot unpack the bundle"; exit 2; }
  elif command -v python3 >/dev/null; then
    python3 -c 'import sys,tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$BUNDLE/payload.tar.xz" "$WORK/b" || { say "ERROR: cannot unpack the bundle"; exit 2; }
  else
    say "ERROR: neither xz nor python3 to unpack the bundle"; exit 2
  fi
  BIN=$WORK/b/bin/ketasim
  awk -F'\t' -v d="$WORK/b" '{print $1 "-" $2 "\t" d "/" $3}' "$WORK/b/tests.tsv" >"$TESTS_TSV"
  BUNDLED_LIB=$WORK/b/lib

  # The test executables hold two absolute paths from the build machine:
  # CARGO_MANIFEST_DIR (tests reading docs/) and CARGO_BIN_EXE_ketasim (CLI tests).
  # Where they don't exist here, stand-ins point at this checkout and the bundled binary.
  BUILD_DIR=$(mget build_manifest_dir)
  BUILD_BIN=$(mget build_bin)
  if [ -n "$BUILD_DIR" ] && [ "$BUILD_DIR" != "$REPO" ]; then
    if [ ! -e "$BUILD_DIR" ] && [ ! -L "$BUILD_DIR" ]; then
      if mkdir_tracked "$(dirname "$BUILD_DIR")" 2>/dev/null && ln -s "$REPO" "$BUILD_DIR" 2>/dev/null; then
        CREATED_FILES+=("$BUILD_DIR")
        say "build path $BUILD_DIR -> $REPO (link, removed at exit)"
      else
        say "WARNING: cannot link build path $BUILD_DIR to $REPO; tests reading the source tree through it will fail"
      fi
    else
      say "note: build path $BUILD_DIR exists here and is not this checkout; tests read files there"
    fi
  fi
  if [ -n "$BUILD_BIN" ] && [ ! -e "$BUILD_BIN" ]; then
    if mkdir_tracked "$(dirname "$BUILD_BIN")" 2>/dev/null && cp "$BIN" "$BUILD_BIN" 2>/dev/null; then
      CREATED_FILES+=("$BUILD_BIN")
      say "placed the bundled ketasim at its build path $BUILD_BIN (removed at exit)"
    else
      say "WARNING: cannot place ketasim at $BUILD_BIN; the CLI tests will fail"
    fi
  fi
else
  say "no bundle at $BUNDLE (payload.tar.xz + MANIFEST.txt)"
  BUNDLED_LIB=
  if command -v cargo >/dev/null && [ -f "$REPO/Cargo.toml" ] && [ "$JSON" != none ]; then
    say "building from source, offline (cargo build/test --release --offline)"
    bt=$(left "$((DEADLINE - BENCH_RESERVE - RUN_RESERVE - PACK_RESERVE - 60))")
    if (cd "$REPO" && timeout -k 10 "$bt" cargo build --release --offline) >"$LOGS/build.log" 2>&1 &&
       (cd "$REPO" && timeout -k 10 "$(left "$((DEADLINE - BENCH_RESERVE - RUN_RESERVE - PACK_RESERVE - 30))")" \
          cargo test --release --no-run --offline --message-format=json) >"$WORK/test.json" 2>>"$LOGS/build.log"; then
      BIN=$REPO/target/release/ketasim
      if [ "$JSON" = jq ]; then
        jq -r 'select(.reason=="compiler-artifact" and .executable != null and .profile.test)
          | [.target.kind[0] + "-" + .target.name, .executable] | @tsv' "$WORK/test.json" | sort -u >"$TESTS_TSV"
      else
        python3 - "$WORK/test.json" >"$TESTS_TSV" <<'EOF'
import json, sys
rows = set()
for line in open(sys.argv[1]):
    if line.startswith("{"):
        m = json.loads(line)
        if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
            rows.add(m["target"]["kind"][0] + "-" + m["target"]["name"] + "\t" + m["executable"])
print("\n".join(sorted(rows)))
EOF
      fi
    else
      say "ERROR: offline build failed (tail of $LOGS/build.log below). The crates must be in ~/.cargo or vendored (cargo vendor)."
      tail -20 "$LOGS/build.log"
    fi
  else
    say "ERROR: and no offline build is possible here (cargo, Cargo.toml and jq or python3 needed)."
  fi
  if [ -z "$BIN" ]; then
    cat <<EOF | tee "$OUT/summary.txt"
gpu-check: nothing to run.
Make the bundle beforehand on x86-64 Linux with network and cargo:
    scripts/make-gpu-bundle.sh target/gpu-bundle
then bring target/gpu-bundle along (device tool: carry ["target/gpu-bundle"]) and run
    bash scripts/gpu-check.sh OUT_DIR target/gpu-bundle
See docs/gpu-check.md.
EOF
    rm -rf "$LOGS"
    exit 2
  fi
fi
[ -x "$BIN" ] || { say "ERROR: $BIN is not executable"; exit 2; }
if [ -n "${GPU_CHECK_ONLY:-}" ]; then
  awk -F'\t' -v re="$GPU_CHECK_ONLY" '$1 ~ re' "$TESTS_TSV" >"$TESTS_TSV.only"
  mv "$TESTS_TSV.only" "$TESTS_TSV"
  VERDICT_NOTES+=("only the test executables matching GPU_CHECK_ONLY=$GPU_CHECK_ONLY were run")
fi

# ---------------------------------------------------------------- 2. Vulkan loader
sys_lib() { # path of a library the dynamic linker's cache knows, if the file is there
  # (awk reads the whole listing: leaving early can end ldconfig with SIGPIPE)
  local p
  p=$(ldconfig -p 2>/dev/null | awk -v n="$1" '!found && $1==n && /x86-64/ {print $NF; found=1}')
  [ -n "$p" ] && [ -s "$p" ] && echo "$p"
}
mkdir -p "$WORK/lib"
# Loader libraries from a .gl folder of debs (the device README's recipe) when there
# is no bundle: unpacked into the work folder, not onto /.
if [ -z "$BUNDLED_LIB" ] && [ -z "$(sys_lib libvulkan.so.1)" ] && compgen -G "$REPO/.gl/*.deb" >/dev/null && command -v dpkg >/dev/null; then
  for f in "$REPO"/.gl/*.deb; do dpkg -x "$f" "$WORK/gl"; done
  BUNDLED_LIB=$WORK/gl/usr/lib/x86_64-linux-gnu
  say "unpacked the loader debs of .gl/ into the work folder"
fi
USED_LIBS=()
if [ -n "$BUNDLED_LIB" ] && [ -d "$BUNDLED_LIB" ] && [ "$LOADER" != system ]; then
  for f in "$BUNDLED_LIB"/lib*.so.*; do
    [ -e "$f" ] || continue
    n=$(basename "$f")
    if [ "$LOADER" = bundle ] || [ -z "$(sys_lib "$n")" ]; then
      ln -sf "$f" "$WORK/lib/$n"
      USED_LIBS+=("$n")
    fi
  done
fi
LD_EXTRA=$WORK/lib
# NVIDIA's driver libraries (libGLX_nvidia.so.0, named by its Vulkan ICD file) where
# containers mount them, in case the linker's cache lacks them.
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -d "$d" ] && LD_EXTRA=$LD_EXTRA:$d
done
export LD_LIBRARY_PATH=$LD_EXTRA${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -f "$nv" ] && ! compgen -G "/etc/vulkan/icd.d/nvidia*.json" >/dev/null &&
     ! compgen -G "/usr/share/vulkan/icd.d/nvidia*.json" >/dev/null &&
     ! compgen -G "/usr/local/share/vulkan/icd.d/nvidia*.json" >/dev/null; then
    export VK_DRIVER_FILES=$nv VK_ICD_FILENAMES=$nv
    say "Vulkan driver file: $nv"
  fi
fi
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] &&
   ! compgen -G "/usr/share/glvnd/egl_vendor.d/*nvidia*.json" >/dev/null; then
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
if [ ${#USED_LIBS[@]} -gt 0 ]; then say "bundled libraries in use: ${USED_LIBS[*]}"; else say "bundled libraries in use: none (the system's)"; fi

# ---------------------------------------------------------------- 3. environment
run_to() { # file, timeout, command...: append a header, the command's output and its status
  local f=$1 t=$2; shift 2
  { echo "\$ $*"; timeout -k 5 "$t" "$@" 2>&1; echo "[exit $?]"; echo; } >>"$f"
}
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -a)"
  echo "cpus: $(nproc 2>/dev/null)"
  echo "repo: $REPO ($(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo 'no git'))"
  if [ -n "$MANIFEST" ]; then echo "bundle: $BUNDLE"; else echo "bundle: none (built from source)"; fi
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"
  echo "bundled libraries in use: ${USED_LIBS[*]:-none}"
  echo "system libvulkan.so.1: $(sys_lib libvulkan.so.1 || true)"
  echo "Vulkan ICD files: $(find /etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d -name '*.json' 2>/dev/null | tr '\n' ' ')"
  echo
} >>"$ENV_TXT"
if command -v nvidia-smi >/dev/null; then run_to "$ENV_TXT" 30 nvidia-smi; else echo "nvidia-smi: not found" >>"$ENV_TXT"; fi
run_to "$ENV_TXT" 20 "$BIN" --version
run_to "$ENV_TXT" 60 "$BIN" devices
timeout -k 5 60 "$BIN" devices --json >"$LOGS/devices.json" 2>"$LOGS/devices.err"
# Which libvulkan the binary actually loads (glibc's loader trace).
{ echo "\$ LD_DEBUG=libs ketasim devices (libvulkan lines)"; LD_DEBUG=libs timeout -k 5 60 "$BIN" devices 2>&1 | grep -E 'calling init: .*(libvulkan|nvidia|GLdispatch)' | sed 's/^ *[0-9]*: *//' | sort -u; echo; } >>"$ENV_TXT"
[ -n "$MANIFEST" ] && { echo "--- bundle MANIFEST.txt (head)"; sed -n '1,/^$/p' "$MANIFEST"; } >>"$ENV_TXT"

ADAPTERS=
case $JSON in
  jq) ADAPTERS=$(jq -r '.[] | "\(.name) | \(.backend) | \(.device_type) | usable=\(.usable)"' "$LOGS/devices.json" 2>/dev/null) ;;
  python3) ADAPTERS=$(python3 -c 'import json,sys
for a in json.load(open(sys.argv[1])): print(f"{a[\"name\"]} | {a[\"backend\"]} | {a[\"device_type\"]} | usable={str(a[\"usable\"]).lower()}")' "$LOGS/devices.json" 2>/dev/null) ;;
  *) ADAPTERS=$(tr -d '\n' <"$LOGS/devices.json" | grep -o '"name": *"[^"]*"[^}]*"device_type": *"[^"]*"' | sed 's/"name": *"\([^"]*\)".*"device_type": *"\([^"]*\)"/\1 | ? | \2 | usable=?/') ;;
esac
HW=$(printf '%s\n' "$ADAPTERS" | grep -E '\| (DiscreteGpu|IntegratedGpu|VirtualGpu) \|' | grep -v 'usable=false' | head -1)
say "adapters:"; printf '%s\n' "${ADAPTERS:-  (none)}" | sed 's/^/    /'
if [ -z "$HW" ]; then
  if [ "$ALLOW_SW" = 1 ]; then
    say "no hardware GPU adapter; GPU_CHECK_ALLOW_SOFTWARE=1, so a software one (if any) stands in"
    VERDICT_NOTES+=("no hardware GPU adapter (software adapter accepted: GPU_CHECK_ALLOW_SOFTWARE=1)")
  else
    say "ERROR: no hardware GPU adapter found (see environment.txt); running on, results will not count"
    fail_note "no hardware GPU adapter found"
  fi
fi

# ---------------------------------------------------------------- 3b. shader statistics
# What the driver's compiler made of the kernels, per network (registers, spills,
# scratch, occupancy, as the driver reports them): scripts/shader-stats.sh with the
# bundle's vk_pipeline_stats (or one built here with gcc). A few seconds;
# logs/shader-stats/ and a section of summary.txt.
STATS_TOOL=
if [ -x "$WORK/b/bin/vk_pipeline_stats" ]; then STATS_TOOL=$WORK/b/bin/vk_pipeline_stats
elif command -v gcc >/dev/null && [ -f /usr/include/vulkan/vulkan.h ]; then STATS_TOOL=build
fi
SHADER_STATS_ST="not run (no vk_pipeline_stats in the bundle, no gcc with Vulkan headers here)"
if [ -n "$STATS_TOOL" ]; then
  [ "$STATS_TOOL" = build ] && STATS_TOOL=
  if KETASIM="$BIN" VK_PIPELINE_STATS="$STATS_TOOL" timeout -k 5 "$(left "$DEADLINE" 90)" \
     bash "$REPO/scripts/shader-stats.sh" "$LOGS/shader-stats" >"$LOGS/shader-stats.log" 2>&1; then
    SHADER_STATS_ST=ok
  else
    SHADER_STATS_ST="FAILED (logs/shader-stats.log)"
  fi
fi
say "shader statistics: $SHADER_STATS_ST"

# ---------------------------------------------------------------- 4. tests
TEST_DEADLINE=$((DEADLINE - BENCH_RESERVE - RUN_RESERVE - PACK_RESERVE))
TESTS_RES=$WORK/tests.res   # name status passed failed ignored seconds
: >"$TESTS_RES"
FAILURES=$LOGS/failures.txt
: >"$FAILURES"
NT=$(wc -l <"$TESTS_TSV")
say "tests: $NT executables, KETASIM_REQUIRE_GPU=1, ${TEST_CAP}s cap each, until +$((TEST_DEADLINE - START))s"
while IFS=$'\t' read -r name exe; do
  log=$LOGS/tests/$name.log
  if [ "$(left "$TEST_DEADLINE")" -lt 5 ]; then
    printf '%s\tNOT-RUN\t0\t0\t0\t0\n' "$name" >>"$TESTS_RES"
    echo "not run: the test budget was spent" | tee "$log" | sed "s/^/==== $name: /" >>"$FAILURES"
    say "  $name: NOT RUN (test budget spent)"
    continue
  fi
  t=$(left "$TEST_DEADLINE" "$TEST_CAP")
  t0=$(now)
  (cd "$REPO" && KETASIM_REQUIRE_GPU=1 CARGO_MANIFEST_DIR=$REPO RUST_BACKTRACE=1 \
     timeout -k 10 "$t" "$exe" "${TEST_ARGS[@]}") >"$log" 2>&1 </dev/null
  rc=$?
  dt=$(( $(now) - t0 ))
  read -r p f i <<<"$(awk '/^test result:/ { for (k = 1; k <= NF; k++) { if ($(k+1) ~ /^passed/) p += $k; if ($(k+1) ~ /^failed/) f += $k; if ($(k+1) ~ /^ignored/) i += $k } } END { print p+0, f+0, i+0 }' "$log")"
  case $rc in
    0) st=PASS ;;
    124|137) st=TIMEOUT ;;
    *) st=FAIL ;;
  esac
  if [ "$st" = PASS ] && grep -q 'SKIPPED GPU TEST' "$log"; then st=SKIPPED-GPU; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$st" "$p" "$f" "$i" "$dt" >>"$TESTS_RES"
  say "  $name: $st ($p passed, $f failed, $i ignored, ${dt}s)"
  if [ "$st" != PASS ]; then
    { echo "==== $name: $st (exit $rc, ${dt}s of ${t}s)"; grep -E '^test .* FAILED$' "$log"; echo "---- last 60 lines"; tail -60 "$log"; echo; } >>"$FAILURES"
  fi
done <"$TESTS_TSV"
TESTS_BAD=$(awk -F'\t' '$2 != "PASS"' "$TESTS_RES" | wc -l)
[ "$TESTS_BAD" -gt 0 ] && fail_note "$TESTS_BAD of $NT test executables did not pass"

# ---------------------------------------------------------------- 5. bench
BENCH_DEADLINE=$((DEADLINE - RUN_RESERVE - PACK_RESERVE))
BENCH_RES=$WORK/bench.res   # label status seconds
: >"$BENCH_RES"
bench_step() { # label, timeout, args...: run ketasim bench in logs/bench
  local label=$1 t=$2 rc st t0; shift 2
  if [ "$t" -lt 10 ]; then
    printf '%s\tNOT-RUN(budget)\t0\n' "$label" >>"$BENCH_RES"; say "  bench $label: not run, budget spent"; return
  fi
  say "  bench $label: ketasim bench $* (timeout ${t}s)"
  t0=$(now)
  (cd "$LOGS/bench" && env "${BENCH_ENV[@]}" timeout -k 10 "$t" "$BIN" bench "$@") >"$LOGS/bench/$label.log" 2>&1 </dev/null
  rc=$?
  case $rc in 0) st=OK ;; 124|137) st="TIMEOUT(budget)" ;; *) st=FAIL; fail_note "bench $label failed (exit $rc)" ;; esac
  printf '%s\t%s\t%s\n' "$label" "$st" "$(( $(now) - t0 ))" >>"$BENCH_RES"
  say "  bench $label: $st"
  [ "$st" = FAIL ] && { echo "==== bench $label: exit $rc"; tail -40 "$LOGS/bench/$label.log"; echo; } >>"$FAILURES"
}
BENCH_ENV=()   # VAR=value settings for the next bench_step (the variants below)
# GPU clocks, power and utilisation every 200 ms through the bench phase (an idle
# GPU runs at low clocks, and a suite row lasts well under a second): logs/bench/clocks.csv.
CLOCKS_PID=
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,utilization.gpu,temperature.gpu \
    --format=csv -lms 200 >"$LOGS/bench/clocks.csv" 2>&1 &
  CLOCKS_PID=$!
fi
HAS_SUITE=0
"$BIN" bench --help 2>/dev/null | grep -q -- --suite && HAS_SUITE=1
if [ "$HAS_SUITE" = 1 ]; then
  suite=standard; [ "$QUICK" = 1 ] && suite=quick
  scale=()
  if [ -n "$SCALE_N" ]; then
    if [ "$QUICK" = 1 ]; then scale=(--neurons 20000 --synapses-per-neuron 100 --steps 100); else scale=(--neurons "$SCALE_N" --steps 1000); fi
  fi
  res=0; [ ${#scale[@]} -gt 0 ] && res=$SCALE_RESERVE
  bench_step "suite-$suite" "$(left $((BENCH_DEADLINE - res)))" --suite "$suite" --backend "$BENCH_BACKEND" --out bench.json
  if [ ${#scale[@]} -gt 0 ]; then
    bench_step scale "$(left "$BENCH_DEADLINE")" "${scale[@]}" --backend gpu --out bench-scale.json
  fi
  # The suite again under each variant's settings, on the same machine (timings are
  # comparable only there): GPU_CHECK_VARIANTS="KETASIM_SPIKE_GROUPS=1;KETASIM_GPU_CONTRACT=1".
  if [ -n "${GPU_CHECK_VARIANTS:-}" ]; then
    IFS=';' read -r -a variants <<<"$GPU_CHECK_VARIANTS"
    vi=0
    for v in "${variants[@]}"; do
      vi=$((vi + 1))
      read -r -a BENCH_ENV <<<"$v"
      say "  variant $vi: ${BENCH_ENV[*]}"
      bench_step "variant$vi" "$(left "$BENCH_DEADLINE")" --suite "$suite" --backend "$BENCH_BACKEND" --out "bench-variant$vi.json"
      BENCH_ENV=()
    done
  fi
  [ -f "$LOGS/bench/bench.json" ] && cp "$LOGS/bench/bench.json" "$OUT/bench.json"
  [ -f "$LOGS/bench/bench.md" ] && cp "$LOGS/bench/bench.md" "$OUT/bench.md"
else
  if [ "$QUICK" = 1 ]; then sizes=(2000 20000); extra=(--synapses-per-neuron 100 --steps 100)
  else sizes=(100000 1000000 ${SCALE_N:+"$SCALE_N"}); extra=(--synapses-per-neuron 1000 --steps 1000); fi
  k=${#sizes[@]}
  for n in "${sizes[@]}"; do
    # Each size gets an equal share of what is left; a timeout loses only that size.
    t=$(left "$BENCH_DEADLINE"); t=$((t / k)); k=$((k - 1))
    bench_step "n$n" "$t" --neurons "$n" "${extra[@]}" --backend gpu --out "bench-n$n.json"
  done
  files=()
  for n in "${sizes[@]}"; do [ -f "$LOGS/bench/bench-n$n.json" ] && files+=("$LOGS/bench/bench-n$n.json"); done
  if [ ${#files[@]} -gt 0 ]; then
    case $JSON in
      jq) jq -s '{benchmark: .[0].benchmark, synapses_per_neuron: .[0].synapses_per_neuron, results: [.[].results[]]}' "${files[@]}" >"$OUT/bench.json" ;;
      python3) python3 -c 'import json,sys
d=[json.load(open(f)) for f in sys.argv[1:]]
print(json.dumps({"benchmark": d[0].get("benchmark"), "synapses_per_neuron": d[0].get("synapses_per_neuron"), "results": [r for x in d for r in x["results"]]}, indent=2))' "${files[@]}" >"$OUT/bench.json" ;;
      *) cp "${files[-1]}" "$OUT/bench.json" ;;
    esac
  fi
fi

if [ -n "$CLOCKS_PID" ]; then
  kill "$CLOCKS_PID" 2>/dev/null; wait "$CLOCKS_PID" 2>/dev/null
  # SM clock (MHz) over the bench phase: samples, min, median, max.
  tail -n +2 "$LOGS/bench/clocks.csv" | cut -d, -f2 | tr -dc '0-9\n' | grep -v '^$' | sort -n >"$WORK/sm.txt"
  n=$(wc -l <"$WORK/sm.txt")
  if [ "$n" -gt 0 ]; then
    echo "$n samples, SM clock min $(head -1 "$WORK/sm.txt"), median $(sed -n "$(( (n + 1) / 2 ))p" "$WORK/sm.txt"), max $(tail -1 "$WORK/sm.txt") MHz" >"$WORK/clocks.txt"
  fi
fi

# ---------------------------------------------------------------- 6. run
# The default scenario (a multiscale protocol whose length is fixed by the scenario), or
# with GPU_CHECK_QUICK=1 100 ms of the embedded coba network; GPU_CHECK_RUN_ARGS replaces
# the scenario arguments.
if [ -n "${GPU_CHECK_RUN_ARGS:-}" ]; then read -r -a run_sc <<<"$GPU_CHECK_RUN_ARGS"
elif [ "$QUICK" = 1 ]; then run_sc=(coba --duration-ms 100)
else run_sc=(); fi
RUN_ARGS=(run "${run_sc[@]}" --backend gpu --out "$LOGS/run")
t=$(left "$((DEADLINE - PACK_RESERVE - SWEEP_RESERVE))")
RUN_ST="NOT-RUN(budget)"; RUN_S=0
if [ "$t" -ge 10 ]; then
  say "run: ketasim ${RUN_ARGS[*]} (timeout ${t}s)"
  t0=$(now)
  (cd "$LOGS" && timeout -k 10 "$t" "$BIN" "${RUN_ARGS[@]}") >"$LOGS/run.log" 2>&1 </dev/null
  rc=$?
  RUN_S=$(( $(now) - t0 ))
  case $rc in 0) RUN_ST=OK ;; 124|137) RUN_ST="TIMEOUT(budget)" ;; *) RUN_ST=FAIL; fail_note "ketasim run failed (exit $rc)"; { echo "==== run: exit $rc"; tail -40 "$LOGS/run.log"; echo; } >>"$FAILURES" ;; esac
  say "run: $RUN_ST"
fi

# ---------------------------------------------------------------- 6b. sweep
# A dose sweep (the concentrations of 4 moments of pfc_ketamine's infusion x 2
# replicates, 300 ms continuous;
# quick: 4 thresholds of coba, 50 ms, unbatched): its 4 simulations one at a time, then four at
# once on the same GPU (`sweep --adapters I,I,I,I`). Rows must be the same but for
# wall_s; the two times say what concurrent simulations buy on this GPU.
SWEEP_ST="NOT-RUN(budget)"; SWEEP_LINE=
case $JSON in
  jq) SWEEP_ADAPTER=$(jq -r --arg sw "$ALLOW_SW" '[.[] | select(.usable and (.device_type != "Cpu" or $sw == "1"))][0].index // empty' "$LOGS/devices.json" 2>/dev/null) ;;
  python3) SWEEP_ADAPTER=$(python3 -c 'import json,sys
a=[x for x in json.load(open(sys.argv[1])) if x["usable"] and (x["device_type"]!="Cpu" or sys.argv[2]=="1")]
print(a[0]["index"] if a else "")' "$LOGS/devices.json" "$ALLOW_SW" 2>/dev/null) ;;
  *) SWEEP_ADAPTER= ;;
esac
if [ "$QUICK" = 1 ]; then sweep_sc=(coba --set duration_ms=50 --set "populations.E.neuron.v_th_mV=-50,-51,-52,-53" --no-batch)
else sweep_sc=(pfc_ketamine --set protocol.mode=continuous --set duration_ms=300 --set "drug.protocol_time_min=-5,20,40,90" --replicates 2); fi
t=$(left "$((DEADLINE - PACK_RESERVE))")
if [ -z "$SWEEP_ADAPTER" ]; then
  SWEEP_ST="NOT-RUN(no usable GPU adapter)"
elif [ "$t" -ge 20 ]; then
  a=$SWEEP_ADAPTER
  say "sweep: ${sweep_sc[*]}, on adapter $a one at a time, then four at once (timeout $((t / 2))s each)"
  declare -A SWEEP_S=()
  SWEEP_ST=OK
  for mode in one four; do
    if [ "$mode" = one ]; then ad=$a; else ad=$a,$a,$a,$a; fi
    t0=$(date +%s%N)
    (cd "$LOGS" && timeout -k 5 "$((t / 2))" "$BIN" sweep "${sweep_sc[@]}" --adapters "$ad" --out "$LOGS/sweep-$mode") >"$LOGS/sweep-$mode.log" 2>&1 </dev/null
    rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    SWEEP_S[$mode]=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
    if [ "$rc" != 0 ]; then
      case $rc in 124|137) SWEEP_ST="TIMEOUT(budget)" ;; *) SWEEP_ST=FAIL; fail_note "ketasim sweep --adapters $ad failed (exit $rc)"; { echo "==== sweep $mode: exit $rc"; tail -20 "$LOGS/sweep-$mode.log"; echo; } >>"$FAILURES" ;; esac
      break
    fi
  done
  if [ "$SWEEP_ST" = OK ]; then
    nowall() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "wall_s") w = i } { if (w) $w = ""; print }' OFS=, "$1"; }
    if [ "$(nowall "$LOGS/sweep-one/sweep.csv")" = "$(nowall "$LOGS/sweep-four/sweep.csv")" ]; then
      SWEEP_LINE="one at a time ${SWEEP_S[one]}s, four at once ${SWEEP_S[four]}s (whole commands); rows identical but for wall_s"
    else
      SWEEP_ST=FAIL; fail_note "sweep rows differ between one and four simulations at a time"
      { echo "==== sweep: rows differ"; diff "$LOGS/sweep-one/sweep.csv" "$LOGS/sweep-four/sweep.csv" | head -20; echo; } >>"$FAILURES"
    fi
  fi
  say "sweep: $SWEEP_ST${SWEEP_LINE:+: $SWEEP_LINE}"
fi

# ---------------------------------------------------------------- 7. summary
TOTAL_S=$(( $(now) - START ))
{
  echo "ketasim gpu-check — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo 'no git')"
  if [ -n "$MANIFEST" ]; then
    echo "binaries: bundle $BUNDLE ($(sed -n 's/^git_describe=//p' "$MANIFEST"), built $(sed -n 's/^created=//p' "$MANIFEST"))"
  else
    echo "binaries: built here, offline"
  fi
  if command -v nvidia-smi >/dev/null; then
    echo "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
  else
    echo "nvidia-smi: not found"
  fi
  echo "adapters (wgpu):"; printf '%s\n' "${ADAPTERS:-(none)}" | sed 's/^/  /'
  echo "loader: bundled libraries in use: ${USED_LIBS[*]:-none (system)}"
  echo
  echo "TESTS (KETASIM_REQUIRE_GPU=1)"
  printf '  %-24s %-12s %7s %7s %8s %7s\n' executable status passed failed ignored seconds
  while IFS=$'\t' read -r n st p f i s; do printf '  %-24s %-12s %7s %7s %8s %7s\n' "$n" "$st" "$p" "$f" "$i" "$s"; done <"$TESTS_RES"
  awk -F'\t' '{p+=$3; f+=$4; i+=$5; s+=$6; if ($2=="PASS") ok++} END {printf "  %-24s %-12s %7d %7d %8d %7d\n", "total", ok+0 "/" NR " ok", p, f, i, s}' "$TESTS_RES"
  echo
  echo "BENCH"
  [ -s "$WORK/clocks.txt" ] && echo "  GPU clocks during the bench (nvidia-smi, logs/bench/clocks.csv): $(cat "$WORK/clocks.txt")"
  while IFS=$'\t' read -r l st s; do printf '  %-24s %-16s %5ss\n' "$l" "$st" "$s"; done <"$BENCH_RES"
  for f in "$LOGS"/bench/*.log; do
    [ -f "$f" ] || continue
    echo "  --- $(basename "$f" .log) (table)"
    grep -E '^\s*\|' "$f" | sed 's/^/  /'
    grep -vE '^\s*\||^\s*$' "$f" | grep -viE 'progress|^\s*[#=\[]' | tail -30 | sed 's/^/  /'
  done
  echo
  echo "SHADER STATISTICS (scripts/shader-stats.sh): $SHADER_STATS_ST"
  [ -f "$LOGS/shader-stats/summary.txt" ] && sed 's/^/  /' "$LOGS/shader-stats/summary.txt"
  echo
  echo "RUN (ketasim ${RUN_ARGS[*]}): $RUN_ST in ${RUN_S}s"
  grep -E ' on |spikes|wrote' "$LOGS/run.log" 2>/dev/null | sed 's/^/  /'
  echo
  echo "SWEEP (ketasim sweep ${sweep_sc[*]}, adapter ${SWEEP_ADAPTER:-none}): $SWEEP_ST"
  [ -n "$SWEEP_LINE" ] && echo "  $SWEEP_LINE"
  grep -hE 'done in one simulation' "$LOGS"/sweep-*.log 2>/dev/null | sed 's/^/  /'
  echo
  echo "wall time: ${TOTAL_S}s of a ${BUDGET}s budget"
  if [ "$FAILED" = 0 ]; then echo "VERDICT: PASS"; else echo "VERDICT: FAIL"; fi
  for v in "${VERDICT_NOTES[@]}"; do echo "  - $v"; done
} >"$LOGS/summary.txt"
cp "$LOGS/summary.txt" "$OUT/summary.txt"
cp "$ENV_TXT" "$OUT/environment.txt"
[ -s "$FAILURES" ] && cp "$FAILURES" "$OUT/failures.txt"
tar -C "$OUT" -czf "$OUT/logs.tar.gz" logs 2>/dev/null || say "WARNING: could not pack logs"
[ "${GPU_CHECK_KEEP_TREE:-0}" = 1 ] || rm -rf "$LOGS"
cat "$OUT/summary.txt"
exit "$FAILED"
