//! Batched sweeps: networks of the same shape joined into one simulation
//! (`Network::merge`) evolve bit for bit as they do alone, on the CPU backend and on
//! the GPU; and `ketasim sweep` gives the same rows batched and with `--no-batch`.

mod common;

use std::time::Instant;

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
    // Too many for one parameter block: 9 copies of 2 populations exceed 16.
    let nets: Vec<Network> = (0..33)
        .map(|_| Network::build(&scenarios()[0], 100).expect("build"))
        .collect();
    let e = Network::merge(nets).expect_err("too many");
    assert!(e.to_string().contains("populations"), "{e}");
}
