#!/usr/bin/env bash
# The full-scale Potjans-Diesmann microcircuit (77,169 neurons, 3.0e8 synapses, seed
# 55, 500 ms presimulation + 1000 ms) on ketasim's CPU backend and on NEST running the
# reference implementation (scripts/nest_microcircuit.py), one after the other in one
# invocation on this machine. Prints, for each: build time, simulation time, RTF,
# CPU time, peak resident memory (/usr/bin/time -v "Maximum resident set size") and
# the population rates over 500-1500 ms; then NEST's RTF and memory over ketasim's.
#
# Usage: scripts/compare_nest_microcircuit.sh [OUT_DIR]     (default /tmp/ketasim-nest)
# Environment (defaults in brackets):
#   THREADS       threads of both simulators [2]
#   CACHE_MB      ketasim's connectivity cache, MiB (KETASIM_CACHE_MB) [1400: every
#                 synapse, 4 bytes each]
#   NEST_COPIES   copies of static_synapse NEST connects with [2 if THREADS < 4, else
#                 1]: NEST holds at most 2^27 connections per thread and synapse
#                 model, too few for 3e8 synapses on 2 threads with one model
#   NEST_PYTHON   python with nest-simulator 3.10 and microcircuit installed
#                 [~/.cache/ketasim-nest-venv/bin/python; made with pip if missing]
#   NEST_SCALE    N_scaling = K_scaling of the NEST run [1]; below 1 only to try the
#                 script (its rates then differ from the full-scale ones)
#   PRESIM_MS, SIM_MS   [500, 1000]
#   SKIP_NEST=1   run ketasim only
# NEST at full scale needs about 15 GB and 10+ minutes on 2 cores: never run two of
# these at once.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/ketasim-nest}
threads=${THREADS:-2}
cache_mb=${CACHE_MB:-1400}
presim=${PRESIM_MS:-500}
sim=${SIM_MS:-1000}
if [ "$threads" -lt 4 ]; then copies=${NEST_COPIES:-2}; else copies=${NEST_COPIES:-1}; fi
py=${NEST_PYTHON:-$HOME/.cache/ketasim-nest-venv/bin/python}
mkdir -p "$out"

cargo build --release -q
duration=$(python3 -c "print($presim + $sim)")
echo "== ketasim: cpu backend, $threads threads, KETASIM_CACHE_MB=$cache_mb, ${duration} ms" >&2
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >"$out/load.txt"
rm -rf "$out/ketasim"
/usr/bin/time -v -o "$out/ketasim.time" env KETASIM_CACHE_MB="$cache_mb" KETASIM_THREADS="$threads" \
  ./target/release/ketasim run microcircuit --backend cpu --duration-ms "$duration" \
  --out "$out/ketasim" >"$out/ketasim.log" 2>&1
echo "load after ketasim: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/load.txt"

if [ "${SKIP_NEST:-0}" != 1 ]; then
  if ! "$py" -c "import nest, microcircuit" >/dev/null 2>&1; then
    echo "== installing nest-simulator 3.10.0 and microcircuit into $(dirname "$(dirname "$py")")" >&2
    python3 -m venv "$(dirname "$(dirname "$py")")"
    "$py" -m pip install -q nest-simulator==3.10.0 microcircuit
  fi
  echo "== NEST: reference implementation, $threads threads, $copies static_synapse copies" >&2
  /usr/bin/time -v -o "$out/nest.time" "$py" scripts/nest_microcircuit.py \
    --scale "${NEST_SCALE:-1}" --threads "$threads" --synapse-copies "$copies" \
    --t-presim-ms "$presim" --t-sim-ms "$sim" --json "$out/nest.json" >"$out/nest.log" 2>&1
  echo "load after NEST: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/load.txt"
fi

python3 - "$out" "$presim" "$sim" <<'PY'
import csv, json, os, re, sys
out, presim, sim = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

def usage(path):
    """Peak RSS (GiB) and CPU seconds (user + sys) from /usr/bin/time -v."""
    text = open(path).read()
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", text).group(1)) for k in ("User", "System"))
    return kb / 2**20, cpu

k = json.load(open(f"{out}/ketasim/summary.json"))
pops = [p["name"] for p in k["populations"]]
with open(f"{out}/ketasim/rates.csv") as f:
    rows = [r for r in csv.DictReader(f) if presim <= float(r["t_start_ms"]) < presim + sim]
k_rates = [sum(float(r[f"rate_{p}_hz"]) for r in rows) / len(rows) for p in pops]
k_rss, k_cpu = usage(f"{out}/ketasim.time")
# ketasim times the whole run only: no RTF of the last part.
table = [("ketasim " + k["adapter"], k["build_s"], k["wall_s"], k["rtf"], None, k_cpu, k_rss, k_rates)]
if os.path.exists(f"{out}/nest.json"):
    n = json.load(open(f"{out}/nest.json"))
    n_rss, n_cpu = usage(f"{out}/nest.time")
    name = f"{n['simulator']} reference, {n['threads']} threads, {n['synapse_copies']} synapse model(s), scale {n['scale']}"
    table.append((name, n["build_s"], n["presim_s"] + n["sim_s"], n["rtf_total"], n["rtf_sim"], n_cpu, n_rss, n["rates_hz"]))

print(f"full run {presim + sim:g} ms, rates over {presim:g}-{presim + sim:g} ms; " + open(f"{out}/load.txt").read().replace("\n", "; "))
print("| simulator | build (s) | simulation (s) | RTF (whole run) | RTF (last %g ms) | CPU time (s) | peak RSS (GiB) |" % sim)
print("|---|---|---|---|---|---|---|")
for name, b, s, rtf, rtf_sim, cpu, rss, _ in table:
    last = "-" if rtf_sim is None else f"{rtf_sim:.1f}"
    print(f"| {name} | {b:.1f} | {s:.1f} | {rtf:.1f} | {last} | {cpu:.0f} | {rss:.2f} |")
print()
print("| population | " + " | ".join(t[0].split(",")[0] + " (Hz)" for t in table) + " |")
print("|---|" + "---|" * len(table))
for i, p in enumerate(pops):
    print(f"| {p} | " + " | ".join(f"{t[7][i]:.3f}" for t in table) + " |")
if len(table) == 2:
    (_, _, _, krtf, _, _, krss, _), (_, _, _, nrtf, nrtf_sim, _, nrss, _) = table
    print()
    print(f"NEST RTF / ketasim RTF: {nrtf / krtf:.2f} (whole run), {nrtf_sim / krtf:.2f} (NEST's last {sim:g} ms against ketasim's whole run)")
    print(f"ketasim peak RSS / NEST peak RSS: {krss / nrss:.3f}")
PY
