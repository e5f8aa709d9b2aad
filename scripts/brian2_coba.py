#!/usr/bin/env python3
"""Brian2 reference run of the COBA benchmark (LIF neurons, conductance synapses).

Model sources
-------------
* Vogels T.P. & Abbott L.F. (2005), J. Neurosci. 25(46):10786-10795
  ("Signal propagation and logic gating in networks of integrate-and-fire
  neurons") -- network and neuron parameters.
* Brette R. et al. (2007), J. Comput. Neurosci. 23:349-398, Appendix B,
  Benchmark 1 ("COBA") -- the simulator benchmark version used here: 4000 LIF
  neurons, exponential conductances, no external input, self-sustained
  activity started from random initial conditions.
* Brian's own COBA benchmark script (Brian 1 ``examples/COBA.py`` and the
  Brian2 "CUBA/COBA" benchmark examples) -- code structure; the initial
  conditions ``v ~ N(-65, 5) mV``, ``ge ~ N(4, 1.5)*gL``, ``gi ~ N(20, 12)*gL``
  are the ones of that script (no clipping of negative draws).

Differences from Brian2's ``examples/COBAHH.py`` (Hodgkin-Huxley) and from the
Brian2 CUBA/COBA example with ``I = 20 mV`` drive: here the parameters are
exactly the ones listed below (no external input).

Usage
-----
    python3 scripts/brian2_coba.py --mode runtime        --duration-ms 1000 --seed 1 --json out.json
    python3 scripts/brian2_coba.py --mode cpp_standalone --duration-ms 1000 --seed 1 --json out.json

Timing fields in the JSON output
--------------------------------
build_s      Python-side network construction (NeuronGroup, Synapses incl.
             ``connect``, initial values, monitor).  In cpp_standalone mode this
             only *records* the construction; the actual connect/initialisation
             happens inside the compiled binary (included in run_binary_s).
runtime mode:
  wall_s       simulation loop only (Brian2's ``device._last_run_time``,
               measured after code generation / compilation in ``before_run``).
  run_total_s  the whole ``run()`` call (code generation + Cython compilation
               or cache lookup + simulation loop).
cpp_standalone mode:
  build_total_s  the whole ``device.build(...)`` call (code generation, C++
                 compilation, running the binary, reading results back).
  compile_s      ``make`` time reported by Brian2 (``device.timers``).
  run_binary_s   time to run the compiled binary (initialisation, connect,
                 simulation, writing results) reported by Brian2.
  wall_s         simulation loop only, as measured inside the binary
                 (``device._last_run_time``, written to last_run_info.txt).
  run_total_s    alias of build_total_s, for symmetry with runtime mode.
"""

import argparse
import json
import os
import shutil
import tempfile
import time

import numpy as np

import brian2
from brian2 import (
    NeuronGroup,
    Synapses,
    SpikeMonitor,
    Network,
    defaultclock,
    device,
    set_device,
    prefs,
    seed,
    ms,
    mV,
    nS,
    pF,
    second,
)

# ---------------------------------------------------------------------------
# Parameters (Brette et al. 2007, Benchmark 1; Vogels & Abbott 2005)
# ---------------------------------------------------------------------------
N_E = 3200  # excitatory neurons
N_I = 800  # inhibitory neurons
N = N_E + N_I
P_CONN = 0.02  # connection probability, all four pathways

C_m = 200 * pF  # membrane capacitance
g_L = 10 * nS  # leak conductance  -> tau_m = C/g_L = 20 ms
E_L = -60 * mV  # leak reversal
V_th = -50 * mV  # spike threshold
V_reset = -60 * mV  # reset potential
T_REF = 5 * ms  # absolute refractory period

tau_e = 5 * ms  # excitatory conductance decay
tau_i = 10 * ms  # inhibitory conductance decay
E_e = 0 * mV  # excitatory reversal
E_i = -80 * mV  # inhibitory reversal
w_e = 0.6 * g_L  # excitatory conductance jump per spike (6 nS)
w_i = 6.7 * g_L  # inhibitory conductance jump per spike (67 nS)

DT = 0.1 * ms  # integration time step (forward Euler)

EQS = """
dv/dt  = (g_L*(E_L - v) + ge*(E_e - v) + gi*(E_i - v)) / C_m : volt (unless refractory)
dge/dt = -ge / tau_e : siemens
dgi/dt = -gi / tau_i : siemens
"""


def build_network():
    """Construct the network; returns (Network, SpikeMonitor)."""
    P = NeuronGroup(
        N,
        EQS,
        threshold="v > V_th",
        reset="v = V_reset",
        refractory=T_REF,
        method="euler",
        name="P",
    )
    Pe = P[:N_E]
    Pi = P[N_E:]

    # E->E, E->I via one Synapses object; I->E, I->I via the other.
    # connect(p=...) draws each (pre, post) pair independently (autapses allowed,
    # as in Brian's reference script).
    Ce = Synapses(Pe, P, on_pre="ge += w_e", name="Ce")
    Ci = Synapses(Pi, P, on_pre="gi += w_i", name="Ci")
    Ce.connect(p=P_CONN)
    Ci.connect(p=P_CONN)

    # Initial conditions (Brian's COBA benchmark script).
    P.v = "-65*mV + 5*mV*randn()"
    P.ge = "(4 + 1.5*randn()) * g_L"
    P.gi = "(20 + 12*randn()) * g_L"

    spikes = SpikeMonitor(P, name="spikes")
    net = Network(P, Ce, Ci, spikes)
    return net, spikes


