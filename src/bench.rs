//! `ketasim bench`: a scaled E/I network (the COBA benchmark's neurons and synapses,
//! Vogels & Abbott 2005 / Brette et al. 2007, with K synapses per neuron by fixed
//! probability p = K/N and weights scaled by 80/K so that the mean input per neuron
//! matches the 4000-neuron model) timed on each backend in one run.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::memory;
use crate::run::{run, BackendChoice, RunOptions};
use crate::scenario::{Rule, Scenario};

/// The COBA scenario text (`assets/scenarios/coba.toml`).
pub const COBA: &str = include_str!("../assets/scenarios/coba.toml");

/// The benchmark network at `n` neurons with `k` synapses per neuron.
///
/// Errors: `n` beyond the neurons a network can address, or `k` above `n` (it would
/// need p = k/n > 1).
pub fn scaled_coba(n: u64, k: u64, steps: u64) -> Result<Scenario> {
    let err = |message: String| Error::Scenario {
        file: format!("<embedded:coba> scaled to {n} neurons x {k} synapses"),
        message,
    };
    if n > crate::model::limits::MAX_NEURONS {
        return Err(err(format!(
            "--neurons {n}: at most {} neurons are addressable",
            crate::model::limits::MAX_NEURONS
        )));
    }
    if k > n {
        return Err(err(format!(
            "--synapses-per-neuron {k} needs p = {k}/{n} > 1 at {n} neurons; choose at most {n} synapses per neuron or more neurons"
        )));
    }
    let mut s = Scenario::from_toml("<embedded:coba>", COBA)?;
    let n_e = (n * 4 / 5).max(1);
    let n_i = (n - n_e).max(1);
    s.name = format!("coba-scaled-{n}-k{k}");
    s.populations[0].size = n_e as i64;
    s.populations[1].size = n_i as i64;
    let p = (k as f64 / n as f64).min(1.0);
    // COBA has 80 inputs per neuron (p = 0.02 of 4000).
    let w_scale = 80.0 / k as f64;
    for pr in &mut s.projections {
        pr.p = Some(p);
        pr.weight_nS = pr.weight_nS.map(|w| w * w_scale);
    }
    s.duration_ms = steps as f64 * s.dt_ms;
    Ok(s)
}

/// Steps one neuron-update dispatch of `s` advances on `backend` ("gpu": the
/// network's `fuse_steps`, capped by `KETASIM_FUSE_STEPS`; the CPU backend steps one
/// at a time).
pub fn fused_steps(s: &Scenario, backend: &str) -> u32 {
    if backend != "gpu" {
        return 1;
    }
    let steps = crate::model::fuse_steps(s);
    // A malformed variable has already stopped the run itself.
    crate::gpu::capped_fuse_steps(steps).unwrap_or(steps)
}

/// Device bytes one neuron-step of `s` moves on `backend` (`memory::bytes_per_neuron_step`
/// at the scenario's sample interval, with its mean numbers per neuron of NMDA pools,
/// state words and ring-buffer entries, and [`fused_steps`]). A conductance-based
/// neuron has 5 state words (V, refractory count, g_AMPA, g_GABA, x_NMDA) and a
/// current-based one 4 (no x_NMDA); each reads and clears the entries of its two
/// synaptic channels every step, and a conductance-based one that of the NMDA channel
/// too where some projection or drive of the network feeds it (otherwise the kernels
/// leave that ring buffer alone: `gpu::shaders::Features::nmda_input`).
pub fn bytes_per_neuron_step(s: &Scenario, backend: &str) -> f64 {
    use crate::scenario::{Receptor, SynapseKind};
    let sample_interval = (s.record.sample_interval_ms / s.dt_ms).round() as u32;
    let nmda = Receptor::Nmda.index();
    let nmda_input = s.projections.iter().any(|p| p.channel() == nmda)
        || s.drives.iter().any(|d| d.channel() == nmda);
    let n = s.neuron_count() as f64;
    let (mut pools, mut state_words, mut ring_entries) = (0.0, 0.0, 0.0);
    for p in &s.populations {
        let size = p.size as f64;
        let conductance = p.synapse == SynapseKind::Conductance;
        pools += size * p.nmda.as_ref().map_or(0, |m| m.pool_specs().len()) as f64;
        state_words += size * if conductance { 5.0 } else { 4.0 };
        ring_entries += size * if conductance && nmda_input { 3.0 } else { 2.0 };
    }
    memory::bytes_per_neuron_step(
        sample_interval,
        &memory::NeuronTraffic {
            pools_per_neuron: pools / n,
            state_words_per_neuron: state_words / n,
            ring_entries_per_neuron: ring_entries / n,
        },
        fused_steps(s, backend),
    )
}

/// One benchmark measurement.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    /// "cpu" or "gpu".
    pub backend: String,
    /// Adapter description.
    pub adapter: String,
    /// Neurons.
    pub neurons: u64,
    /// Synapses (expected).
    pub synapses: f64,
    /// Steps timed.
    pub steps: u64,
    /// Build + upload (s).
    pub build_s: f64,
    /// Simulation loop (s).
    pub wall_s: f64,
    /// Neuron updates per second.
    pub neuron_updates_per_s: f64,
    /// Synaptic events per second.
    pub synaptic_events_per_s: f64,
    /// Real-time factor.
    pub rtf: f64,
    /// Device bytes per neuron-step (model of the kernel's traffic).
    pub bytes_per_neuron_step: f64,
    /// Achieved neuron-state bandwidth (GB/s) = updates/s x bytes per neuron-step.
    pub achieved_gb_per_s: f64,
    /// Mean excitatory rate (Hz).
    pub rate_e_hz: f64,
    /// Mean inhibitory rate (Hz).
    pub rate_i_hz: f64,
}

/// Run the benchmark for every size and backend.
pub fn bench(
    sizes: &[u64],
    k: u64,
    steps: u64,
    backends: &[BackendChoice],
) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    for &n in sizes {
        let s = scaled_coba(n, k, steps)?;
        for &b in backends {
            let opts = RunOptions {
                backend: b,
                progress: false,
                ..RunOptions::default()
            };
            let r = run(&s, &opts)?.summary;
            let bps = bytes_per_neuron_step(&s, &r.backend);
            rows.push(BenchRow {
                backend: r.backend,
                adapter: r.adapter,
                neurons: r.neurons,
                synapses: r.synapses,
                steps: r.steps,
                build_s: r.build_s,
                wall_s: r.wall_s,
                neuron_updates_per_s: r.neuron_updates_per_s,
                synaptic_events_per_s: r.synaptic_events_per_s,
                rtf: r.rtf,
                bytes_per_neuron_step: bps,
                achieved_gb_per_s: r.neuron_updates_per_s * bps * 1e-9,
                rate_e_hz: r.populations[0].rate_hz,
                rate_i_hz: r.populations[1].rate_hz,
            });
        }
    }
    Ok(rows)
}

/// A Markdown table of benchmark rows.
pub fn table(rows: &[BenchRow]) -> String {
    let mut t = String::from(
        "| backend | neurons | synapses | steps | wall s | neuron-updates/s | syn. events/s | RTF | B/neuron-step | GB/s | E Hz | I Hz |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        t.push_str(&format!(
            "| {} | {} | {:.3e} | {} | {:.3} | {:.3e} | {:.3e} | {:.3} | {:.1} | {:.2} | {:.2} | {:.2} |\n",
            r.backend,
            r.neurons,
            r.synapses,
            r.steps,
            r.wall_s,
            r.neuron_updates_per_s,
            r.synaptic_events_per_s,
            r.rtf,
            r.bytes_per_neuron_step,
            r.achieved_gb_per_s,
            r.rate_e_hz,
            r.rate_i_hz
        ));
    }
    t
}

// ---------------------------------------------------------------------------------
// `ketasim bench --suite standard|quick`: a fixed set of networks on every backend.
// ---------------------------------------------------------------------------------

/// Which set of networks `bench --suite` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// COBA at 4000 neurons (as published) and scaled to 1e5 and 1e6 neurons with
    /// 1000 synapses per neuron; the ketamine network at its own size, at 1e5, and
    /// at 1e6 with 1000 synapses per neuron; the Potjans-Diesmann microcircuit.
    /// Meant for real GPUs.
    Standard,
    /// Small sizes and a few hundred steps: tests and CI.
    Quick,
}

