#!/usr/bin/env bash
# COBA (N = 4000, 1 s, dt = 0.1 ms) with ketasim's CPU and GPU backends and Brian2's
# runtime and cpp_standalone modes, in one run on one machine, 3 repetitions each;
# prints the simulation-loop wall time (median), rates and CV(ISI).
# Needs: pip install brian2 (and numpy < 2.4 for Brian2 2.9).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/ketasim-brian2}
mkdir -p "$out"
cargo build --release -q
for rep in 1 2 3; do
  for b in cpu gpu; do
    ./target/release/ketasim run coba --backend "$b" --out "$out/ketasim-$b-$rep" 2>/dev/null
  done
done
python3 scripts/brian2_coba.py --mode runtime --duration-ms 1000 --seed 1 --json "$out/warm.json" >/dev/null
python3 scripts/brian2_coba.py --mode cpp_standalone --duration-ms 1000 --seed 1 --project-dir "$out/b2proj" --json "$out/warm2.json" >/dev/null
for rep in 1 2 3; do
  python3 scripts/brian2_coba.py --mode runtime --duration-ms 1000 --seed 1 --json "$out/brian2-runtime-$rep.json" >/dev/null
  python3 scripts/brian2_coba.py --mode cpp_standalone --duration-ms 1000 --seed 1 --project-dir "$out/b2proj" --json "$out/brian2-standalone-$rep.json" >/dev/null
done
python3 - "$out" <<'PY'
import json, statistics, sys, glob
out = sys.argv[1]
rows = []
for name, pat, key in [("ketasim cpu", "ketasim-cpu-*/summary.json", "k"), ("ketasim gpu (llvmpipe)", "ketasim-gpu-*/summary.json", "k"),
                       ("brian2 runtime", "brian2-runtime-*.json", "b"), ("brian2 cpp_standalone", "brian2-standalone-*.json", "b")]:
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{pat}"))]
    wall = statistics.median(r["wall_s"] for r in runs)
    if key == "k":
        e, i = runs[0]["populations"]
        rows.append((name, wall, e["rate_hz"], i["rate_hz"], e["cv_isi"], i["cv_isi"]))
    else:
        r = runs[0]
        rows.append((name, wall, r["rate_E_hz"], r["rate_I_hz"], r["cv_isi_E"], r["cv_isi_I"]))
print("| simulator | wall s (loop, median of 3) | E Hz | I Hz | CV E | CV I |")
print("|---|---|---|---|---|---|")
for n, w, re, ri, ce, ci in rows:
    print(f"| {n} | {w:.3f} | {re:.2f} | {ri:.2f} | {ce:.3f} | {ci:.3f} |")
PY
