#!/usr/bin/env python3
"""Run the reference PD14 microcircuit (INM-6/microcircuit-PD14-model, pip package
`microcircuit`) on NEST (pip package `nest-simulator`) and write its timings and rates
as JSON. Used by scripts/compare_nest_microcircuit.sh.

Settings are the reference's, except: Poisson background (`bg_input_type =
"poisson"`, as ketasim's scenario), no recording to disk beyond the spike recorders,
no plots, and a thread count of the caller's choice.

NEST stores a thread's connections of one synapse model with at most 2^27 local
indices, so the full-scale network (3.0e8 synapses) does not fit on fewer than 4
threads with one model. `--synapse-copies K` connects the recurrent projections
with K identical copies of `static_synapse` (`nest.CopyModel`, same defaults),
assigned per projection so that each copy gets about the same number of synapses;
the dynamics are unchanged. With 2 threads, K = 2 suffices at full scale.

Times (wall clock, s): build = Network() + create() + connect() (connect ends with
nest.Prepare(): all connection infrastructure is built), then presim and sim.
RTF = simulation wall time / simulated time. Rates: spikes per neuron over
[t_presim, t_presim + t_sim], as the reference's helpers.firing_rates.
"""

import argparse
import json
import sys
import tempfile
import time

import numpy as np

import nest
from microcircuit import helpers
from microcircuit import network as mc_network
from microcircuit.network_params import default_net_dict
from microcircuit.sim_params import default_sim_dict
from microcircuit.stimulus_params import default_stim_dict


def patch_connect(copies, outdegree):
    """Patches nest.Connect, as the reference's network module calls it, for the
    recurrent `fixed_total_number` projections: with `outdegree`, each becomes a
    `fixed_outdegree` projection of round(N / N_pre) targets per presynaptic neuron
    (multapses and autapses as before), ketasim's rule before 2026-11-27, for the
    same synapses, so that the effect of the rule alone can be measured in NEST; with `copies` > 1 they use
    that many copies of static_synapse, balanced by synapse count. Returns the
    synapses per copy."""
    connect = nest.Connect
    load = [0] * copies
    state = {"made": False}

    def patched(pre, post, conn_spec=None, syn_spec=None, **kw):
        if (
            isinstance(conn_spec, dict)
            and conn_spec.get("rule") == "fixed_total_number"
            and isinstance(syn_spec, dict)
            and syn_spec.get("synapse_model") == "static_synapse"
        ):
            n_syn = int(conn_spec["N"])
            if outdegree:
                conn_spec = {
                    k: v for k, v in conn_spec.items() if k not in ("rule", "N")
                }
                conn_spec.update(rule="fixed_outdegree", outdegree=round(n_syn / len(pre)))
            if copies > 1:
                if not state["made"]:
                    for k in range(1, copies):
                        nest.CopyModel("static_synapse", f"static_synapse_copy{k}")
                    state["made"] = True
                k = int(np.argmin(load))
                load[k] += n_syn
                if k > 0:
                    syn_spec = dict(syn_spec, synapse_model=f"static_synapse_copy{k}")
        return connect(pre, post, conn_spec=conn_spec, syn_spec=syn_spec, **kw)

    class NestWithPatchedConnect:
        """The nest module as the reference's network module sees it, with
        Connect patched (the module itself refuses new attributes)."""

        def __getattr__(self, name):
            return patched if name == "Connect" else getattr(nest, name)

        def __setattr__(self, name, value):
            setattr(nest, name, value)

    mc_network.nest = NestWithPatchedConnect()
    return load


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="N_scaling = K_scaling")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--synapse-copies", type=int, default=1)
    ap.add_argument(
        "--outdegree",
        action="store_true",
        help="connect with fixed_outdegree round(N / N_pre), ketasim's former rule (an experiment)",
    )
    ap.add_argument("--seed", type=int, default=55)
    ap.add_argument("--t-presim-ms", type=float, default=500.0)
    ap.add_argument("--t-sim-ms", type=float, default=1000.0)
    ap.add_argument("--json", required=True, help="output file")
    args = ap.parse_args()

    data_path = tempfile.mkdtemp(prefix="nest-mc-") + "/"
    sim_dict = dict(default_sim_dict)
    sim_dict.update(
        t_presim=args.t_presim_ms,
        t_sim=args.t_sim_ms,
        rng_seed=args.seed,
        local_num_threads=args.threads,
        data_path=data_path,
        print_time=False,
        store_metadata=False,
    )
    net_dict = dict(default_net_dict)
    net_dict.update(N_scaling=args.scale, K_scaling=args.scale, bg_input_type="poisson")
    stim_dict = dict(default_stim_dict)
    patched = args.synapse_copies > 1 or args.outdegree
    load = patch_connect(args.synapse_copies, args.outdegree) if patched else None

    t0 = time.time()
    net = mc_network.Network(sim_dict, net_dict, stim_dict)
    net.create()
    net.connect()
    t1 = time.time()
    net.simulate(args.t_presim_ms)
    t2 = time.time()
    net.simulate(args.t_sim_ms)
    t3 = time.time()

    begin, end = args.t_presim_ms, args.t_presim_ms + args.t_sim_ms
    load_spikes = getattr(helpers, "__load_spike_times")
    _, node_ids, data = load_spikes(data_path, "spike_recorder", begin, end)
    rates = []
    for i in range(len(data)):
        n = int(node_ids[i, 1] - node_ids[i, 0] + 1)
        rates.append(len(data[i]["sender"]) / n * 1000.0 / (end - begin))
    out = {
        "simulator": f"NEST {nest.__version__}",
        "threads": args.threads,
        "synapse_copies": args.synapse_copies,
        "rule": "fixed_outdegree" if args.outdegree else "fixed_total_number",
        "synapses_per_copy": load,
        "scale": args.scale,
        "seed": args.seed,
        "connections": nest.num_connections,
        "build_s": t1 - t0,
        "presim_s": t2 - t1,
        "sim_s": t3 - t2,
        "rtf_presim": (t2 - t1) / (args.t_presim_ms / 1000.0),
        "rtf_sim": (t3 - t2) / (args.t_sim_ms / 1000.0),
        "rtf_total": (t3 - t1) / ((args.t_presim_ms + args.t_sim_ms) / 1000.0),
        "populations": list(net_dict["populations"]),
        "rates_hz": rates,
        "rates_window_ms": [begin, end],
    }
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