impl Suite {
    /// "standard" or "quick".
    pub fn label(self) -> &'static str {
        match self {
            Suite::Standard => "standard",
            Suite::Quick => "quick",
        }
    }

    /// Bytes of one buffer of the bandwidth probe (`crate::stream`), capped at the
    /// device's storage binding: large enough that caches do not hold it (quick: a
    /// check that the probe runs).
    pub fn stream_buffer_bytes(self) -> u64 {
        match self {
            Suite::Standard => 256 << 20,
            Suite::Quick => 8 << 20,
        }
    }

    /// Dependent dispatches per pass, and timed passes, of the dispatch probe
    /// (`crate::stream::measure_dispatch`): enough dispatches that a pass's own
    /// begin and end weigh little (quick: a check that the probe runs).
    pub fn dispatch_probe(self) -> (u32, u32) {
        match self {
            Suite::Standard => (1000, 5),
            Suite::Quick => (50, 3),
        }
    }

    /// Timed passes of the bandwidth probe.
    pub fn stream_passes(self) -> u32 {
        match self {
            Suite::Standard => 20,
            Suite::Quick => 3,
        }
    }

    /// Untimed warm-up steps run before each timed run.
    pub fn warmup_steps(self) -> u64 {
        match self {
            Suite::Standard => 200,
            Suite::Quick => 20,
        }
    }
}

/// Embedded scenario name of the ketamine network.
pub const KETAMINE_SCENARIO: &str = "pfc_ketamine";
/// Neurons of each ketamine circuit in the suites' batch entry (the smallest size
/// at which `scale_scenario` keeps its p = 0.1 in-degrees: p becomes 1).
pub const BATCH_NETWORK_NEURONS: u64 = 400;
/// Embedded scenario name of the Potjans-Diesmann cortical microcircuit.
pub const MICROCIRCUIT_SCENARIO: &str = "microcircuit";

/// Where a suite entry's network comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkSource {
    /// The embedded `coba` scenario as it is (4000 neurons, 80 synapses per neuron).
    Coba,
    /// [`scaled_coba`] at `n` neurons with `k` synapses per neuron.
    ScaledCoba {
        /// Neurons.
        n: u64,
        /// Synapses per neuron.
        k: u64,
    },
    /// An embedded scenario (skipped, with a note, while it is not compiled in), at
    /// its own size or scaled by [`scale_scenario`] to `n` neurons, optionally with
    /// `k` synapses per neuron.
    Embedded {
        /// Name in `scenario::EMBEDDED`.
        name: &'static str,
        /// Target size; `None`: the scenario's own size.
        n: Option<u64>,
        /// Synapses per neuron ([`with_synapses_per_neuron`], after scaling);
        /// `None`: the scenario's own.
        k: Option<u64>,
    },
}

/// One network of a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteEntry {
    /// Unique id of the entry (network and size).
    pub id: String,
    /// Network family: "coba", "coba-scaled", "pfc_ketamine", "microcircuit".
    pub network: &'static str,
    /// How the network is built.
    pub source: NetworkSource,
    /// Steps timed.
    pub steps: u64,
    /// Copies of the network run side by side in one simulation (`Network::merge`,
    /// seeds `seed`, `seed + 1`, ...), as `ketasim sweep` batches its runs; 1: the
    /// network alone.
    pub copies: u32,
}

/// The entries of a suite, in the order they run.
pub fn suite_entries(suite: Suite) -> Vec<SuiteEntry> {
    let coba = |steps| SuiteEntry {
        id: "coba".into(),
        network: "coba",
        source: NetworkSource::Coba,
        steps,
        copies: 1,
    };
    let scaled = |n: u64, steps| SuiteEntry {
        id: format!("coba-scaled-n{n}-k1000"),
        network: "coba-scaled",
        source: NetworkSource::ScaledCoba { n, k: 1000 },
        steps,
        copies: 1,
    };
    // Many small ketamine circuits in one simulation (a sweep's batch): 400 neurons
    // each (scaled with the in-degree kept: all-to-all at p = 1).
    let batch = |copies: u32, steps| SuiteEntry {
        id: format!("{KETAMINE_SCENARIO}-n{BATCH_NETWORK_NEURONS}-x{copies}"),
        network: "pfc_ketamine-batch",
        source: NetworkSource::Embedded {
            name: KETAMINE_SCENARIO,
            n: Some(BATCH_NETWORK_NEURONS),
            k: None,
        },
        steps,
        copies,
    };
    let embedded_k = |name: &'static str, n: Option<u64>, k: Option<u64>, steps| SuiteEntry {
        id: match n {
            Some(n) => format!("{name}-n{n}"),
            None => name.to_string(),
        } + &k.map_or(String::new(), |k| format!("-k{k}")),
        network: name,
        source: NetworkSource::Embedded { name, n, k },
        steps,
        copies: 1,
    };
    let embedded = |name, n, steps| embedded_k(name, n, None, steps);
    match suite {
        Suite::Standard => vec![
            coba(10_000),
            scaled(100_000, 2000),
            scaled(1_000_000, 500),
            embedded(KETAMINE_SCENARIO, None, 10_000),
            embedded(KETAMINE_SCENARIO, Some(100_000), 2000),
            // Issue 6's target network: 10^6 neurons, 1000 synapses per neuron.
            embedded_k(KETAMINE_SCENARIO, Some(1_000_000), Some(1000), 500),
            embedded(MICROCIRCUIT_SCENARIO, None, 2000),
            batch(1000, 2000),
        ],
        Suite::Quick => vec![
            coba(300),
            scaled(10_000, 300),
            embedded(KETAMINE_SCENARIO, None, 300),
            embedded_k(KETAMINE_SCENARIO, Some(10_000), Some(1000), 300),
            embedded(MICROCIRCUIT_SCENARIO, Some(10_000), 300),
            batch(25, 300),
        ],
    }
}

/// Scale a scenario to `n` neurons: every population is resized in proportion
/// (largest-remainder rounding, so the sizes sum to exactly `n`, each at least 1), and
/// the expected in-degree of every projection is kept: `p` of a `fixed_probability`
/// projection is multiplied by old/new size of its presynaptic population (about
/// old_N/new_N); `k` of `fixed_indegree` is kept as is, and so is `k` of
/// `fixed_outdegree` (pre and post scale alike, so the in-degree k N_pre/N_post stays);
/// `n` of `fixed_total_number` scales with its postsynaptic population (in-degree
/// n/N_post kept, at least one synapse). Weights, drives, neuron parameters and recording are unchanged, so the mean input
/// per neuron is that of the original network. The result is named `NAME-nN` and
/// validated.
///
/// Errors: `n` smaller than the number of populations, or a `p` that would exceed 1
/// (the in-degree cannot be kept at that size).
pub fn scale_scenario(s: &Scenario, n: u64) -> Result<Scenario> {
    let err = |message: String| Error::Scenario {
        file: format!("<scaled:{}>", s.name),
        message,
    };
    let n_pop = s.populations.len() as u64;
    if n < n_pop || n == 0 {
        return Err(err(format!(
            "cannot scale to {n} neurons: the scenario has {n_pop} populations and each needs at least one neuron"
        )));
    }
    if n > (u32::MAX / 2) as u64 {
        return Err(err(format!(
            "cannot scale to {n} neurons: at most {} are supported",
            u32::MAX / 2
        )));
    }
    let old_n = s.neuron_count();
    if old_n == 0 {
        return Err(err("the scenario has no neurons to scale".into()));
    }
    let f = n as f64 / old_n as f64;
    let target: Vec<f64> = s
        .populations
        .iter()
        .map(|p| p.size.max(0) as f64 * f)
        .collect();
    let mut size: Vec<i64> = target.iter().map(|t| (t.floor() as i64).max(1)).collect();
    let mut total: i64 = size.iter().sum();
    // Largest remainder: add where the size falls furthest below its target, remove
    // (never below 1) where it lies furthest above.
    while total < n as i64 {
        let i = (0..size.len())
            .max_by(|&a, &b| (target[a] - size[a] as f64).total_cmp(&(target[b] - size[b] as f64)))
            .unwrap_or(0);
        size[i] += 1;
        total += 1;
    }
    while total > n as i64 {
        let Some(i) = (0..size.len())
            .filter(|&i| size[i] > 1)
            .max_by(|&a, &b| (size[a] as f64 - target[a]).total_cmp(&(size[b] as f64 - target[b])))
        else {
            break;
        };
        size[i] -= 1;
        total -= 1;
    }
    let mut out = s.clone();
    for (p, &new) in out.populations.iter_mut().zip(&size) {
        p.size = new;
    }
    for (j, pr) in out.projections.iter_mut().enumerate() {
        if pr.rule == Rule::FixedTotalNumber {
            // The in-degree n / N_post is kept: n scales with the postsynaptic size.
            if let (Some(i), Some(n)) = (s.population_index(&pr.post), pr.n) {
                let scaled = n as f64 * size[i] as f64 / s.populations[i].size.max(1) as f64;
                pr.n = Some((scaled.round() as i64).max(1));
            }
            continue;
        }
        if pr.rule != Rule::FixedProbability {
            continue;
        }
        let Some(i) = s.population_index(&pr.pre) else {
            continue;
        };
        let (old_pre, new_pre) = (s.populations[i].size as f64, size[i] as f64);
        if let Some(p) = pr.p {
            let q = p * old_pre / new_pre;
            if q > 1.0 {
                return Err(err(format!(
                    "projections[{j}] ({} -> {}): keeping the in-degree {:.1} at {new_pre} presynaptic neurons needs p = {q:.3} > 1; scale to at least {} neurons",
                    pr.pre,
                    pr.post,
                    p * old_pre,
                    ((p * old_n as f64).ceil() as u64).max(n_pop)
                )));
            }
            pr.p = Some(q);
        }
    }
    if n != old_n {
        out.name = format!("{}-n{n}", s.name);
    }
    out.validate().map_err(err)?;
    Ok(out)
}

