//! `ketasim bench`: a scaled E/I network (the COBA benchmark's neurons and synapses,
//! Vogels & Abbott 2005 / Brette et al. 2007, with K synapses per neuron by fixed
//! probability p = K/N and weights scaled by 80/K so that the mean input per neuron
//! matches the 4000-neuron model) timed on each backend in one run.

use serde::Serialize;

use crate::error::Result;
use crate::model::memory;
use crate::run::{run, BackendChoice, RunOptions};
use crate::scenario::Scenario;

/// The COBA scenario text (`assets/scenarios/coba.toml`).
pub const COBA: &str = include_str!("../assets/scenarios/coba.toml");

/// The benchmark network at `n` neurons with `k` synapses per neuron.
pub fn scaled_coba(n: u64, k: u64, steps: u64) -> Result<Scenario> {
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
            let sample_interval = (s.record.sample_interval_ms / s.dt_ms).round() as u32;
            let pools: f64 = s
                .populations
                .iter()
                .map(|p| p.size as f64 * p.nmda.as_ref().map_or(0, |m| m.pool_specs().len()) as f64)
                .sum::<f64>()
                / s.neuron_count() as f64;
            let bps = memory::bytes_per_neuron_step(sample_interval, pools);
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