def spike_stats(i, t, duration_s):
    """Population rates and mean CV of ISIs (neurons with >= 3 spikes)."""
    i = np.asarray(i, dtype=np.int64)
    t = np.asarray(t, dtype=np.float64)
    counts = np.bincount(i, minlength=N)
    rate_E = counts[:N_E].sum() / (N_E * duration_s)
    rate_I = counts[N_E:].sum() / (N_I * duration_s)

    order = np.lexsort((t, i))  # sort by neuron, then time
    i_s, t_s = i[order], t[order]
    bounds = np.concatenate(([0], np.cumsum(counts)))
    cvs = np.full(N, np.nan)
    for n in np.nonzero(counts >= 3)[0]:
        isi = np.diff(t_s[bounds[n] : bounds[n + 1]])
        cvs[n] = isi.std() / isi.mean()
    def mean_or_nan(x):
        x = x[~np.isnan(x)]
        return float(x.mean()) if x.size else float("nan")
    # last spike time per population: shows whether activity lasted the whole run
    last_E = float(t[i < N_E].max()) if np.any(i < N_E) else float("nan")
    last_I = float(t[i >= N_E].max()) if np.any(i >= N_E) else float("nan")
    # population rate (all neurons) in 100 ms bins: checks that the
    # self-sustained activity persists over the whole run
    nbins = max(1, int(round(duration_s / 0.1)))
    hist, _ = np.histogram(t, bins=nbins, range=(0.0, duration_s))
    pop_rate = hist / (N * duration_s / nbins)
    return {
        "rate_E_hz": float(rate_E),
        "rate_I_hz": float(rate_I),
        "cv_isi_E": mean_or_nan(cvs[:N_E]),
        "cv_isi_I": mean_or_nan(cvs[N_E:]),
        "n_cv_E": int(np.sum(counts[:N_E] >= 3)),
        "n_cv_I": int(np.sum(counts[N_E:] >= 3)),
        "total_spikes": int(counts.sum()),
        "last_spike_E_ms": last_E * 1e3,
        "last_spike_I_ms": last_I * 1e3,
        "pop_rate_100ms_bins_hz": [round(float(r), 3) for r in pop_rate],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["runtime", "cpp_standalone"], required=True)
    ap.add_argument("--duration-ms", type=float, default=1000.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write results to this file")
    ap.add_argument(
        "--project-dir",
        help="cpp_standalone project directory (default: a fresh temporary "
        "directory, i.e. a full compile; reuse a directory to time an "
        "incremental build)",
    )
    args = ap.parse_args()

    duration = args.duration_ms * ms
    result = {
        "mode": args.mode,
        "brian2_version": brian2.__version__,
        "n_neurons": N,
        "duration_ms": args.duration_ms,
        "dt_ms": float(DT / ms),
        "seed": args.seed,
    }

    tmpdir = None
    if args.mode == "cpp_standalone":
        # build_on_run=False: run() only records; device.build() does the rest.
        set_device("cpp_standalone", build_on_run=False)
        # single thread (Brian2 default: devices.cpp_standalone.openmp_threads = 0)
        prefs.devices.cpp_standalone.openmp_threads = 0
    result["codegen_target"] = (
        "cpp_standalone" if args.mode == "cpp_standalone" else prefs.codegen.target
    )

    defaultclock.dt = DT
    seed(args.seed)  # seeds numpy and Brian2's generated-code RNG

    t0 = time.perf_counter()
    net, spikes = build_network()
    result["build_s"] = time.perf_counter() - t0

    if args.mode == "runtime":
        t0 = time.perf_counter()
        net.run(duration)
        result["run_total_s"] = time.perf_counter() - t0
        result["wall_s"] = float(device._last_run_time)
        # actual target chosen by 'auto' (cython if available, else numpy)
        result["codegen_target"] = type(net["P"].state_updater.codeobj).__name__
    else:
        net.run(duration)  # recorded only
        if args.project_dir:
            project_dir = args.project_dir
        else:
            tmpdir = tempfile.mkdtemp(prefix="brian2_coba_")
            project_dir = tmpdir
        t0 = time.perf_counter()
        device.build(directory=project_dir, compile=True, run=True, with_output=False)
        result["build_total_s"] = time.perf_counter() - t0
        result["run_total_s"] = result["build_total_s"]
        result["compile_s"] = float(device.timers["compile"]["make"] or 0.0)
        result["run_binary_s"] = float(device.timers["run_binary"])
        result["wall_s"] = float(device._last_run_time)

    result.update(spike_stats(spikes.i[:], spikes.t[:] / second, float(duration / second)))

    if tmpdir is not None:
        shutil.rmtree(tmpdir, ignore_errors=True)

    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