/// `s` with `k` synapses per neuron on average (all projections, as
/// `summary.json`'s synapses over neurons), the way [`scaled_coba`] scales COBA:
/// every projection's expected count times f = k / (the scenario's synapses per
/// neuron), by its own parameter (`p`, `k` or `n`, whole numbers rounded), and
/// every weight and NMDA drive divided by f, so that the mean synaptic input per
/// neuron is kept. Named `NAME-kK` and validated.
///
/// Errors: a scenario without synapses, or a `p` that would exceed 1.
pub fn with_synapses_per_neuron(s: &Scenario, k: u64) -> Result<Scenario> {
    let err = |message: String| Error::Scenario {
        file: format!("<k-scaled:{}>", s.name),
        message,
    };
    let now: f64 = s
        .projections
        .iter()
        .map(|pr| crate::model::expected_synapses(s, pr))
        .sum::<f64>()
        / s.neuron_count().max(1) as f64;
    if now <= 0.0 {
        return Err(err(format!(
            "cannot give {k} synapses per neuron: the scenario has no synapses to scale"
        )));
    }
    let f = k as f64 / now;
    let mut out = s.clone();
    for (j, pr) in out.projections.iter_mut().enumerate() {
        let whole = |x: i64| ((x as f64 * f).round() as i64).max(1);
        match pr.rule {
            Rule::FixedProbability => {
                let p = pr.p.unwrap_or(0.0) * f;
                if p > 1.0 {
                    return Err(err(format!(
                        "projections[{j}] ({} -> {}): {k} synapses per neuron need p = {p:.3} > 1; choose fewer synapses or a larger network",
                        pr.pre, pr.post
                    )));
                }
                pr.p = Some(p);
            }
            Rule::FixedOutdegree | Rule::FixedIndegree => pr.k = pr.k.map(whole),
            Rule::FixedTotalNumber => pr.n = pr.n.map(whole),
        }
        pr.weight_nS = pr.weight_nS.map(|w| w / f);
        pr.weight_pA = pr.weight_pA.map(|w| w / f);
        pr.weight_sd_pA = pr.weight_sd_pA.map(|w| w / f);
        pr.drive = pr.drive.map(|d| d / f);
    }
    out.name = format!("{}-k{k}", s.name);
    out.validate().map_err(err)?;
    Ok(out)
}

/// Smallest scaled out-degree [`scale_indegrees`] keeps as a whole `fixed_outdegree`
/// (rounding it changes the in-degree by at most 2.5%).
pub const KSCALE_MIN_OUTDEGREE: f64 = 20.0;

/// Scale the in-degrees of a scenario's current-based populations by `k_scaling`
/// (in (0, 1]) the way the Potjans-Diesmann reference implementation does
/// (`K_scaling`, `helpers.adjust_weights_and_input_to_synapse_scaling`, after van
/// Albada, Helias & Diesmann 2015, PLoS Comput Biol 11:e1004490): in-degrees and
/// background in-degrees times K, weights (`weight_pA`, `weight_sd_pA` and the
/// drives' `weight_pA`) divided by sqrt(K), so the input's variance is kept, and a
/// constant current added to every current-based population to keep the mean input,
/// `i_ext_pA += (1 - sqrt K) sum_inputs w tau_syn K_in rate` (tau_syn_ex_ms for
/// excitatory inputs, tau_syn_in_ms for inhibitory ones), with the presynaptic rates
/// of the full network given in `full_rates_hz` (one per population, in order; the
/// reference uses its `full_mean_rates`) and the drives at their own rates. A
/// `fixed_total_number` projection keeps its rule with `n` x K rounded (at least
/// one synapse), as the reference does. A `fixed_outdegree` projection keeps its
/// rule with `k` x K rounded where that is at least [`KSCALE_MIN_OUTDEGREE`]; any
/// other scaled projection becomes `fixed_probability` with `p = K_in K / N_pre`
/// (small in-degrees such as 1.5 x K cannot be whole out-degrees; there p is small
/// and the in-degree's binomial spread is close to the reference's;
/// `fixed_probability` would narrow the Poisson-like spread of `fixed_total_number`
/// where p is large, 0.47 for L5I -> L5E at N = K = 0.1). Projections onto
/// conductance-based populations are not changed.
/// Combine with [`scale_scenario`] (which keeps the in-degrees) for `N_scaling`.
pub fn scale_indegrees(s: &Scenario, k_scaling: f64, full_rates_hz: &[f64]) -> Result<Scenario> {
    let err = |message: String| Error::Scenario {
        file: format!("<K-scaled:{}>", s.name),
        message,
    };
    if !(k_scaling > 0.0 && k_scaling <= 1.0) {
        return Err(err(format!(
            "k_scaling must be in (0, 1] (got {k_scaling})"
        )));
    }
    if full_rates_hz.len() != s.populations.len() {
        return Err(err(format!(
            "full_rates_hz has {} rates for {} populations",
            full_rates_hz.len(),
            s.populations.len()
        )));
    }
    let current = |name: &str| {
        s.population_index(name)
            .is_some_and(|i| s.populations[i].synapse == crate::scenario::SynapseKind::Current)
    };
    let sq = k_scaling.sqrt();
    let tau = |post: usize, w: f64| {
        let n = &s.populations[post].neuron;
        let t = if w >= 0.0 {
            n.tau_syn_ex_ms
        } else {
            n.tau_syn_in_ms
        };
        t.unwrap_or(crate::scenario::DEFAULT_TAU_SYN_MS)
    };
    let mut out = s.clone();
    // Mean input current (pA) lost per population: (1 - sqrt K) w tau K_in rate.
    let mut dc = vec![0.0f64; s.populations.len()];
    for (j, pr) in out.projections.iter_mut().enumerate() {
        if !current(&pr.post) {
            continue;
        }
        let (Some(pre), Some(post)) = (s.population_index(&pr.pre), s.population_index(&pr.post))
        else {
            continue;
        };
        let (n_pre, n_post) = (
            s.populations[pre].size as f64,
            s.populations[post].size as f64,
        );
        let k_in = match pr.rule {
            Rule::FixedProbability => pr.p.unwrap_or(0.0) * n_pre,
            Rule::FixedIndegree => pr.k.unwrap_or(0) as f64,
            Rule::FixedOutdegree => pr.k.unwrap_or(0) as f64 * n_pre / n_post,
            Rule::FixedTotalNumber => pr.n.unwrap_or(0) as f64 / n_post,
        };
        let w = pr.weight_pA.unwrap_or(0.0);
        dc[post] += (1.0 - sq) * w * tau(post, w) * 1e-3 * k_in * full_rates_hz[pre];
        let k_out = k_in * n_post / n_pre * k_scaling;
        if pr.rule == Rule::FixedOutdegree && k_out >= KSCALE_MIN_OUTDEGREE {
            // Whole out-degrees (rounded by at most 2.5%) keep the in-degrees'
            // Poisson-like spread of fixed_total_number.
            pr.k = Some(k_out.round() as i64);
        } else if pr.rule == Rule::FixedTotalNumber && k_out * n_pre >= 1.0 {
            // The same rule with K times the synapses.
            pr.n = Some((k_out * n_pre).round() as i64);
        } else {
            let p = k_in * k_scaling / n_pre;
            if p > 1.0 {
                return Err(err(format!(
                    "projections[{j}] ({} -> {}): in-degree {:.1} x K over {n_pre} presynaptic neurons needs p = {p:.3} > 1",
                    pr.pre, pr.post, k_in
                )));
            }
            pr.rule = Rule::FixedProbability;
            pr.k = None;
            pr.n = None;
            pr.p = Some(p);
        }
        pr.weight_pA = Some(w / sq);
        pr.weight_sd_pA = pr.weight_sd_pA.map(|sd| sd / sq);
    }
    for d in out.drives.iter_mut() {
        if !current(&d.population) {
            continue;
        }
        let Some(post) = s.population_index(&d.population) else {
            continue;
        };
        let w = d.weight_pA.unwrap_or(0.0);
        dc[post] += (1.0 - sq) * w * tau(post, w) * 1e-3 * d.rate_hz;
        d.rate_hz *= k_scaling;
        d.weight_pA = Some(w / sq);
    }
    for (p, add) in out.populations.iter_mut().zip(&dc) {
        p.neuron.i_ext_pA += add;
    }
    if k_scaling != 1.0 {
        out.name = format!("{}-k{k_scaling}", s.name);
    }
    out.validate().map_err(err)?;
    Ok(out)
}

