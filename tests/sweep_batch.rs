//! Batched sweeps: networks of the same shape joined into one simulation
//! (`Network::merge`) evolve bit for bit as they do alone, on the CPU backend and on
//! the GPU; and `ketasim sweep` gives the same rows batched and with `--no-batch`.

mod common;

use std::time::Instant;

use ketasim::model::limits::{STATS_PER_POP, STAT_SCALES};
use ketasim::model::Network;
use ketasim::run::{run, run_network, BackendChoice, RunOptions, RunResult};
use ketasim::scenario::Scenario;

/// Three runs of the mixed scenario (every rule, NMDA pools, glutamate, ketamine):
/// different seeds, drive rates and NMDA conductance; one shape.
fn scenarios() -> Vec<Scenario> {
    let base = Scenario::from_toml("mixed", common::MIXED).expect("mixed");
    [(7u64, 1.0, 8.0), (11, 0.8, 6.0), (12345, 1.2, 8.0)]
        .into_iter()
        .map(|(seed, rate_scale, g)| {
            let mut s = base.clone();
            s.seed = seed;
            for d in &mut s.drives {
                d.rate_hz *= rate_scale;
            }
            if let Some(n) = &mut s.populations[0].nmda {
                n.g_max_nS = g;
            }
            s.drug.conc_um = 3.0;
            s.drug.start_ms = 10.0;
            s
        })
        .collect()
}

fn opts(backend: BackendChoice) -> RunOptions {
    RunOptions {
        backend,
        batch_steps: 100,
        ..RunOptions::default()
    }
}

/// Copy `k` of a batched result against the same network run alone.
fn assert_copy_equals_solo(
    batched: &RunResult,
    net_copies: &[ketasim::model::Copy],
    k: usize,
    solo: &RunResult,
) {
    let c = &net_copies[k];
    let pops = c.first_pop..c.first_pop + c.pops;
    for (b, (row_b, row_s)) in batched.bin_counts.iter().zip(&solo.bin_counts).enumerate() {
        assert_eq!(
            &row_b[pops.clone()],
            &row_s[..],
            "copy {k}: spike counts of bin {b}"
        );
    }
    assert_eq!(batched.samples.len(), solo.samples.len());
    for ((tb, mb), (ts, ms)) in batched.samples.iter().zip(&solo.samples) {
        assert_eq!(tb, ts);
        assert_eq!(&mb[pops.clone()], &ms[..], "copy {k}: sample at {tb} ms");
    }
    let spikes: Vec<(f64, u32)> = batched
        .spikes
        .iter()
        .filter(|(_, i)| (c.first_neuron..c.first_neuron + c.neurons).contains(i))
        .map(|&(t, i)| (t, i - c.first_neuron))
        .collect();
    assert_eq!(spikes, solo.spikes, "copy {k}: recorded spikes");
    for (pb, ps) in batched.summary.populations[pops.clone()]
        .iter()
        .zip(&solo.summary.populations)
    {
        assert_eq!(pb.spikes, ps.spikes, "copy {k}: {}", ps.name);
        assert_eq!(pb.cv_isi, ps.cv_isi, "copy {k}: CV of {}", ps.name);
        assert_eq!(
            pb.glutamate.as_ref().map(|g| g.mean_um),
            ps.glutamate.as_ref().map(|g| g.mean_um),
            "copy {k}: glutamate of {}",
            ps.name
        );
    }
    assert!(
        solo.summary.populations.iter().any(|p| p.spikes > 0),
        "copy {k}: the network must be active for the test to mean anything"
    );
}

fn check(backend: BackendChoice) {
    let sc = scenarios();
    let solos: Vec<RunResult> = sc
        .iter()
        .map(|s| run(s, &opts(backend)).expect("solo run"))
        .collect();
    // The runs differ (different seeds and parameters).
    assert_ne!(solos[0].bin_counts, solos[1].bin_counts);
    let nets: Vec<Network> = sc
        .iter()
        .map(|s| Network::build(s, 100).expect("build"))
        .collect();
    let merged = Network::merge(nets).expect("merge");
    assert_eq!(merged.copies.len(), 3);
    let copies = merged.copies.clone();
    let batched = run_network(merged, &opts(backend), Instant::now()).expect("batched run");
    for (k, solo) in solos.iter().enumerate() {
        assert_copy_equals_solo(&batched, &copies, k, solo);
    }
}

#[test]
fn batched_networks_evolve_as_they_do_alone_on_the_cpu() {
    check(BackendChoice::Cpu);
}

#[test]
fn batched_networks_evolve_as_they_do_alone_on_the_gpu() {
    if common::gpu_or_skip("batched_networks_evolve_as_they_do_alone_on_the_gpu").is_none() {
        return;
    }
    check(BackendChoice::Gpu);
}

