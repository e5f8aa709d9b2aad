//! The Potjans & Diesmann (2014) microcircuit (`assets/scenarios/microcircuit.toml`):
//! population rates of a downscaled network that keeps the full-scale in-degrees
//! (the reference implementation's `N_scaling` with `K_scaling = 1`) against the
//! published full-scale rates, on the CPU backend. docs/microcircuit.md has the
//! full-scale measurement.

use ketasim::bench::scale_scenario;
use ketasim::run::{run, BackendChoice, RunOptions};
use ketasim::scenario::{Scenario, Source};

/// Published full-scale rates (Hz) with Poisson background, in population order
/// L2/3E, L2/3I, L4E, L4I, L5E, L5I, L6E, L6I (see docs/microcircuit.md for sources).
pub const PUBLISHED_HZ: [f64; 8] = [0.86, 2.8, 4.5, 5.8, 7.0, 8.4, 1.1, 7.7];

fn microcircuit() -> Scenario {
    let src = Source::locate(Some("microcircuit")).expect("embedded microcircuit");
    Scenario::load(&src, &[]).expect("microcircuit.toml is valid")
}

/// Mean rate (Hz) per population over the bins after `skip_ms`.
fn rates_after(res: &ketasim::run::RunResult, dt_ms: f64, skip_ms: f64) -> Vec<f64> {
    let bin_ms = res.rate_bin_steps as f64 * dt_ms;
    let skip = (skip_ms / bin_ms).round() as usize;
    let kept = &res.bin_counts[skip..];
    res.pop_sizes
        .iter()
        .enumerate()
        .map(|(p, &n)| {
            let spikes: u64 = kept.iter().map(|b| b[p]).sum();
            spikes as f64 / (n as f64 * kept.len() as f64 * bin_ms * 1e-3)
        })
        .collect()
}

#[test]
fn scenario_has_the_published_structure() {
    let s = microcircuit();
    let names: Vec<&str> = s.populations.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"]
    );
    assert_eq!(s.neuron_count(), 77_169);
    let net = ketasim::model::Network::build(&s, 1000).expect("builds");
    let synapses = net.synapse_count();
    // The reference's fixed-total-number count is 298,880,968; the out-degrees
    // round Q / N_pre to whole synapses (docs/microcircuit.md).
    assert_eq!(synapses, 298_822_986.0);
}

/// Downscaled to `n` neurons with the in-degrees kept, `duration_ms` of which the
/// first `warmup_ms` are discarded; rates on the CPU backend.
pub fn downscaled_rates(n: u64, duration_ms: f64, warmup_ms: f64, seed: u64) -> Vec<f64> {
    let mut s = scale_scenario(&microcircuit(), n).expect("scales");
    s.duration_ms = duration_ms;
    s.seed = seed;
    s.record.sample_interval_ms = 10.0;
    let opts = RunOptions {
        backend: BackendChoice::Cpu,
        ..RunOptions::default()
    };
    let res = run(&s, &opts).expect("runs");
    rates_after(&res, s.dt_ms, warmup_ms)
}

#[test]
fn downscaled_rates_match_published() {
    let n: u64 = std::env::var("KETASIM_MC_NEURONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7717);
    let rates = downscaled_rates(n, 1500.0, 500.0, 55);
    eprintln!("n = {n}: {rates:?}");
}