/// Peak memory bandwidth (GB/s, vendor data sheets) of the GPUs ketasim knows, by
/// the exact adapter name their drivers report. Any other adapter: unknown.
pub const PEAK_BANDWIDTH_GB_PER_S: &[(&str, f64)] = &[
    ("NVIDIA H100 80GB HBM3", 3350.0), // H100 SXM5
    ("NVIDIA H100 PCIe", 2000.0),
    ("NVIDIA H200", 4800.0), // H200 SXM
    ("NVIDIA A100-SXM4-80GB", 2039.0),
    ("NVIDIA GeForce RTX 4090", 1008.0),
];

/// Peak bandwidth of an adapter ("NAME" or "NAME (API, type)" as the backends
/// describe it) if its name is exactly one of [`PEAK_BANDWIDTH_GB_PER_S`]; `None`
/// otherwise (never guessed from a similar name).
pub fn peak_bandwidth_gb_per_s(adapter: &str) -> Option<f64> {
    let adapter = adapter.trim();
    let name = match adapter.rfind(" (") {
        Some(i) if adapter.ends_with(')') => &adapter[..i],
        _ => adapter,
    };
    PEAK_BANDWIDTH_GB_PER_S
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name.trim()))
        .map(|&(_, gb)| gb)
}

/// Whether a backend could be used in a suite run.
#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    /// "cpu" or "gpu"; "gpu[I]" for each GPU where the suite runs on several (I: the
    /// adapter's index in `ketasim devices`), as the rows name their backend.
    pub backend: String,
    /// Whether it runs.
    pub available: bool,
    /// Adapter description, when available.
    pub adapter: Option<String>,
    /// The adapter's index in `ketasim devices` where the suite chose it
    /// (`gpu::suite_adapters`); null for the CPU and where `KETASIM_ADAPTER` or wgpu
    /// chose.
    pub adapter_index: Option<usize>,
    /// Adapters this one stands for and that were not benched apart: identical cards,
    /// or the same GPU through another API (indices in `ketasim devices`).
    pub same_as: Vec<usize>,
    /// Why not, when unavailable.
    pub reason: Option<String>,
}

/// One backend a suite runs on: the CPU, or a GPU (`adapter`: its index in `ketasim
/// devices`, or `None` for the one [`crate::gpu::GpuContext::new`] takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    choice: BackendChoice,
    adapter: Option<usize>,
}

/// The GPUs a suite that wants one runs on, each with its status: with
/// `KETASIM_ADAPTER` set, the adapter it names; else every GPU that
/// [`crate::gpu::suite_adapters`] picks (one per model); where none is usable, the
/// reason wgpu's preferred adapter gives. A GPU whose device cannot be had is marked
/// unavailable; an adapter that `KETASIM_ADAPTER` names and cannot be taken stops
/// the suite (`Err`).
fn suite_gpus() -> Result<Vec<(Target, BackendStatus)>> {
    use crate::gpu::{GpuContext, ADAPTER_ENV};
    let status = |adapter_index: Option<usize>, same_as: Vec<usize>, ctx: Result<GpuContext>| {
        let (available, adapter, reason) = match ctx {
            Ok(c) => (true, Some(c.describe()), None),
            Err(e @ Error::NoGpu(_)) => (false, None, Some(e.to_string())),
            Err(e) => return Err(e),
        };
        Ok(BackendStatus {
            backend: "gpu".into(),
            available,
            adapter,
            adapter_index,
            same_as,
            reason,
        })
    };
    let picks = if std::env::var_os(ADAPTER_ENV).is_some() {
        Vec::new()
    } else {
        crate::gpu::suite_adapters(&crate::gpu::list_adapters())
    };
    if picks.is_empty() {
        let target = Target {
            choice: BackendChoice::Gpu,
            adapter: None,
        };
        return Ok(vec![(target, status(None, Vec::new(), GpuContext::new())?)]);
    }
    let several = picks.len() > 1;
    picks
        .into_iter()
        .map(|p| {
            let mut st = status(
                Some(p.index),
                p.same_as,
                GpuContext::open(Some(p.index), false),
            )?;
            if several {
                st.backend = format!("gpu[{}]", p.index);
            }
            let target = Target {
                choice: BackendChoice::Gpu,
                adapter: Some(p.index),
            };
            Ok((target, st))
        })
        .collect()
}

/// One population's rate in a suite row.
#[derive(Debug, Clone, Serialize)]
pub struct PopulationRate {
    /// Name.
    pub name: String,
    /// Neurons.
    pub size: u32,
    /// Mean rate over the timed run (Hz).
    pub rate_hz: f64,
}

/// One (network, backend) row of a suite. Measured fields are null unless `status` is
/// "ok".
#[derive(Debug, Clone, Serialize)]
pub struct SuiteRow {
    /// Entry id (network and size), unique in the suite.
    pub entry: String,
    /// Network family.
    pub network: String,
    /// Scenario name as run (after scaling).
    pub scenario: Option<String>,
    /// "cpu" or "gpu".
    pub backend: String,
    /// "ok", "skipped" (backend unavailable, or the network cannot be built at this
    /// size), "not_available" (scenario not embedded yet) or "error" (the run failed).
    pub status: String,
    /// Why a row is not "ok", or how the network was made.
    pub note: String,
    /// Adapter description.
    pub adapter: Option<String>,
    /// Neurons.
    pub neurons: Option<u64>,
    /// Synapses (expected count for procedural fixed-probability projections).
    pub synapses: Option<f64>,
    /// Synapses per neuron (mean in-degree).
    pub synapses_per_neuron: Option<f64>,
    /// Time step (ms).
    pub dt_ms: Option<f64>,
    /// Simulated time of the timed run (ms).
    pub duration_ms: Option<f64>,
    /// Steps timed.
    pub steps: u64,
    /// Untimed warm-up steps run before (a separate run of the same network on the
    /// same backend, discarded).
    pub warmup_steps: u64,
    /// What the timing includes and excludes.
    pub warmup: String,
    /// Network construction, upload and pipeline build of the timed run (s); not in
    /// `wall_s`.
    pub build_s: Option<f64>,
    /// Simulation loop (s).
    pub wall_s: Option<f64>,
    /// Real-time factor: wall_s / simulated seconds.
    pub rtf: Option<f64>,
    /// Neuron updates per second.
    pub neuron_updates_per_s: Option<f64>,
    /// Synaptic events per second.
    pub synaptic_events_per_s: Option<f64>,
    /// Device bytes per neuron-step (`model::memory::bytes_per_neuron_step`).
    pub bytes_per_neuron_step: Option<f64>,
    /// Achieved neuron-state bandwidth: neuron_updates_per_s x bytes_per_neuron_step
    /// (GB/s).
    pub achieved_gb_per_s: Option<f64>,
    /// The adapter's peak memory bandwidth (GB/s), if it is a known GPU.
    pub peak_gb_per_s: Option<f64>,
    /// achieved / peak.
    pub peak_fraction: Option<f64>,
    /// Population rates over the timed run.
    pub populations: Vec<PopulationRate>,
    /// GPU time per kernel from timestamp queries, taken in the warm-up run (see
    /// `warmup_policy`); null on the CPU, when the adapter has no timestamp queries,
    /// or when the row did not run.
    pub kernel_times: Option<Vec<crate::gpu::KernelTime>>,
    /// Steps whose kernels were timed for `kernel_times`.
    pub kernel_timed_steps: Option<u64>,
    /// Steps one neuron-update dispatch advanced at most (`SimParams::fuse_steps`;
    /// 1 on the CPU backend, which steps one at a time).
    pub fuse_steps: Option<u32>,
    /// Mean GPU time of `neuron_update` per step (µs), from `kernel_times`.
    pub neuron_update_us: Option<f64>,
    /// bytes_per_neuron_step x neurons / neuron_update time (GB/s): the neuron
    /// kernel's own bandwidth, to set against the whole-step `achieved_gb_per_s`.
    pub neuron_update_gb_per_s: Option<f64>,
    /// neuron_update_gb_per_s / the median bandwidth of the same backend's probe
    /// (`SuiteReport::stream`): the neuron update's share of what a plain copy
    /// reaches on the device (GPU rows with kernel times).
    pub neuron_update_stream_fraction: Option<f64>,
    /// Host (CPU) time per step spent recording the GPU's commands (µs), over the
    /// untimed first half of the warm-up run (`gpu::HostTimes::record_ns`): most of
    /// it overlaps the device's work, as a batch goes out in submissions of
    /// `gpu::CHUNKS_PER_SUBMIT` chunks. Null on the CPU.
    pub host_record_us: Option<f64>,
    /// Host time per step inside `Queue::submit` (µs; `gpu::HostTimes::submit_ns`):
    /// short where the driver queues the work and returns, most of the device's time
    /// where it waits for the previous submission (lavapipe).
    pub host_submit_us: Option<f64>,
    /// The part of `host_record_us` before each batch's first submission, when the
    /// device has nothing of the batch to run (`gpu::HostTimes::exposed_ns`), per
    /// step (µs).
    pub host_exposed_us: Option<f64>,
}

