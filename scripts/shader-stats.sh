#!/usr/bin/env bash
# What a GPU driver's shader compiler makes of ketasim's kernels, per network: the
# registers each kernel needs, spills, scratch (per-thread) memory, how many waves
# fit a SIMD, instruction counts, as the driver reports them through
# VK_KHR_pipeline_executable_properties. No kernel is run.
#
#   scripts/shader-stats.sh OUT_DIR [SCENARIO ...]    (default: coba microcircuit pfc_ketamine)
#
# For each scenario, `ketasim shaders SCENARIO` writes the kernels as a run of it
# compiles them (only the code paths its network can take), and once more with every
# path (`--all-paths`, the kernels as written, as "all"); scripts/vk_pipeline_stats.c
# builds the pipelines of neuron_update, propagate and reduce_stats on a Vulkan
# device and prints every statistic. OUT_DIR receives:
#   stats.tsv     scenario, kernel, executable, statistic, value (every statistic)
#   summary.txt   the device and, per scenario and kernel, the statistics on registers,
#                 spills, scratch, occupancy and instructions
#   SCENARIO/     the kernels (.wgsl, .spv, .layout)
#
# The device: the first Vulkan device that is not a CPU (on a GPU machine, the GPU),
# or the one whose name contains SHADER_STATS_DEVICE. Without a GPU, Mesa's RADV
# compiles for an AMD GPU it emulates no part of but its compiler ("null hardware"):
#   SHADER_STATS_RADV=mi200 scripts/shader-stats.sh OUT_DIR
# (mi200: CDNA2, 64-wide waves, the data-centre part; navi21 and others work too).
# Mesa 22.3 (Debian 12) cannot create a device on null hardware; 25.0 can, and the
# script fetches it from bookworm-backports into SHADER_STATS_MESA (default
# target/mesa-radv) once, unpacked there, not installed.
#
# Environment: KETASIM (default target/release/ketasim), VK_PIPELINE_STATS (the
# tool's binary; default: compiled here with gcc and the Vulkan headers,
# libvulkan-dev), SHADER_STATS_DEVICE, SHADER_STATS_RADV, SHADER_STATS_MESA.
# KETASIM_WG_SIZE and KETASIM_GPU_DIV apply as in a run. See docs/performance.md.
set -euo pipefail

die() { echo "shader-stats: ERROR: $*" >&2; exit 1; }
[ $# -ge 1 ] || { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0" >&2; exit 2; }
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
OUT=$1
shift
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(coba microcircuit pfc_ketamine)
KETASIM=${KETASIM:-$REPO/target/release/ketasim}
[ -x "$KETASIM" ] || die "no ketasim binary at $KETASIM: cargo build --release, or set KETASIM"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)

TOOL=${VK_PIPELINE_STATS:-}
if [ -z "$TOOL" ]; then
  command -v gcc >/dev/null || die "no gcc to build the statistics tool (or set VK_PIPELINE_STATS)"
  [ -f /usr/include/vulkan/vulkan.h ] || die "no Vulkan headers: apt-get install -y libvulkan-dev (or set VK_PIPELINE_STATS)"
  TOOL=$OUT/vk_pipeline_stats
  gcc -O2 -Wall -Wextra -o "$TOOL" "$REPO/scripts/vk_pipeline_stats.c" -lvulkan || die "cannot build scripts/vk_pipeline_stats.c"
fi
[ -x "$TOOL" ] || die "$TOOL is not executable"

if [ -n "${SHADER_STATS_RADV:-}" ]; then
  MESA=${SHADER_STATS_MESA:-$REPO/target/mesa-radv}
  RADV_LIB=$MESA/root/usr/lib/x86_64-linux-gnu
  if [ ! -f "$RADV_LIB/libvulkan_radeon.so" ]; then
    echo "shader-stats: fetching Mesa's Vulkan drivers from bookworm-backports into $MESA" >&2
    mkdir -p "$MESA/lists/partial" "$MESA/archives/partial" "$MESA/debs" "$MESA/root"
    echo "deb http://deb.debian.org/debian bookworm-backports main" >"$MESA/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$MESA/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$MESA/lists" -o "Dir::Cache::Archives=$MESA/archives")
    apt-get "${apt_opts[@]}" update -q >&2 || die "apt-get update of bookworm-backports failed"
    (cd "$MESA/debs" && apt-get "${apt_opts[@]}" download -t bookworm-backports \
      mesa-vulkan-drivers libdrm-amdgpu1 libdrm2) >&2 || die "cannot download Mesa's Vulkan drivers"
    for f in "$MESA"/debs/*.deb; do dpkg -x "$f" "$MESA/root"; done
  fi
  sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$RADV_LIB/libvulkan_radeon.so\"#" \
    "$MESA/root/usr/share/vulkan/icd.d/radeon_icd.json" >"$MESA/radeon_icd.json"
  export VK_DRIVER_FILES=$MESA/radeon_icd.json VK_ICD_FILENAMES=$MESA/radeon_icd.json
  export LD_LIBRARY_PATH=$RADV_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export RADV_FORCE_FAMILY=$SHADER_STATS_RADV
fi
DEVICE_ARGS=()
[ -n "${SHADER_STATS_DEVICE:-}" ] && DEVICE_ARGS=(-d "$SHADER_STATS_DEVICE")

KERNELS=(neuron_update propagate reduce_stats)
: >"$OUT/stats.tsv"
DEVICE=
for sc in all "${SCENARIOS[@]}"; do
  if [ "$sc" = all ]; then
    "$KETASIM" shaders --all-paths --out "$OUT/all" 2>"$OUT/all.log" || die "ketasim shaders --all-paths failed: $(cat "$OUT/all.log")"
  else
    "$KETASIM" shaders "$sc" --out "$OUT/$sc" 2>"$OUT/$sc.log" || die "ketasim shaders $sc failed: $(cat "$OUT/$sc.log")"
  fi
  files=()
  for k in "${KERNELS[@]}"; do files+=("$OUT/$sc/$k.spv"); done
  "$TOOL" "${DEVICE_ARGS[@]}" "${files[@]}" >"$OUT/$sc.tsv" 2>"$OUT/$sc.err" ||
    die "$TOOL failed on $sc: $(cat "$OUT/$sc.err")"
  [ -n "$DEVICE" ] || DEVICE=$(sed -n 's/^device: //p' "$OUT/$sc.err")
  awk -v sc="$sc" 'BEGIN { OFS = "\t" } { print sc, $0 }' "$OUT/$sc.tsv" >>"$OUT/stats.tsv"
  rm -f "$OUT/$sc.tsv"
done

# The statistics that bear on occupancy and cost, whatever the driver calls them.
{
  echo "device: ${DEVICE:-unknown}${RADV_FORCE_FAMILY:+ (RADV_FORCE_FAMILY=$RADV_FORCE_FAMILY)}"
  echo "scenarios: all = every code path (the kernels as written); the others: only their network's paths"
  awk -F'\t' 'tolower($4) ~ /register|gpr|spill|scratch|local|private|subgroups per|occupancy|waves|instructions|latency|throughput|binary size|code size/ {
      key = $1 "\t" $2
      if (!(key in row)) { order[++n] = key }
      row[key] = row[key] sprintf("  %s %s;", $4, $5)
    }
    END { for (i = 1; i <= n; i++) { split(order[i], p, "\t"); printf "%-13s %-13s%s\n", p[1], p[2], row[order[i]] } }' "$OUT/stats.tsv"
} >"$OUT/summary.txt"
cat "$OUT/summary.txt"
