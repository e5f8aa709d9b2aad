//! The Potjans & Diesmann (2014) microcircuit (`assets/scenarios/microcircuit.toml`):
//! population rates of a downscaled network that keeps the full-scale in-degrees
//! (the reference implementation's `N_scaling` with `K_scaling = 1`) against the
//! published full-scale rates, on the CPU backend. docs/microcircuit.md has the
//! full-scale measurement.

use ketasim::bench::{scale_indegrees, scale_scenario};
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
    // The reference's fixed-total-number count, exactly (the same rule).
    assert_eq!(synapses, 298_880_968.0);
    assert!(s
        .projections
        .iter()
        .all(|p| p.rule == ketasim::scenario::Rule::FixedTotalNumber));
}

/// Downscaled to `n` neurons with the in-degrees kept, `duration_ms` of which the
/// first `warmup_ms` are discarded; rates on the CPU backend.
pub fn downscaled_rates(
    n: u64,
    k_scaling: f64,
    duration_ms: f64,
    warmup_ms: f64,
    seed: u64,
) -> Vec<f64> {
    let k = scale_indegrees(&microcircuit(), k_scaling, &PUBLISHED_HZ).expect("K-scales");
    let mut s = scale_scenario(&k, n).expect("scales");
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

/// Relative tolerance of each downscaled rate against the published full-scale one.
/// The N = K = 0.1 network (the reference implementation's default laptop
/// configuration) is not the full-scale one: it measures -22% (L6E) to +2%
/// (L5E), as the reference itself does at that size with NEST 3.10 (-24% to +10%
/// over three seeds; docs/microcircuit.md); the full-scale network is within 8%
/// everywhere (measured with the release binary).
const REL_TOL: f64 = 0.25;
/// Tolerance of the mean relative deviation over the eight populations (measured:
/// 9.6%).
const MEAN_REL_TOL: f64 = 0.12;

/// The reference's default downscaling (N_scaling = K_scaling = 0.1: 7717 neurons,
/// in-degrees x 0.1 with weights x sqrt(10) and the lost mean input as DC): 1.5 s,
/// rates over the last 1 s (the reference's t_presim 500 ms, t_sim 1000 ms).
#[test]
fn downscaled_rates_match_published() {
    let n: u64 = std::env::var("KETASIM_MC_NEURONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7717);
    let k: f64 = std::env::var("KETASIM_MC_K")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.1);
    let seed: u64 = std::env::var("KETASIM_MC_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(55);
    let t0 = std::time::Instant::now();
    let rates = downscaled_rates(n, k, 1500.0, 500.0, seed);
    eprintln!(
        "n = {n} k = {k} seed = {seed}: {rates:?} in {:?}",
        t0.elapsed()
    );
    let mut mean_dev = 0.0;
    for (i, (&r, &p)) in rates.iter().zip(&PUBLISHED_HZ).enumerate() {
        let dev = (r - p).abs() / p;
        mean_dev += dev / 8.0;
        assert!(
            dev <= REL_TOL,
            "population {i}: {r:.3} Hz against the published {p} Hz ({:.0}%)",
            100.0 * dev
        );
    }
    assert!(
        mean_dev <= MEAN_REL_TOL,
        "mean deviation {:.0}% ({rates:?})",
        100.0 * mean_dev
    );
    // The layer structure of PD14: L2/3E and L6E fire least (about 1 Hz), L5E most
    // among the excitatory populations, every inhibitory population above its
    // excitatory partner.
    let [l23e, l23i, l4e, l4i, l5e, l5i, l6e, l6i] = rates[..] else {
        panic!("eight populations")
    };
    assert!(l23e < 1.5 && l6e < 1.5, "{rates:?}");
    assert!(l5e > l4e && l4e > l23e && l4e > l6e, "{rates:?}");
    assert!(
        l23i > l23e && l4i > l4e && l5i > l5e && l6i > l6e,
        "{rates:?}"
    );
}

/// The GPU's propagation gets enough workgroups per spike for one synapse per
/// invocation for every neuron (`SimParams::spike_groups`), sized by the largest
/// out-degree, not the mean: the fixed-total-number rule draws each neuron's
/// out-degree, and at full scale the busiest population's largest ones need more
/// workgroups than its mean does.
#[test]
fn spike_groups_cover_the_largest_out_degree_at_full_scale() {
    use ketasim::model::layout::{RULE_OUTDEGREE, RULE_PROBABILITY};
    use ketasim::model::Network;
    let s = microcircuit();
    let net = Network::build(&s, 1000).expect("full-scale network");
    // Synapses per spike of every neuron, summed over its projections.
    let mut per_neuron = vec![0u64; net.n as usize];
    for pr in net.params.projs.iter().take(net.params.sim.n_proj as usize) {
        assert_ne!(pr.rule, RULE_PROBABILITY, "the microcircuit has none");
        for l in 0..pr.pre_size {
            let degree = if pr.rule == RULE_OUTDEGREE {
                pr.k
            } else {
                let row = (pr.table_base + l) as usize;
                net.tables.rows[row + 1] - net.tables.rows[row]
            };
            per_neuron[(pr.pre_offset + l) as usize] += u64::from(degree);
        }
    }
    let most = per_neuron.iter().copied().max().expect("neurons");
    let total: u64 = per_neuron.iter().sum();
    let groups = net.params.sim.spike_groups as u64;
    eprintln!(
        "synapses per spike: most {most}, mean {:.1}; spike_groups {groups}",
        total as f64 / net.n as f64
    );
    assert_eq!(groups, most.div_ceil(64), "most {most}");
    // Sized by each population's mean out-degree, as before 2026-12-04, the largest
    // out-degrees would take two synapses per invocation.
    let by_mean = (0..net.params.sim.n_pop as usize)
        .map(|p| {
            let pop = &net.params.pops[p];
            let own = &per_neuron[pop.offset as usize..(pop.offset + pop.size) as usize];
            let mean = own.iter().sum::<u64>() as f64 / own.len() as f64;
            eprintln!(
                "population {p}: mean {mean:.1}, most {}",
                own.iter().max().expect("neurons")
            );
            (mean / 64.0).ceil() as u64
        })
        .max()
        .expect("populations");
    assert!(
        by_mean < groups,
        "by the mean {by_mean}, spike_groups {groups}"
    );
}