/// A whole suite run: what `bench --suite` writes as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// "suite".
    pub benchmark: String,
    /// "standard" or "quick".
    pub suite: Suite,
    /// ketasim version.
    pub ketasim_version: String,
    /// The timing policy of every row.
    pub warmup_policy: String,
    /// The backends asked for and whether they ran.
    pub backends: Vec<BackendStatus>,
    /// The memory-bandwidth probe (STREAM copy, `crate::stream`) of each available
    /// backend, run before the networks.
    pub stream: Vec<StreamRow>,
    /// The dispatch probe (`crate::stream::measure_dispatch`) of each available GPU
    /// backend, run before the networks: the floor under a step's time there.
    pub dispatch: Vec<DispatchRow>,
    /// One row per (entry, backend), entries in suite order.
    pub results: Vec<SuiteRow>,
}

/// One backend's probe in a suite: its result, or why it did not run.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeRow<R> {
    /// "cpu" or "gpu".
    pub backend: String,
    /// "ok" or "error".
    pub status: String,
    /// Why not, when it failed.
    pub note: Option<String>,
    /// The measurement, when it ran.
    pub result: Option<R>,
}

impl<R> ProbeRow<R> {
    /// The row of `backend`'s probe `what`: "ok" with its result, or "error" with
    /// why.
    fn of(backend: &str, what: &str, measured: Result<R>) -> Self {
        match measured {
            Ok(r) => ProbeRow {
                backend: backend.to_string(),
                status: "ok".into(),
                note: None,
                result: Some(r),
            },
            Err(e) => ProbeRow {
                backend: backend.to_string(),
                status: "error".into(),
                note: Some(format!("{what} failed: {e}")),
                result: None,
            },
        }
    }
}

/// One backend's bandwidth probe in a suite.
pub type StreamRow = ProbeRow<crate::stream::StreamResult>;

/// One GPU backend's dispatch probe in a suite.
pub type DispatchRow = ProbeRow<crate::stream::DispatchResult>;

impl SuiteReport {
    /// Rows whose run failed.
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.status == "error").count()
    }
}

fn warmup_policy(warmup_steps: u64) -> String {
    format!(
        "untimed warm-up run of {warmup_steps} steps of the same network on the same backend first (discarded); the timed run is then built afresh and starts at t = 0 (initial transient included); build time (construction, upload, pipeline compilation) is excluded from wall_s and reported as build_s. On the GPU the warm-up run is also the profiled run: where the adapter has timestamp queries, each kernel dispatch of the second half of its steps (at most {} chunks of fused steps per batch; fuse_steps gives the chunk length) runs in a compute pass of its own between two GPU timestamps (kernel_times; kernel_timed_steps says how many steps); the timed run takes no timestamps, so wall_s is unaffected",
        crate::gpu::MAX_TIMED_STEPS_PER_BATCH
    )
}

/// The GPU warm-up run, profiled: the network built as `run` builds it, on a device
/// with timestamp queries where the adapter has them, its batches run as `run` runs
/// them (continuous protocol, so no window gaps). The first half of the steps run
/// untimed (first dispatches carry one-off costs such as lazy shader compilation in
/// software drivers); the second half is timed. Returns the number of steps timed
/// and the kernel times, or `None` when the adapter has no timestamp queries; and the
/// host's recording time over the untimed half (`GpuBackend::host_times`).
#[allow(clippy::type_complexity)]
fn gpu_warmup_profiled(
    s: &Scenario,
    copies: u32,
    batch_steps: u32,
    adapter: Option<usize>,
) -> Result<(
    Option<(u64, Vec<crate::gpu::KernelTime>)>,
    crate::gpu::HostTimes,
)> {
    use crate::backend::Backend;
    let net = entry_network(s, copies, batch_steps)?;
    let mut b = crate::gpu::GpuBackend::new(crate::gpu::GpuContext::open(adapter, true)?, &net)?;
    let untimed = net.steps / 2;
    let sizes: Vec<u32> = net.pops().iter().map(|p| p.size).collect();
    let mut timing = false;
    let mut done = 0u64;
    let mut host = crate::gpu::HostTimes::default();
    while done < net.steps {
        if done == untimed && !timing {
            host = b.host_times();
            timing = b.enable_kernel_timing()?;
            if !timing {
                return Ok((None, host));
            }
        }
        let limit = if done < untimed {
            untimed - done
        } else {
            batch_steps as u64
        };
        let steps = net.batch_len(done, limit.min(batch_steps as u64));
        b.set_drug(net.drug_at(done, steps))?;
        let out = b.run_batch(steps)?;
        crate::backend::check_stable(&out, &net.pop_names, &sizes, net.scenario.dt_ms)?;
        done += steps as u64;
    }
    if !timing {
        return Ok((None, host));
    }
    let times = b.kernel_times();
    let timed = times.first().map_or(0, |t| t.steps);
    Ok((Some((timed, times)), host))
}

/// Rate per population; the copies of a batch (`NAME#k`) pooled under `NAME` (all
/// their spikes over all their neurons).
fn population_rates(pops: &[crate::run::PopulationSummary]) -> Vec<PopulationRate> {
    let mut out: Vec<PopulationRate> = Vec::new();
    for p in pops {
        let name = p.name.split('#').next().unwrap_or(&p.name);
        match out.iter_mut().find(|q| q.name == name) {
            Some(q) => {
                let size = q.size + p.size;
                q.rate_hz = (q.rate_hz * q.size as f64 + p.rate_hz * p.size as f64) / size as f64;
                q.size = size;
            }
            None => out.push(PopulationRate {
                name: name.to_string(),
                size: p.size,
                rate_hz: p.rate_hz,
            }),
        }
    }
    out
}

/// The network of a suite entry: `s` itself, or `copies` of it (seeds `s.seed`,
/// `s.seed + 1`, ...) joined side by side in one simulation, as a sweep batches runs.
fn entry_network(s: &Scenario, copies: u32, batch_steps: u32) -> Result<crate::model::Network> {
    use crate::model::Network;
    if copies <= 1 {
        return Network::build(s, batch_steps);
    }
    let nets = (0..copies as u64)
        .map(|k| {
            let mut c = s.clone();
            c.seed = s.seed.wrapping_add(k);
            Network::build(&c, batch_steps)
        })
        .collect::<Result<Vec<_>>>()?;
    Network::merge(nets)
}

/// `run` for a suite entry with `copies` (see [`entry_network`]); the build of every
/// copy and the merge count as build time.
fn run_entry(s: &Scenario, copies: u32, opts: &RunOptions) -> Result<crate::run::RunResult> {
    let t0 = std::time::Instant::now();
    crate::run::run_network(entry_network(s, copies, opts.batch_steps)?, opts, t0)
}