#[test]
fn networks_of_different_shape_are_not_merged() {
    let mut sc = scenarios();
    sc[1].dt_ms = 0.05;
    let nets: Vec<Network> = sc
        .iter()
        .map(|s| Network::build(s, 100).expect("build"))
        .collect();
    let e = Network::merge(nets).expect_err("different dt");
    assert!(e.to_string().contains("differs in shape"), "{e}");
    // Too large for one batch: with read-back batches of 10^6 steps each network's
    // population samples take 8 B x 9 entries (8 quantities and the clip mask) x 2
    // populations x 200 002 slots (28.8 MB; one every 5 steps), so 4 fit the 128 MiB
    // (134.2 MB) a batch may bind and 5 do not.
    let big = |k: usize| Network::build(&scenarios()[k % 3], 1_000_000).expect("build");
    let four: Vec<Network> = (0..4).map(big).collect();
    assert!(ketasim::model::batch::fits(
        &four.iter().collect::<Vec<_>>()
    ));
    let mut five = four;
    five.push(big(4));
    assert!(!ketasim::model::batch::fits(
        &five.iter().collect::<Vec<_>>()
    ));
    let e = Network::merge(five).expect_err("too large");
    assert!(e.to_string().contains("MiB per buffer"), "{e}");
}

/// Copies of the mixed circuit in this test's many-network batch.
const MANY: usize = 1200;

/// Thousands of small networks in one simulation: [`MANY`] copies of a 38-neuron
/// version of the mixed circuit (2400 populations of 30 and 8 neurons, so most
/// workgroups span several populations and the population lookup, the sample
/// reduction and the glutamate bookkeeping all work across thousands of
/// populations), each with its own seed and drive rate. Copies across the batch
/// equal their networks run alone, and on the GPU the whole batch gives the CPU
/// backend's spikes, with the state to rounding.
#[test]
fn thousands_of_small_networks_in_one_simulation() {
    let base = {
        let mut s = scenarios().remove(0);
        s.populations[0].size = 30;
        s.populations[1].size = 8;
        s.duration_ms = 10.0;
        s
    };
    let scenario = |k: usize| {
        let mut s = base.clone();
        s.seed = 1000 + k as u64;
        for d in &mut s.drives {
            d.rate_hz *= 1.0 + 0.3 * (k % 5) as f64 / 4.0;
        }
        s
    };
    let build = || -> Vec<Network> {
        (0..MANY)
            .map(|k| Network::build(&scenario(k), 100).expect("build"))
            .collect()
    };
    let merged = Network::merge(build()).expect("merge");
    assert_eq!(merged.params.sim.n_pop as usize, 2 * MANY);
    let copies = merged.copies.clone();
    let cpu = run_network(merged, &opts(BackendChoice::Cpu), Instant::now()).expect("cpu");
    for k in [0, MANY / 2 + 1, MANY - 1] {
        let solo = run(&scenario(k), &opts(BackendChoice::Cpu)).expect("solo run");
        assert_copy_equals_solo(&cpu, &copies, k, &solo);
    }
    if common::gpu_or_skip("thousands_of_small_networks_in_one_simulation").is_none() {
        return;
    }
    let merged = Network::merge(build()).expect("merge");
    let gpu = run_network(merged, &opts(BackendChoice::Gpu), Instant::now()).expect("gpu");
    assert_eq!(gpu.bin_counts, cpu.bin_counts, "spike counts per bin");
    assert_eq!(gpu.spikes, cpu.spikes, "recorded spikes");
    // Continuous state agrees to rounding (the NMDA receptor kinetics use exp/log
    // polynomials whose multiply-adds a GPU compiler may fuse; tests/gpu_vs_cpu.rs):
    // each population mean within one fixed-point step per neuron (a mean moves by at
    // most one step) or 1e-5 relative, glutamate within 1e-5 relative.
    assert_eq!(gpu.samples.len(), cpu.samples.len());
    for ((tg, mg), (tc, mc)) in gpu.samples.iter().zip(&cpu.samples) {
        assert_eq!(tg, tc);
        for (p, (g, c)) in mg.iter().zip(mc).enumerate() {
            for k in 0..STATS_PER_POP {
                let tol = 1.0 / STAT_SCALES[k] as f64 + 1e-5 * c[k].abs();
                assert!(
                    (g[k] - c[k]).abs() <= tol,
                    "sample {k} of population {p} at {tc} ms: gpu {} cpu {}",
                    g[k],
                    c[k]
                );
            }
        }
    }
    for (bg, bc) in gpu.bin_glutamate_um.iter().zip(&cpu.bin_glutamate_um) {
        // NaN where a population releases no glutamate.
        for (g, c) in bg.iter().zip(bc) {
            let same = (g.is_nan() && c.is_nan()) || (g - c).abs() <= 1e-5 * c.abs() + 1e-9;
            assert!(same, "glutamate gpu {g} cpu {c} µM");
        }
    }
    let active = cpu.summary.populations.iter().filter(|p| p.spikes > 0);
    assert!(active.count() > MANY, "most populations must fire");
}