/// The scenario as one continuous run: a `[protocol]` table whose `mode` is not
/// `continuous` (multiscale network windows along a dosing protocol) is dropped, since
/// the benchmark times a given number of consecutive steps. Done on the serialised
/// form so that it holds for any protocol table. Returns whether anything changed.
fn continuous(s: Scenario, file: &str) -> Result<(Scenario, bool)> {
    let err = |e: serde_json::Error| Error::Scenario {
        file: file.to_string(),
        message: format!("cannot make a continuous benchmark run: {e}"),
    };
    let mut v = serde_json::to_value(&s).map_err(err)?;
    let windowed = v
        .get("protocol")
        .and_then(|p| p.get("mode"))
        .and_then(|m| m.as_str())
        .is_some_and(|m| m != "continuous");
    if !windowed {
        return Ok((s, false));
    }
    if let Some(obj) = v.as_object_mut() {
        obj.remove("protocol");
    }
    Ok((serde_json::from_value(v).map_err(err)?, true))
}

/// The scenario of an entry, with `steps` steps; `Ok(None)` when it is not embedded.
fn entry_scenario(e: &SuiteEntry, steps: u64) -> Result<Option<(Scenario, String)>> {
    let (mut s, how) = match &e.source {
        NetworkSource::Coba => (
            Scenario::from_toml("<embedded:coba>", COBA)?,
            "embedded coba as published (4000 neurons, p = 0.02)".to_string(),
        ),
        NetworkSource::ScaledCoba { n, k } => (
            scaled_coba(*n, *k, steps)?,
            format!("scaled_coba: {k} synapses/neuron, weights x 80/{k}"),
        ),
        NetworkSource::Embedded { name, n, k } => {
            let Some((_, text)) = crate::scenario::EMBEDDED.iter().find(|(x, _)| x == name) else {
                return Ok(None);
            };
            let file = format!("<embedded:{name}>");
            let (base, was_windowed) = continuous(Scenario::from_toml(&file, text)?, &file)?;
            let (s, mut how) = match n {
                Some(n) if *n != base.neuron_count() => (
                    scale_scenario(&base, *n)?,
                    format!(
                        "embedded {name} scaled from {} neurons (in-degree kept)",
                        base.neuron_count()
                    ),
                ),
                _ => (base, format!("embedded {name} at its own size")),
            };
            let s = match k {
                Some(k) => {
                    how.push_str(&format!(
                        "; {k} synapses per neuron (every in-degree scaled, weights and NMDA drives divided by the same factor)"
                    ));
                    with_synapses_per_neuron(&s, *k)?
                }
                None => s,
            };
            if was_windowed {
                how.push_str("; its multiscale [protocol] replaced by one continuous run");
            }
            (s, how)
        }
    };
    let mut how = how;
    if e.copies > 1 {
        how.push_str(&format!(
            "; {} copies (seeds {} to {}) side by side in one simulation, as a sweep batches its runs",
            e.copies,
            s.seed,
            s.seed.wrapping_add(e.copies as u64 - 1)
        ));
    }
    s.duration_ms = steps as f64 * s.dt_ms;
    s.record.baseline_ms = s.record.baseline_ms.min(s.duration_ms);
    // The benchmark times the simulation, not spike read-back.
    s.record.spikes.clear();
    s.validate().map_err(|message| Error::Scenario {
        file: format!("<bench:{}>", e.id),
        message,
    })?;
    Ok(Some((s, how)))
}

fn label(b: BackendChoice) -> &'static str {
    match b {
        BackendChoice::Cpu => "cpu",
        BackendChoice::Gpu => "gpu",
        BackendChoice::Auto => "auto",
    }
}

/// The dispatch probe on each available GPU backend of `chosen` (its `status`); a
/// failure gives a row with status "error" and the reason (the networks still run).
fn dispatch_rows(
    suite: Suite,
    chosen: &[Target],
    status: &[BackendStatus],
    progress: bool,
) -> Vec<DispatchRow> {
    let (dispatches, passes) = suite.dispatch_probe();
    chosen
        .iter()
        .zip(status)
        .filter(|(t, st)| t.choice == BackendChoice::Gpu && st.available)
        .map(|(t, st)| {
            let measured = crate::gpu::GpuContext::open(t.adapter, true)
                .and_then(|ctx| crate::stream::measure_dispatch(&ctx, dispatches, passes));
            let row = DispatchRow::of(&st.backend, "dispatch probe", measured);
            if progress {
                match &row.result {
                    Some(r) => eprintln!(
                        "bench: dispatch probe ({}): {:.2} µs per dependent dispatch, {:.2} indirect (medians of {} passes of {}, {})",
                        r.backend, r.direct_us, r.indirect_us, r.passes, r.dispatches, r.timing
                    ),
                    None => eprintln!("bench: {}", row.note.as_deref().unwrap_or("")),
                }
            }
            row
        })
        .collect()
}

/// The bandwidth probe on each available backend of `chosen` (its `status`), at the
/// suite's size; a failure gives a row with status "error" and the reason (the
/// networks still run).
fn stream_rows(
    suite: Suite,
    chosen: &[Target],
    status: &[BackendStatus],
    progress: bool,
) -> Vec<StreamRow> {
    let (bytes, passes) = (suite.stream_buffer_bytes(), suite.stream_passes());
    chosen
        .iter()
        .zip(status)
        .filter(|(_, st)| st.available)
        .map(|(t, st)| {
            let measured = match t.choice {
                BackendChoice::Gpu => crate::gpu::GpuContext::open(t.adapter, true)
                    .and_then(|ctx| crate::stream::measure_gpu(&ctx, bytes, passes)),
                _ => crate::stream::measure_cpu(bytes, passes),
            };
            let row = StreamRow::of(&st.backend, "bandwidth probe", measured);
            if progress {
                match &row.result {
                    Some(r) => eprintln!(
                        "bench: bandwidth probe ({}): {:.1} GB/s median, {:.1} best ({} passes over {} MiB, {})",
                        r.backend,
                        r.median_gb_per_s,
                        r.best_gb_per_s,
                        r.passes,
                        r.buffer_bytes >> 20,
                        r.timing
                    ),
                    None => eprintln!("bench: {}", row.note.as_deref().unwrap_or("")),
                }
            }
            row
        })
        .collect()
}

/// Run `suite` on `backends` (`Auto` means the GPU if there is one, else the CPU). A
/// backend that is unavailable, a network that is not embedded or cannot be built at
/// a size, and a run that fails each give rows with that status and a note instead
/// of an error, so one run always reports every (entry, backend) pair. `progress`
/// logs each run on stderr.
pub fn run_suite(suite: Suite, backends: &[BackendChoice], progress: bool) -> Result<SuiteReport> {
    run_suite_with(suite, backends, progress, &mut |_| Ok(()))
}

/// [`run_suite`], calling `on_entry` with the report so far after each entry (all its
/// backends), so that a caller can write partial results: a suite stopped by a time
/// limit then keeps the rows it finished. With `progress`, each row's result is printed
/// to stderr as it finishes.
pub fn run_suite_with(
    suite: Suite,
    backends: &[BackendChoice],
    progress: bool,
    on_entry: &mut dyn FnMut(&SuiteReport) -> Result<()>,
) -> Result<SuiteReport> {
    let wants_gpu = backends.iter().any(|&b| b != BackendChoice::Cpu);
    let gpus = if wants_gpu { suite_gpus()? } else { Vec::new() };
    let gpu_ok = gpus.iter().any(|(_, st)| st.available);
    let cpu = (
        Target {
            choice: BackendChoice::Cpu,
            adapter: None,
        },
        BackendStatus {
            backend: label(BackendChoice::Cpu).into(),
            available: true,
            adapter: None,
            adapter_index: None,
            same_as: Vec::new(),
            reason: None,
        },
    );
    let mut chosen: Vec<Target> = Vec::new();
    let mut status: Vec<BackendStatus> = Vec::new();
    for &b in backends {
        let wanted = match b {
            BackendChoice::Gpu => gpus.clone(),
            BackendChoice::Auto if gpu_ok => gpus.clone(),
            _ => vec![cpu.clone()],
        };
        for (t, st) in wanted {
            if !chosen.contains(&t) {
                chosen.push(t);
                status.push(st);
            }
        }
    }
    let warmup_steps = suite.warmup_steps();
    let policy = warmup_policy(warmup_steps);
    let stream = stream_rows(suite, &chosen, &status, progress);
    let dispatch = dispatch_rows(suite, &chosen, &status, progress);
    let report = |results: Vec<SuiteRow>| SuiteReport {
        benchmark: "suite".into(),
        suite,
        ketasim_version: env!("CARGO_PKG_VERSION").into(),
        warmup_policy: policy.clone(),
        backends: status.clone(),
        stream: stream.clone(),
        dispatch: dispatch.clone(),
        results,
    };
    let mut rows: Vec<SuiteRow> = Vec::new();
    for e in suite_entries(suite) {
        let first_row = rows.len();
        let target_n = match &e.source {
            NetworkSource::Coba => None,
            NetworkSource::ScaledCoba { n, .. } => Some(*n),
            NetworkSource::Embedded { n, .. } => *n,
        }
        .map(|n| n * e.copies as u64);
        let blank = |backend: &str, status: &str, note: String| SuiteRow {
            entry: e.id.clone(),
            network: e.network.to_string(),
            scenario: None,
            backend: backend.to_string(),
            status: status.to_string(),
            note,
            adapter: None,
            neurons: target_n,
            synapses: None,
            synapses_per_neuron: None,
            dt_ms: None,
            duration_ms: None,
            steps: e.steps,
            warmup_steps,
            warmup: policy.clone(),
            build_s: None,
            wall_s: None,
            rtf: None,
            neuron_updates_per_s: None,
            synaptic_events_per_s: None,
            bytes_per_neuron_step: None,
            achieved_gb_per_s: None,
            peak_gb_per_s: None,
            peak_fraction: None,
            populations: Vec::new(),
            kernel_times: None,
            host_record_us: None,
            host_exposed_us: None,
            host_submit_us: None,
            kernel_timed_steps: None,
            fuse_steps: None,
            neuron_update_us: None,
            neuron_update_gb_per_s: None,
            neuron_update_stream_fraction: None,
        };
        let built = entry_scenario(&e, e.steps);
        for (t, st) in chosen.iter().zip(&status) {
            let b = t.choice;
            let (s, how) = match &built {
                Ok(Some(x)) => x,
                Ok(None) => {
                    let name = match &e.source {
                        NetworkSource::Embedded { name, .. } => *name,
                        _ => e.network,
                    };
                    rows.push(blank(
                        &st.backend,
                        "not_available",
                        format!("not yet available: no embedded scenario `{name}` in this build"),
                    ));
                    continue;
                }
                Err(err) => {
                    rows.push(blank(
                        &st.backend,
                        "skipped",
                        format!("cannot build: {err}"),
                    ));
                    continue;
                }
            };
            if !st.available {
                rows.push(blank(
                    &st.backend,
                    "skipped",
                    format!(
                        "backend unavailable: {}",
                        st.reason.as_deref().unwrap_or("unknown")
                    ),
                ));
                continue;
            }
            if progress {
                eprintln!(
                    "bench: {} ({} neurons, {} steps) on {}",
                    e.id,
                    s.neuron_count() * e.copies as u64,
                    e.steps,
                    st.backend
                );
            }
            let opts = RunOptions {
                backend: b,
                progress: false,
                adapter: t.adapter,
                ..RunOptions::default()
            };
            let mut profile = None;
            let mut host = None;
            let timed = (|| -> Result<crate::run::Summary> {
                if warmup_steps > 0 {
                    let mut w = s.clone();
                    w.duration_ms = warmup_steps.min(e.steps) as f64 * w.dt_ms;
                    w.record.baseline_ms = w.record.baseline_ms.min(w.duration_ms);
                    if b == BackendChoice::Gpu {
                        let (kernels, h) =
                            gpu_warmup_profiled(&w, e.copies, opts.batch_steps, t.adapter)?;
                        profile = kernels;
                        host = Some(h).filter(|h| h.steps > 0);
                    } else {
                        run_entry(&w, e.copies, &opts)?;
                    }
                }
                Ok(run_entry(s, e.copies, &opts)?.summary)
            })();
            let r = match timed {
                Ok(r) => r,
                Err(Error::NoGpu(msg)) => {
                    rows.push(blank(
                        &st.backend,
                        "skipped",
                        format!("backend unavailable: {msg}"),
                    ));
                    continue;
                }
                Err(err) => {
                    let mut row = blank(&st.backend, "error", format!("run failed: {err}"));
                    row.scenario = Some(s.name.clone());
                    row.neurons = Some(s.neuron_count() * e.copies as u64);
                    rows.push(row);
                    continue;
                }
            };
            let bps = bytes_per_neuron_step(s, &r.backend);
            let achieved = r.neuron_updates_per_s * bps * 1e-9;
            let peak = peak_bandwidth_gb_per_s(&r.adapter);
            let stream_gb = stream
                .iter()
                .find(|x| x.backend == st.backend)
                .and_then(|x| x.result.as_ref())
                .map(|x| x.median_gb_per_s);
            let neuron_update_ns = profile.as_ref().and_then(|(_, times)| {
                times
                    .iter()
                    .find(|t| t.name == "neuron_update" && t.steps > 0 && t.ns_per_step > 0.0)
                    .map(|t| t.ns_per_step)
            });
            rows.push(SuiteRow {
                scenario: Some(r.scenario.clone()),
                status: "ok".into(),
                note: how.clone(),
                adapter: Some(r.adapter.clone()),
                neurons: Some(r.neurons),
                synapses: Some(r.synapses),
                synapses_per_neuron: Some(r.synapses / r.neurons as f64),
                dt_ms: Some(r.dt_ms),
                duration_ms: Some(r.duration_ms),
                steps: r.steps,
                build_s: Some(r.build_s),
                wall_s: Some(r.wall_s),
                rtf: Some(r.rtf),
                neuron_updates_per_s: Some(r.neuron_updates_per_s),
                synaptic_events_per_s: Some(r.synaptic_events_per_s),
                bytes_per_neuron_step: Some(bps),
                achieved_gb_per_s: Some(achieved),
                peak_gb_per_s: peak,
                peak_fraction: peak.map(|p| achieved / p),
                populations: population_rates(&r.populations),
                kernel_timed_steps: profile.as_ref().map(|(n, _)| *n),
                fuse_steps: Some(fused_steps(s, &r.backend)),
                neuron_update_us: neuron_update_ns.map(|ns| ns * 1e-3),
                // Bytes per ns is GB/s.
                neuron_update_gb_per_s: neuron_update_ns.map(|ns| bps * r.neurons as f64 / ns),
                neuron_update_stream_fraction: neuron_update_ns
                    .zip(stream_gb)
                    .map(|(ns, gb)| bps * r.neurons as f64 / ns / gb),
                kernel_times: profile.map(|(_, times)| times),
                host_record_us: host.map(|h| h.record_ns * 1e-3 / h.steps as f64),
                host_exposed_us: host.map(|h| h.exposed_ns * 1e-3 / h.steps as f64),
                host_submit_us: host.map(|h| h.submit_ns * 1e-3 / h.steps as f64),
                ..blank(&st.backend, "ok", String::new())
            });
        }
        if progress {
            for r in &rows[first_row..] {
                eprintln!("bench: {}", row_line(r));
            }
        }
        on_entry(&report(rows.clone()))?;
    }
    Ok(report(rows))
}

/// One line for the progress output: the row's status, and its speed when it ran.
fn row_line(r: &SuiteRow) -> String {
    match (r.wall_s, r.rtf) {
        (Some(wall), Some(rtf)) => format!(
            "{} on {}: {}, {} neurons, build {:.2} s, wall {wall:.3} s, RTF {rtf:.4}, {:.3e} neuron-updates/s, {:.1} GB/s",
            r.entry,
            r.backend,
            r.status,
            r.neurons.unwrap_or(0),
            r.build_s.unwrap_or(f64::NAN),
            r.neuron_updates_per_s.unwrap_or(f64::NAN),
            r.achieved_gb_per_s.unwrap_or(f64::NAN),
        ),
        _ => format!("{} on {}: {} ({})", r.entry, r.backend, r.status, r.note),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "-".to_string(), f)
}

/// The Markdown table of a suite: a header line, the separator, one line per row.
pub fn suite_table(report: &SuiteReport) -> String {
    let mut t = String::from(
        "| network | backend | status | neurons | syn./neuron | steps (ms) | build s | wall s | RTF | neuron-updates/s | syn. events/s | B/neuron-step | GB/s | peak GB/s (frac.) | neuron_update µs/step (GB/s) | rates Hz | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &report.results {
        let steps = match r.duration_ms {
            Some(d) => format!("{} ({d})", r.steps),
            None => r.steps.to_string(),
        };
        let peak = match (r.peak_gb_per_s, r.peak_fraction) {
            (Some(p), Some(f)) => format!("{p:.0} ({f:.3})"),
            _ => "-".into(),
        };
        let rates = r
            .populations
            .iter()
            .map(|p| format!("{} {:.2}", p.name, p.rate_hz))
            .collect::<Vec<_>>()
            .join(", ");
        let kernel = match (r.neuron_update_us, r.neuron_update_gb_per_s) {
            (Some(us), Some(gb)) => format!("{us:.2} ({gb:.2})"),
            _ => "-".into(),
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&r.entry),
            r.backend,
            r.status,
            r.neurons.map_or("-".into(), |n| n.to_string()),
            opt(r.synapses_per_neuron, |x| format!("{x:.1}")),
            steps,
            opt(r.build_s, |x| format!("{x:.3}")),
            opt(r.wall_s, |x| format!("{x:.3}")),
            opt(r.rtf, |x| format!("{x:.3}")),
            opt(r.neuron_updates_per_s, |x| format!("{x:.3e}")),
            opt(r.synaptic_events_per_s, |x| format!("{x:.3e}")),
            opt(r.bytes_per_neuron_step, |x| format!("{x:.1}")),
            opt(r.achieved_gb_per_s, |x| format!("{x:.2}")),
            peak,
            kernel,
            if rates.is_empty() { "-".into() } else { rates },
            cell(&r.note)
        ));
    }
    t
}

/// The Markdown document of a suite: a title, the timing policy and the backends, then
/// [`suite_table`].
pub fn suite_markdown(report: &SuiteReport) -> String {
    let mut m = format!(
        "# ketasim bench --suite {} (ketasim {})\n\nTiming: {}.\n\n",
        report.suite.label(),
        report.ketasim_version,
        report.warmup_policy
    );
    for b in &report.backends {
        match (&b.adapter, &b.reason) {
            (Some(a), _) => {
                m.push_str(&format!("- {}: {}", b.backend, cell(a)));
                if !b.same_as.is_empty() {
                    let others: Vec<String> = b.same_as.iter().map(|i| format!("[{i}]")).collect();
                    m.push_str(&format!(
                        "; also stands for adapters {} of `ketasim devices` (the same model, not benched apart; KETASIM_ADAPTER benches one)",
                        others.join(", ")
                    ));
                }
                m.push('\n');
            }
            (None, Some(r)) => m.push_str(&format!("- {}: unavailable ({})\n", b.backend, cell(r))),
            (None, None) => m.push_str(&format!("- {}: available\n", b.backend)),
        }
    }
    m.push('\n');
    m.push_str(&stream_table(report));
    m.push('\n');
    let dispatch = dispatch_table(report);
    if !dispatch.is_empty() {
        m.push_str(&dispatch);
        m.push('\n');
    }
    m.push_str(&suite_table(report));
    let kernels = kernel_table(report);
    if !kernels.is_empty() {
        m.push_str("\nGPU time per kernel (timestamp queries in the warm-up run):\n\n");
        m.push_str(&kernels);
    }
    let host = host_table(report);
    if !host.is_empty() {
        m.push_str(&format!(
            "\nHost time per step recording and submitting the GPU's commands (untimed half of the warm-up run; a batch goes out in submissions of {} chunks of fused steps, so only the recording before its first submission leaves the device idle):\n\n",
            crate::gpu::chunks_per_submit_from_env().unwrap_or(crate::gpu::CHUNKS_PER_SUBMIT)
        ));
        m.push_str(&host);
    }
    m
}

/// A Markdown table of the host's recording time per step, one line per GPU row that
/// has it (`SuiteRow::host_record_us`, `host_exposed_us`); empty if none has.
pub fn host_table(report: &SuiteReport) -> String {
    let mut t = String::new();
    for r in &report.results {
        let (Some(record), Some(exposed), Some(submit)) =
            (r.host_record_us, r.host_exposed_us, r.host_submit_us)
        else {
            continue;
        };
        if t.is_empty() {
            t.push_str("| network | backend | recording µs/step | before the first submission µs/step | in Queue::submit µs/step |\n|---|---|---|---|---|\n");
        }
        t.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} |\n",
            cell(&r.entry),
            r.backend,
            record,
            exposed,
            submit
        ));
    }
    t
}

/// A Markdown table of the dispatch probe, one line per GPU backend (empty without
/// any), with the floor it puts under a step of one-step chunks (two dependent
/// dispatches, one of them indirect).
pub fn dispatch_table(report: &SuiteReport) -> String {
    if report.dispatch.is_empty() {
        return String::new();
    }
    let mut t = String::from(
        "Dependent dispatches with nothing to compute (one workgroup each, each reading the previous one's write):\n\n| backend | status | adapter | dispatches x passes | timing | direct µs | indirect µs | floor of a one-step chunk µs (RTF at dt = 0.1 ms) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for x in &report.dispatch {
        match &x.result {
            Some(r) => {
                let floor = r.direct_us + r.indirect_us;
                t.push_str(&format!(
                    "| {} | {} | {} | {} x {} | {} | {:.2} (best {:.2}) | {:.2} (best {:.2}) | {:.2} ({:.3}) |\n",
                    x.backend,
                    x.status,
                    cell(&r.adapter),
                    r.dispatches,
                    r.passes,
                    r.timing,
                    r.direct_us,
                    r.direct_best_us,
                    r.indirect_us,
                    r.indirect_best_us,
                    floor,
                    floor / 100.0
                ));
            }
            None => t.push_str(&format!(
                "| {} | {} | {} | - | - | - | - | - |\n",
                x.backend,
                x.status,
                cell(x.note.as_deref().unwrap_or(""))
            )),
        }
    }
    t
}

/// A Markdown table of the bandwidth probe: one line per backend, and each GPU row's
/// neuron update as a fraction of its backend's probe.
pub fn stream_table(report: &SuiteReport) -> String {
    let mut t = String::from(
        "Memory bandwidth of a plain copy (STREAM Copy, bytes read + written):\n\n| backend | status | adapter | buffer MiB | passes | timing | median GB/s | best GB/s |\n|---|---|---|---|---|---|---|---|\n",
    );
    for x in &report.stream {
        match &x.result {
            Some(r) => t.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {:.1} | {:.1} |\n",
                x.backend,
                x.status,
                cell(&r.adapter),
                r.buffer_bytes >> 20,
                r.passes,
                r.timing,
                r.median_gb_per_s,
                r.best_gb_per_s
            )),
            None => t.push_str(&format!(
                "| {} | {} | {} | - | - | - | - | - |\n",
                x.backend,
                x.status,
                cell(x.note.as_deref().unwrap_or(""))
            )),
        }
    }
    let fractions: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| {
            r.neuron_update_stream_fraction
                .map(|f| format!("{} ({}) {f:.2}", r.entry, r.backend))
        })
        .collect();
    if !fractions.is_empty() {
        t.push_str(&format!(
            "\nNeuron update's bandwidth as a fraction of the probe's median: {}.\n",
            fractions.join("; ")
        ));
    }
    t
}

/// A Markdown table of the per-kernel GPU times of the rows that have them (one line
/// per row and kernel); empty when no row has any.
pub fn kernel_table(report: &SuiteReport) -> String {
    let mut t = String::new();
    for r in &report.results {
        let Some(times) = &r.kernel_times else {
            continue;
        };
        if t.is_empty() {
            t.push_str("| network | backend | kernel | dispatches | total ms | mean µs |\n|---|---|---|---|---|---|\n");
        }
        for k in times {
            t.push_str(&format!(
                "| {} | {} | {} | {} | {:.3} | {:.2} |\n",
                cell(&r.entry),
                r.backend,
                k.name,
                k.dispatches,
                k.total_ns * 1e-6,
                k.mean_ns * 1e-3
            ));
        }
    }
    t
}

/// Write the suite's JSON to `out` and its Markdown beside it (`out` with the
/// extension `md`); returns the Markdown path.
pub fn write_suite(report: &SuiteReport, out: &Path) -> Result<PathBuf> {
    let md = out.with_extension("md");
    if md == out {
        return Err(Error::Io {
            path: out.display().to_string(),
            source: std::io::Error::other(
                "the JSON output must not end in .md (the Markdown table is written beside it as .md)",
            ),
        });
    }
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| Error::Io { path: p, source }
    };
    let json = serde_json::to_string_pretty(report).map_err(|e| Error::Io {
        path: out.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(out, json + "\n").map_err(io(out))?;
    std::fs::write(&md, suite_markdown(report)).map_err(io(&md))?;
    Ok(md)
}
