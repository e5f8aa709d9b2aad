//! The compiled network: a validated scenario turned into the constant blocks the
//! kernels read (`layout`), the initial state, the connectivity tables (only where a
//! rule needs one) and the fixed-point scales. Both backends start from the same
//! `Network`, so they integrate the same numbers.

pub mod batch;
pub mod connectivity;
pub mod ketamine;
pub mod layout;
pub mod limits;
pub mod memory;

use glam::UVec2;

use crate::error::{Error, Result};
use crate::rng::{self, key, threefry2x32, STREAM_CONN, STREAM_INIT, STREAM_POISSON};
use crate::scenario::{
    steps_of, DecayMethod, Rule, Scenario, Storage, SynapseKind, DEFAULT_TAU_SYN_MS,
};
use layout::*;
use limits::*;

/// Slope of the Mg2+ block, 0.062 /mV (Jahr & Stevens 1990, J Neurosci 10:3178).
pub const MG_SLOPE_PER_MV: f32 = 0.062;

/// Mg2+ unblocked fraction `B(V) = 1 / (1 + [Mg]/K0 * exp(-0.062 V))` (Jahr & Stevens
/// 1990), with `mg_over_k0 = [Mg]/K0`. Kernels use exactly this expression.
pub fn mg_block(v_mv: f32, mg_over_k0: f32) -> f32 {
    1.0 / (1.0 + mg_over_k0 * rng::exp_f32(-MG_SLOPE_PER_MV * v_mv))
}

/// Propagators of a current-based LIF neuron with exponential synaptic currents over
/// one step (exact integration, Rotter & Diesmann 1999, Biol Cybern 81:381; NEST's
/// `iaf_psc_exp`), computed in f64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurrentPropagators {
    /// `exp(-dt/tau_m)`.
    pub p22: f64,
    /// `exp(-dt/tau_syn_ex)`.
    pub p11ex: f64,
    /// `exp(-dt/tau_syn_in)`.
    pub p11in: f64,
    /// V change (mV) per pA of excitatory current at the step's start.
    pub p21ex: f64,
    /// The same for the inhibitory current.
    pub p21in: f64,
    /// V change (mV) per pA of constant current, `tau_m/C (1 - exp(-dt/tau_m))`.
    pub p20: f64,
}

/// [`CurrentPropagators`] for step `dt_ms`, capacitance `c_pf`, membrane time
/// constant `tau_m_ms` and synaptic time constants. The current's effect on V is
/// `tau_s tau_m / (C (tau_m - tau_s)) (exp(-dt/tau_m) - exp(-dt/tau_s))`; where
/// `tau_s` is (numerically) `tau_m` it is its limit `dt/C exp(-dt/tau_m)`, as NEST's
/// `propagator_32` does.
#[allow(non_snake_case)]
pub fn current_propagators(
    dt_ms: f64,
    c_pf: f64,
    tau_m_ms: f64,
    tau_ex_ms: f64,
    tau_in_ms: f64,
) -> CurrentPropagators {
    let p22 = (-dt_ms / tau_m_ms).exp();
    let p21 = |tau_s: f64| {
        let d = tau_m_ms - tau_s;
        if d.abs() < 1e-9 * tau_m_ms {
            dt_ms / c_pf * p22
        } else {
            tau_s * tau_m_ms / (c_pf * d) * (p22 - (-dt_ms / tau_s).exp())
        }
    };
    CurrentPropagators {
        p22,
        p11ex: (-dt_ms / tau_ex_ms).exp(),
        p11in: (-dt_ms / tau_in_ms).exp(),
        p21ex: p21(tau_ex_ms),
        p21in: p21(tau_in_ms),
        p20: tau_m_ms / c_pf * (1.0 - p22),
    }
}

/// State of every neuron, one array per variable (the device layout).
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronState {
    /// Membrane potential (mV).
    pub v: Vec<f32>,
    /// Remaining refractory steps.
    pub refrac: Vec<u32>,
    /// AMPA conductance (nS).
    pub g_ampa: Vec<f32>,
    /// GABA_A conductance (nS).
    pub g_gaba: Vec<f32>,
    /// NMDA transmitter drive x.
    pub x_nmda: Vec<f32>,
    /// NMDA receptor pools: per pool and neuron `[O, B, T, 0]` (open, open-blocked,
    /// trapped fractions; C = 1 - O - B - T).
    pub pools: [Vec<[f32; 4]>; limits::MAX_NMDA_POOLS],
    /// ISI accumulators.
    pub isi: Vec<IsiStat>,
    /// Releasable fraction R of each neuron right after its last spike (1 before any).
    pub glu_r: Vec<f32>,
    /// Slow signalling, per neuron: `[synapse density, accumulated local AMPA input
    /// (nS)]` (density 1 and nothing accumulated outside signalling populations).
    pub sig_nrn: Vec<[f32; 2]>,
}

/// Explicit synapse tables (CSR by presynaptic neuron), for projections that need one.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// Row pointers: for each table projection, `pre_size + 1` entries indexing `cols`;
    /// for each procedural fixed-total-number projection, `pre_size + 1` entries
    /// whose differences are the out-degrees (`connectivity::out_degree`).
    pub rows: Vec<u32>,
    /// Postsynaptic local indices.
    pub cols: Vec<u32>,
}

/// Summary of one projection for reports.
#[derive(Debug, Clone)]
pub struct ProjectionInfo {
    /// "pre -> post (receptor)".
    pub label: String,
    /// Synapses: exact for tables, expected for procedural rules.
    pub synapses: f64,
    /// Whether `synapses` is exact.
    pub exact: bool,
    /// Whether synapses are regenerated per spike.
    pub procedural: bool,
}

/// A scenario compiled for the kernels.
#[derive(Debug, Clone)]
pub struct Network {
    /// The scenario it came from.
    pub scenario: Scenario,
    /// Constants uploaded to every kernel.
    pub params: ParamsBlock,
    /// Population names, in order.
    pub pop_names: Vec<String>,
    /// Neurons in all.
    pub n: u32,
    /// Steps to simulate.
    pub steps: u64,
    /// Fixed-point scale (LSB per unit) of each receptor channel.
    pub scales: [f64; 3],
    /// Explicit tables.
    pub tables: Tables,
    /// Per-projection report.
    pub projections: Vec<ProjectionInfo>,
    /// 1/k table of the Poisson sampler.
    pub poisson_recips: [f32; rng::POISSON_MAX_K as usize + 1],
    /// Steps per rate bin.
    pub rate_bin_steps: u32,
    /// The pharmacokinetic time course, if the scenario has a protocol.
    pub pk: Option<crate::pk::PkProfile>,
    /// The stretches of simulation and their protocol times (one for a continuous
    /// run; one per window in multiscale mode).
    pub segments: Vec<crate::scenario::Segment>,
    /// The independent networks simulated side by side (one, unless several were
    /// joined by [`Network::merge`] for a batched sweep).
    pub copies: Vec<Copy>,
    /// First step at which the interventions act ([`Network::intervention_step`]),
    /// found once when the network is built.
    pub intervention_at: Option<u64>,
}

/// One of the independent networks in a (possibly batched) simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// Its seed.
    pub seed: u64,
    /// Its first neuron.
    pub first_neuron: u32,
    /// Its neurons.
    pub neurons: u32,
    /// Its first population.
    pub first_pop: usize,
    /// Its populations.
    pub pops: usize,
}

impl PoolParams {
    /// The kinetic rates of this pool (for `ketamine::pool_step`).
    pub fn rates(&self) -> ketamine::PoolRates {
        ketamine::PoolRates {
            alpha_dt: self.alpha_dt,
            beta_dt: self.beta_dt,
            kon_dt: self.kon_dt,
            kd_ref_um: self.kd_ref_um,
            kd_slope_per_mv: self.kd_slope_per_mv,
        }
    }
}

fn f32_of(x: f64) -> f32 {
    x as f32
}

/// Box-Muller normal pair from two uniform words (host-only: initial state).
fn normal_pair(r: UVec2) -> (f64, f64) {
    let u1 = ((r.x >> 8) as f64 + 1.0) / 16_777_216.0;
    let u2 = (r.y >> 8) as f64 / 16_777_216.0;
    let rad = (-2.0 * u1.ln()).sqrt();
    let th = std::f64::consts::TAU * u2;
    (rad * th.cos(), rad * th.sin())
}

/// Most steps one neuron-update dispatch may advance for `s`
/// ([`layout::SimParams::fuse_steps`]): [`limits::MAX_FUSED_STEPS`], no more than the
/// shortest synaptic delay (a drawn delay can be one step), so that no spike of a
/// chunk arrives within it, and no more than the shortest refractory period plus one
/// step, so that a neuron fires at most once per chunk.
pub fn fuse_steps(s: &Scenario) -> u32 {
    let delay = s
        .projections
        .iter()
        .map(|p| {
            if p.delay_sd_ms.unwrap_or(0.0) > 0.0 {
                1
            } else {
                steps_of(p.delay_ms, s.dt_ms).max(1)
            }
        })
        .min()
        .unwrap_or(u32::MAX);
    let refractory = s
        .populations
        .iter()
        .map(|p| steps_of(p.neuron.t_ref_ms, s.dt_ms).saturating_add(1))
        .min()
        .unwrap_or(u32::MAX);
    limits::MAX_FUSED_STEPS.min(delay).min(refractory).max(1)
}

/// Steps of the chunk of fused steps that starts at `step` (twin of `chunk_len` in
/// `shaders/common.wgsl`): at most `sim.fuse_steps`, ending at the next sample step
/// and at `batch_end`.
pub fn chunk_len(sim: &layout::SimParams, step: u32, batch_end: u32) -> u32 {
    let to_sample = sim.sample_interval - step % sim.sample_interval;
    sim.fuse_steps
        .min(to_sample)
        .min(batch_end.wrapping_sub(step))
        .max(1)
}

impl Network {
    /// Compile a validated scenario. `batch_steps` sizes the per-batch read-back
    /// buffers (rows of spike counts, sample slots).
    pub fn build(scenario: &Scenario, batch_steps: u32) -> Result<Network> {
        scenario.validate().map_err(|message| Error::Scenario {
            file: if scenario.name.is_empty() {
                "<scenario>".into()
            } else {
                scenario.name.clone()
            },
            message,
        })?;
        let dt = scenario.dt_ms;
        let mut params = ParamsBlock::zeroed(
            scenario.populations.len(),
            scenario.projections.len(),
            scenario.drives.len(),
        );
        let mut offset = 0u32;
        let mut pop_offsets = Vec::new();
        for (i, p) in scenario.populations.iter().enumerate() {
            let n = &p.neuron;
            let decay = |tau: f64| match scenario.synapse_decay {
                DecayMethod::Exact => (-dt / tau).exp(),
                DecayMethod::Euler => 1.0 - dt / tau,
            };
            let pp = &mut params.pops[i];
            pp.offset = offset;
            pp.size = p.size as u32;
            pp.ref_steps = steps_of(n.t_ref_ms, dt);
            pp.record_spikes = u32::from(scenario.record.spikes.contains(&p.name));
            pp.dt_over_c = f32_of(dt / n.c_pF);
            pp.g_l = f32_of(n.g_l_nS);
            pp.e_l = f32_of(n.e_l_mV);
            pp.v_th = f32_of(n.v_th_mV);
            pp.v_reset = f32_of(n.v_reset_mV);
            pp.i_ext = f32_of(n.i_ext_pA);
            pp.e_ampa = f32_of(n.e_ampa_mV);
            pp.e_gaba = f32_of(n.e_gaba_mV);
            pp.e_nmda = f32_of(n.e_nmda_mV);
            if let Some(g) = &p.glutamate {
                pp.glu_on = 1;
                pp.glu_p_release = f32_of(g.release_probability);
                pp.glu_sites = f32_of(g.release_sites);
                pp.glu_rec_rate = f32_of(dt / g.tau_recovery_ms);
                pp.glu_um_per_vesicle = f32_of(g.um_per_vesicle / p.size as f64);
                pp.glu_vmax_dt = f32_of(g.uptake_vmax_um_per_ms * dt);
                pp.glu_km_um = f32_of(g.uptake_km_um);
            }
            if let Some(sig) = &scenario.signalling {
                pp.sig_on = u32::from(sig.populations.contains(&p.name));
            }
            pp.decay_ampa = f32_of(decay(n.tau_ampa_ms));
            pp.decay_gaba = f32_of(decay(n.tau_gaba_ms));
            if p.synapse == SynapseKind::Current {
                let cur = current_propagators(
                    dt,
                    n.c_pF,
                    n.c_pF / n.g_l_nS,
                    n.tau_syn_ex_ms.unwrap_or(DEFAULT_TAU_SYN_MS),
                    n.tau_syn_in_ms.unwrap_or(DEFAULT_TAU_SYN_MS),
                );
                pp.syn_current = 1;
                pp.decay_ampa = f32_of(cur.p11ex);
                pp.decay_gaba = f32_of(cur.p11in);
                pp.cur_p22 = f32_of(cur.p22);
                pp.cur_p21ex = f32_of(cur.p21ex);
                pp.cur_p21in = f32_of(cur.p21in);
                pp.cur_p20 = f32_of(cur.p20);
            }
            if let Some(m) = &p.nmda {
                pp.g_nmda_max = f32_of(m.g_max_nS);
                pp.decay_nmda_rise = f32_of(decay(m.tau_rise_ms));
                let specs = m.pool_specs();
                pp.n_pools = specs.len() as u32;
                for (k, spec) in specs.iter().enumerate() {
                    let tau_d = spec.tau_decay_ms.unwrap_or(spec.subunit.tau_decay_ms());
                    let k0 = spec.k0_mg_mM.unwrap_or(spec.subunit.k0_mg_mM());
                    let mut rates =
                        ketamine::PoolRates::new(spec.subunit, dt, m.alpha_per_ms, tau_d);
                    if let Some(kd) = spec.ketamine_kd_um {
                        rates.kd_ref_um = f32_of(kd);
                    }
                    pp.pools[k] = PoolParams {
                        fraction: f32_of(spec.fraction),
                        mg_over_k0: f32_of(m.mg_mM / k0),
                        alpha_dt: rates.alpha_dt,
                        beta_dt: rates.beta_dt,
                        kon_dt: rates.kon_dt,
                        kd_ref_um: rates.kd_ref_um,
                        kd_slope_per_mv: rates.kd_slope_per_mv,
                        _pad0: 0.0,
                    };
                }
            }
            pop_offsets.push(offset);
            offset += p.size as u32;
        }
        let n_total = offset;

        // Drives, grouped by population.
        let mut d_index = 0usize;
        for (pi, p) in scenario.populations.iter().enumerate() {
            params.pops[pi].drive_start = d_index as u32;
            for (di, d) in scenario.drives.iter().enumerate() {
                if d.population != p.name {
                    continue;
                }
                let mean = d.rate_hz * dt * 1e-3;
                let dp = &mut params.drives[d_index];
                dp.receptor = d.channel();
                dp.index = di as u32;
                let k = key(scenario.seed, STREAM_POISSON | di as u32);
                dp.key_lo = k.x;
                dp.key_hi = k.y;
                dp.neuron_base = 0;
                dp.mean = f32_of(mean);
                dp.exp_neg_mean = f32_of((-mean).exp());
                dp.weight = f32_of(d.jump());
                d_index += 1;
            }
            params.pops[pi].n_drives = d_index as u32 - params.pops[pi].drive_start;
        }
        params.drives.truncate(d_index);
        // A spike scans all of its (single) network's projections.
        for pp in &mut params.pops {
            pp.proj_first = 0;
            pp.proj_count = scenario.projections.len() as u32;
        }

        let scales = fixed_point_scales(scenario)?;
        for (r, scale) in scales.iter().enumerate() {
            params.sim.inv_scale[r] = f32_of(1.0 / scale);
        }

        // Projections.
        let mut tables = Tables::default();
        let mut projections = Vec::new();
        // Synapses per spike that the GPU's propagation spreads over a spike's
        // workgroups (SimParams::spike_groups), per presynaptic neuron: what every
        // neuron of a population has (out-degree rules) plus each neuron's own count
        // (tables and fixed total number, whose out-degrees vary).
        let mut per_spike = vec![SynapsesPerSpike::default(); scenario.populations.len()];
        for (i, pr) in scenario.projections.iter().enumerate() {
            let pre_i = scenario.population_index(&pr.pre).unwrap_or(0);
            let post_i = scenario.population_index(&pr.post).unwrap_or(0);
            let pre_size = scenario.populations[pre_i].size as u32;
            let post_size = scenario.populations[post_i].size as u32;
            let w = pr.jump();
            let channel = pr.channel() as usize;
            let scale = scales[channel];
            let wq = (w * scale).round();
            let use_table = match pr.storage {
                Storage::Table => true,
                Storage::Procedural => false,
                Storage::Auto => pr.rule == Rule::FixedIndegree,
            };
            let pp = &mut params.projs[i];
            pp.pre_offset = pop_offsets[pre_i];
            pp.pre_size = pre_size;
            pp.post_offset = pop_offsets[post_i];
            pp.post_size = post_size;
            pp.receptor = channel as u32;
            pp.delay_steps = steps_of(pr.delay_ms, dt);
            pp.weight_fixed = wq as i32;
            // Per-synapse normal weights and delays (connectivity::synapse_draw).
            if let Some(sd) = pr.weight_sd_pA.filter(|&sd| sd > 0.0) {
                pp.w_mean_fixed = f32_of(w * scale);
                pp.w_sd_fixed = f32_of(sd * scale);
            }
            if let Some(sd) = pr.delay_sd_ms.filter(|&sd| sd > 0.0) {
                pp.d_mean_steps = f32_of(pr.delay_ms / dt);
                pp.d_sd_steps = f32_of(sd / dt);
            }
            pp.stream = STREAM_CONN | (i as u32 * PROC_SPLIT);
            pp.autapses = u32::from(pr.autapses);
            pp.same_pop = u32::from(pre_i == post_i);
            pp.seed_lo = scenario.seed as u32;
            pp.seed_hi = (scenario.seed >> 32) as u32;
            match pr.rule {
                Rule::FixedProbability => {
                    let p = pr.p.unwrap_or(1.0);
                    pp.rule = RULE_PROBABILITY;
                    pp.inv_ln_1mp = if p >= 1.0 {
                        0.0
                    } else {
                        f32_of(1.0 / (1.0 - p).ln())
                    };
                }
                Rule::FixedOutdegree => {
                    pp.rule = RULE_OUTDEGREE;
                    pp.k = pr.k.unwrap_or(0) as u32;
                }
                Rule::FixedIndegree => pp.rule = RULE_TABLE,
                Rule::FixedTotalNumber => pp.rule = RULE_TOTAL,
            }
            // Fixed total number: each presynaptic neuron's drawn out-degree, kept as
            // row pointers from 0 (connectivity::out_degree).
            let degree_rows: Vec<u32> = if pr.rule == Rule::FixedTotalNumber {
                connectivity::total_number_rows(
                    pr.n.unwrap_or(0) as u64,
                    pre_size,
                    scenario.seed,
                    i as u32,
                )
            } else {
                Vec::new()
            };
            let label = match pr.receptor {
                Some(r) => format!("{} -> {} ({r:?})", pr.pre, pr.post),
                None if channel == 0 => format!("{} -> {} (excitatory current)", pr.pre, pr.post),
                None => format!("{} -> {} (inhibitory current)", pr.pre, pr.post),
            };
            if use_table {
                let proc_copy = ProjParams {
                    table_base: 0,
                    ..*pp
                };
                pp.rule = RULE_TABLE;
                pp.table_base = tables.rows.len() as u32;
                let start = tables.cols.len();
                build_table(&mut tables, &proc_copy, &degree_rows, pr, scenario.seed, i)?;
                projections.push(ProjectionInfo {
                    label,
                    synapses: (tables.cols.len() - start) as f64,
                    exact: true,
                    procedural: false,
                });
            } else {
                if !degree_rows.is_empty() {
                    pp.table_base = tables.rows.len() as u32;
                    tables.rows.extend_from_slice(&degree_rows);
                }
                projections.push(ProjectionInfo {
                    label,
                    synapses: expected_synapses(scenario, pr),
                    exact: pr.rule != Rule::FixedProbability,
                    procedural: true,
                });
            }
            match pp.rule {
                RULE_OUTDEGREE => per_spike[pre_i].every += u64::from(pp.k),
                RULE_TABLE | RULE_TOTAL if pre_size > 0 => {
                    let base = pp.table_base as usize;
                    if let Some(rows) = tables.rows.get(base..=base + pre_size as usize) {
                        per_spike[pre_i].add_rows(rows);
                    }
                }
                _ => {}
            }
        }
        // Drawn delays reach mean + 5.3 SD (the largest deviate of rng::normal_f32);
        // the memory plan sizes the ring the same way.
        let max_delay = memory::max_delay_steps(scenario);

        let sample_interval = steps_of(scenario.record.sample_interval_ms, dt).max(1);
        let batch = batch_steps.max(1);
        params.sim = SimParams {
            n_total,
            n_pop: scenario.populations.len() as u32,
            n_proj: scenario.projections.len() as u32,
            ring_slots: max_delay + 1,
            seed_lo: scenario.seed as u32,
            seed_hi: (scenario.seed >> 32) as u32,
            count_capacity: batch,
            sample_interval,
            sample_capacity: batch / sample_interval + 2,
            rec_capacity: memory::record_capacity(scenario, batch as u64, |p| p.size as u64) as u32,
            fuse_steps: fuse_steps(scenario),
            parity: 0,
            spike_groups: spike_groups(
                &per_spike
                    .iter()
                    .map(SynapsesPerSpike::most)
                    .collect::<Vec<_>>(),
            ),
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
            inv_scale: params.sim.inv_scale,
        };
        let total_steps = steps_of(scenario.duration_ms, dt) as u64;
        let segments = scenario
            .protocol
            .segments(dt, total_steps, scenario.drug.protocol_time_min);
        let mut net = Network {
            scenario: scenario.clone(),
            params,
            pop_names: scenario
                .populations
                .iter()
                .map(|p| p.name.clone())
                .collect(),
            n: n_total,
            steps: segments.iter().map(|s| s.steps).sum(),
            segments,
            copies: vec![Copy {
                seed: scenario.seed,
                first_neuron: 0,
                neurons: n_total,
                first_pop: 0,
                pops: scenario.populations.len(),
            }],
            scales,
            tables,
            projections,
            poisson_recips: rng::poisson_recips(),
            rate_bin_steps: steps_of(scenario.record.rate_bin_ms, dt).max(1),
            pk: match &scenario.pharmacokinetics {
                Some(p) => Some(p.profile().map_err(|message| Error::Scenario {
                    file: scenario.name.clone(),
                    message,
                })?),
                None => None,
            },
            intervention_at: None,
        };
        net.intervention_at = net.find_intervention_step();
        Ok(net)
    }

    /// Populations in use.
    pub fn pops(&self) -> &[PopParams] {
        &self.params.pops[..self.params.sim.n_pop as usize]
    }

    /// Projections in use.
    pub fn projs(&self) -> &[ProjParams] {
        &self.params.projs[..self.params.sim.n_proj as usize]
    }

    /// Seed as one word.
    pub fn seed(&self) -> u64 {
        self.params.sim.seed_lo as u64 | ((self.params.sim.seed_hi as u64) << 32)
    }

    /// Synapses in all (expected count for procedural fixed-probability projections).
    pub fn synapse_count(&self) -> f64 {
        self.projections.iter().map(|p| p.synapses).sum()
    }

    /// The initial state: V and AMPA/GABA_A conductances from the scenario's normal
    /// distributions (stream `init`, counter `(neuron, 0..2)`), everything else zero.
    pub fn initial_state(&self) -> NeuronState {
        let n = self.n as usize;
        let mut st = NeuronState {
            v: vec![0.0; n],
            refrac: vec![0; n],
            g_ampa: vec![0.0; n],
            g_gaba: vec![0.0; n],
            x_nmda: vec![0.0; n],
            pools: [vec![[0.0; 4]; n], vec![[0.0; 4]; n]],
            glu_r: vec![1.0; n],
            sig_nrn: vec![[1.0, 0.0]; n],
            isi: vec![
                IsiStat {
                    last_step: NO_SPIKE,
                    ..IsiStat::default()
                };
                n
            ],
        };
        for c in &self.copies {
            let k = key(c.seed, STREAM_INIT);
            let range = c.first_pop..c.first_pop + c.pops;
            for (p, pp) in self.scenario.populations[range.clone()]
                .iter()
                .zip(&self.pops()[range])
            {
                let init = &p.init;
                let v_mean = init.v_mean_mV.unwrap_or(p.neuron.e_l_mV);
                for i in pp.offset..pp.offset + pp.size {
                    // The counter is the neuron's index in its own network.
                    let local = i - c.first_neuron;
                    let (z0, z1) = normal_pair(threefry2x32(UVec2::new(local, 0), k));
                    let (z2, _) = normal_pair(threefry2x32(UVec2::new(local, 1), k));
                    st.v[i as usize] = f32_of(v_mean + init.v_sd_mV * z0);
                    st.g_ampa[i as usize] = f32_of(init.g_ampa_mean_nS + init.g_ampa_sd_nS * z1);
                    st.g_gaba[i as usize] = f32_of(init.g_gaba_mean_nS + init.g_gaba_sd_nS * z2);
                }
            }
        }
        if let Some(sig) = &self.scenario.signalling {
            let s0 = f32_of(sig.set_point());
            for pp in self.pops().iter().filter(|p| p.sig_on != 0) {
                st.sig_nrn[pp.offset as usize..(pp.offset + pp.size) as usize].fill([s0, 0.0]);
            }
        }
        st
    }

    /// Whether any population carries the slow signalling state.
    pub fn has_signalling(&self) -> bool {
        self.pops().iter().any(|p| p.sig_on != 0)
    }

    /// Free ketamine at the receptors at the start of `step` (µM): the constant
    /// `drug.conc_um`, or the protocol's free effect-site level at protocol time
    /// `drug.protocol_time_min + step dt`.
    pub fn conc_at_step(&self, step: u64) -> f64 {
        match &self.pk {
            Some(p) => p
                .free_brain_conc_um(self.protocol_min_at_step(step))
                .max(0.0),
            None => {
                if step < self.drug_start_step() {
                    0.0
                } else {
                    self.scenario.drug.conc_um
                }
            }
        }
    }

    /// Free ketamine at the receptors at protocol time `t_min` (µM), also between the
    /// windows of a multiscale run: the protocol's free effect-site level, or the
    /// constant `drug.conc_um` from `drug.start_ms` on.
    pub fn conc_at_min(&self, t_min: f64) -> f64 {
        match &self.pk {
            Some(p) => p.free_brain_conc_um(t_min).max(0.0),
            None => {
                let d = &self.scenario.drug;
                if t_min >= d.protocol_time_min + d.start_ms / 60_000.0 {
                    d.conc_um
                } else {
                    0.0
                }
            }
        }
    }

    /// Protocol time (min) at the start of `step`: within the segment holding `step`
    /// (the last one for the step after the end).
    pub fn protocol_min_at_step(&self, step: u64) -> f64 {
        let seg = self.segment_of(step);
        seg.protocol_min + (step - seg.first_step) as f64 * self.scenario.dt_ms / 60_000.0
    }

    /// The segment that holds `step` (the last one for steps past the end).
    pub fn segment_of(&self, step: u64) -> &crate::scenario::Segment {
        let k = self
            .segments
            .partition_point(|s| s.first_step <= step)
            .saturating_sub(1);
        &self.segments[k]
    }

    /// Step at which a constant `drug.conc_um` is applied.
    pub fn drug_start_step(&self) -> u64 {
        steps_of(self.scenario.drug.start_ms, self.scenario.dt_ms) as u64
    }

    /// Steps of the batch starting at `step`, at most `max`, ending at the next step
    /// change of the drug (so a batch never interpolates across a step).
    pub fn batch_len(&self, step: u64, max: u64) -> u32 {
        let mut n = (self.steps - step).min(max);
        let seg = self.segment_of(step);
        n = n.min(seg.first_step + seg.steps - step);
        let start = self.drug_start_step();
        if self.pk.is_none() && step < start {
            n = n.min(start - step);
        }
        if let Some(iv) = self.intervention_step() {
            if step < iv {
                n = n.min(iv - step);
            }
        }
        n.max(1) as u32
    }

    /// The drug block for a batch of `steps` starting at `step`: the concentration at
    /// its start and a per-step slope to the concentration at its end (linear
    /// interpolation within a batch; batches are short against the PK time scales and
    /// end at a concentration step, see `batch_len`).
    pub fn drug_at(&self, step: u64, steps: u32) -> DrugParams {
        let c0 = self.conc_at_step(step);
        let c1 = match &self.pk {
            // The batch's end on the clock of the batch's own segment (a batch never
            // crosses a segment boundary; the next segment may start elsewhere in the
            // protocol).
            Some(p) => {
                let seg = self.segment_of(step);
                let t_min = seg.protocol_min
                    + (step + steps as u64 - seg.first_step) as f64 * self.scenario.dt_ms
                        / 60_000.0;
                p.free_brain_conc_um(t_min).max(0.0)
            }
            None => c0,
        };
        DrugParams {
            conc0_um: f32_of(c0),
            slope_um_per_step: f32_of((c1 - c0) / steps.max(1) as f64),
            step0: step as u32,
            ampa_block: f32_of(self.ampa_block_at(step)),
        }
    }

    /// First step at which the interventions act (`interventions.time_min`, by
    /// default the end of the baseline readouts); `None` without any.
    pub fn intervention_step(&self) -> Option<u64> {
        self.intervention_at
    }

    /// [`Network::intervention_step`] from the scenario, the segments and the windows.
    fn find_intervention_step(&self) -> Option<u64> {
        let iv = &self.scenario.interventions;
        if !iv.any() {
            return None;
        }
        match iv.time_min {
            None => {
                let spans = crate::protocol::window_spans(self);
                let k = crate::protocol::reference_window(self, &spans);
                spans.get(k).map(|w| w.1)
            }
            Some(t) => {
                // The first step whose protocol time is at or after t.
                let k = self.segments.iter().position(|s| {
                    s.protocol_min + s.steps as f64 * self.scenario.dt_ms / 60_000.0 > t
                })?;
                let seg = &self.segments[k];
                let into = ((t - seg.protocol_min) * 60_000.0 / self.scenario.dt_ms)
                    .ceil()
                    .max(0.0) as u64;
                Some(seg.first_step + into.min(seg.steps))
            }
        }
    }

    /// Fraction of AMPA conductance blocked at `step` (`interventions.ampa_block`
    /// from [`Network::intervention_step`] on).
    pub fn ampa_block_at(&self, step: u64) -> f64 {
        match self.intervention_step() {
            Some(s) if step >= s => self.scenario.interventions.ampa_block,
            _ => 0.0,
        }
    }

    /// Initial extracellular glutamate of each population (µM; 0 for populations
    /// that release none).
    pub fn initial_glutamate(&self) -> Vec<f32> {
        self.scenario
            .populations
            .iter()
            .map(|p| p.glutamate.as_ref().map_or(0.0, |g| f32_of(g.initial_um)))
            .collect()
    }

    /// Key of drive `index`'s Poisson stream.
    pub fn poisson_key(&self, index: u32) -> UVec2 {
        key(self.seed(), STREAM_POISSON | index)
    }
}

/// Workgroups of `PROC_SPLIT` invocations per spike in the GPU's propagation: enough
/// for one synapse per invocation of the neuron with the most synapses per spike
/// (`most_per_spike`, one entry per population, probability-rule projections
/// excluded: their slices stay in the first workgroup), from 1 to
/// `MAX_SPIKE_GROUPS`. With one workgroup per spike a step of the microcircuit (25
/// spikes of about 3,900 synapses each) kept 1,600 invocations of an H200 busy, each
/// walking 60 synapses' random draws in sequence.
///
/// The most, not the mean: a propagation takes as long as its slowest invocation,
/// and out-degrees drawn by the fixed-total-number rule (the microcircuit's) or
/// stored in tables vary from neuron to neuron. Sized by the mean, the invocations
/// of about a third of the busiest population's spikes would each walk two synapses
/// in sequence, and with some 25 spikes per step nearly every step would have one.
pub fn spike_groups(most_per_spike: &[u64]) -> u32 {
    let most = most_per_spike.iter().copied().max().unwrap_or(0);
    let groups = most.div_ceil(u64::from(limits::PROC_SPLIT));
    groups.clamp(1, u64::from(limits::MAX_SPIKE_GROUPS)) as u32
}

/// Synapses per spike of a presynaptic population's neurons, over its projections
/// other than the probability rule's (`spike_groups`).
#[derive(Debug, Clone, Default)]
struct SynapsesPerSpike {
    /// What every neuron has: the sum of the fixed out-degrees.
    every: u64,
    /// Each neuron's own: the summed row lengths of its tables and fixed-total-number
    /// projections (empty without any).
    own: Vec<u64>,
}

impl SynapsesPerSpike {
    /// Add a projection's row pointers (`pre_size + 1` of them; row `l` holds
    /// `rows[l + 1] - rows[l]` synapses).
    fn add_rows(&mut self, rows: &[u32]) {
        let n = rows.len().saturating_sub(1);
        if self.own.len() < n {
            self.own.resize(n, 0);
        }
        for (own, w) in self.own.iter_mut().zip(rows.windows(2)) {
            *own += u64::from(w[1].saturating_sub(w[0]));
        }
    }

    /// The most synapses any one neuron has per spike.
    fn most(&self) -> u64 {
        self.every + self.own.iter().copied().max().unwrap_or(0)
    }
}

/// Expected synapse count of projection `pr` of `scenario`: `p` times the pairs
/// (less the self-pairs of a population without autapses) for fixed probability,
/// exact for the count rules (`k N_pre`, `k N_post`, `n`).
pub fn expected_synapses(scenario: &Scenario, pr: &crate::scenario::Projection) -> f64 {
    let size = |name: &str| {
        scenario
            .population_index(name)
            .map_or(0.0, |i| scenario.populations[i].size.max(0) as f64)
    };
    let (pre, post) = (size(&pr.pre), size(&pr.post));
    match pr.rule {
        Rule::FixedProbability => {
            let self_pairs = if pr.pre == pr.post && !pr.autapses {
                pre
            } else {
                0.0
            };
            pr.p.unwrap_or(1.0) * (pre * post - self_pairs)
        }
        Rule::FixedOutdegree => pr.k.unwrap_or(0) as f64 * pre,
        Rule::FixedIndegree => pr.k.unwrap_or(0) as f64 * post,
        Rule::FixedTotalNumber => pr.n.unwrap_or(0) as f64,
    }
}

/// Relative error allowed in a weight rounded to its receptor's fixed-point step.
pub const WEIGHT_RESOLUTION: f64 = 1e-3;

/// The per-receptor fixed-point scales (input units per nS or pA, powers of two) of
/// the ring buffers: the finest at which the largest simultaneous input onto any one
/// neuron fits in `i32`, summed over the projections onto it of (arrivals bound) x
/// (largest jump: the weight plus 5.3 SD where weights are drawn).
///
/// The arrivals bound of a projection is the most synapses a neuron can have from it:
/// - fixed in-degree: `k`;
/// - fixed out-degree and fixed total number: the expected in-degree lambda plus
///   10 sqrt(lambda) + 10 (at most every synapse), a count that a multinomial in-degree
///   exceeds with a probability below about 1e-20 per neuron;
/// - fixed probability: every presynaptic neuron, the certain worst case, as long as
///   the scales it gives resolve every weight to [`WEIGHT_RESOLUTION`]. In populations
///   of tens of millions it does not (a scaled COBA network of 3e7 neurons); the same
///   10-sigma bound of its binomial in-degree then replaces it for every
///   fixed-probability projection. Networks that resolve with the certain bound keep
///   it, so their scales, and every result, are what they were before the fallback.
///
/// Errors: `Capacity`, naming the projection, where no bound resolves a weight.
pub fn fixed_point_scales(scenario: &Scenario) -> Result<[f64; 3]> {
    let scales = scales_for(&receptor_bounds(scenario, false));
    if unresolved_weight(scenario, &scales).is_none() {
        return Ok(scales);
    }
    let statistical = receptor_bounds(scenario, true);
    let fallback = scales_for(&statistical);
    let Some(i) = unresolved_weight(scenario, &fallback) else {
        return Ok(fallback);
    };
    // The population whose input sets the channel's scale, and the projection onto it
    // that brings most of that input.
    let pr = &scenario.projections[i];
    let ch = pr.channel() as usize;
    let (worst_pop, worst) = statistical
        .iter()
        .enumerate()
        .map(|(k, b)| (k, b[ch]))
        .fold((0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
    let onto_worst = |q: &&crate::scenario::Projection| {
        q.channel() as usize == ch && scenario.population_index(&q.post) == Some(worst_pop)
    };
    let top = scenario
        .projections
        .iter()
        .enumerate()
        .filter(|(_, q)| onto_worst(q))
        .map(|(k, q)| (k, input_bound(scenario, q, true)))
        .fold((i, 0.0), |a, b| if b.1 > a.1 { b } else { a })
        .0;
    let tp = &scenario.projections[top];
    Err(Error::Capacity(format!(
        "projections[{i}] ({} -> {}): weight {} cannot be represented to {WEIGHT_RESOLUTION} of itself in the {} ring buffer's 32-bit fixed point, whose scale must hold the largest input of a step onto `{}`, {worst:.3e} (fixed-probability in-degrees at their 10-sigma bound), most of it from projections[{top}] ({} -> {}, weight {}); lower that weight or the population sizes",
        pr.pre,
        pr.post,
        pr.jump(),
        CHANNEL_NAMES[ch],
        scenario.populations[worst_pop].name,
        tp.pre,
        tp.post,
        tp.jump()
    )))
}

/// The ring buffers' channels, by `Projection::channel`.
const CHANNEL_NAMES: [&str; 3] = ["AMPA (excitatory)", "GABA_A (inhibitory)", "NMDA"];

/// Per population and receptor, the largest simultaneous input of a step
/// ([`fixed_point_scales`]); `in_degree_bound`: fixed-probability projections count
/// their in-degree's 10-sigma bound instead of every presynaptic neuron.
fn receptor_bounds(scenario: &Scenario, in_degree_bound: bool) -> Vec<[f64; 3]> {
    let mut bound = vec![[0.0f64; 3]; scenario.populations.len()];
    for pr in &scenario.projections {
        let post_i = scenario.population_index(&pr.post).unwrap_or(0);
        bound[post_i][pr.channel() as usize] += input_bound(scenario, pr, in_degree_bound);
    }
    bound
}

/// The largest input of one step that projection `pr` can bring one neuron: its
/// synapses onto the neuron (the arrivals bound of [`fixed_point_scales`]) times the
/// largest jump a synapse can have (drawn weights reach mean + 5.3 SD).
fn input_bound(
    scenario: &Scenario,
    pr: &crate::scenario::Projection,
    in_degree_bound: bool,
) -> f64 {
    let size =
        |name: &str| scenario.populations[scenario.population_index(name).unwrap_or(0)].size as f64;
    let (pre, post) = (size(&pr.pre), size(&pr.post));
    let ten_sigma = |most: f64| {
        let lam = expected_synapses(scenario, pr) / post;
        (lam + 10.0 * lam.sqrt() + 10.0).min(most)
    };
    let arrivals = match pr.rule {
        Rule::FixedProbability if in_degree_bound => ten_sigma(pre),
        Rule::FixedProbability => pre,
        Rule::FixedIndegree => pr.k.unwrap_or(0) as f64,
        Rule::FixedOutdegree | Rule::FixedTotalNumber => ten_sigma(expected_synapses(scenario, pr)),
    };
    arrivals * (pr.jump().abs() + rng::NORMAL_F32_MAX * pr.weight_sd_pA.unwrap_or(0.0))
}

/// The finest power-of-two scale per receptor at which every population's bound fits
/// in `i32` (2^24 for a receptor without input).
fn scales_for(bound: &[[f64; 3]]) -> [f64; 3] {
    let mut scales = [1.0f64; 3];
    for (r, scale) in scales.iter_mut().enumerate() {
        let worst = bound.iter().map(|b| b[r]).fold(0.0, f64::max);
        let e = if worst > 0.0 {
            ((i32::MAX as f64) / worst)
                .log2()
                .floor()
                .clamp(-60.0, 40.0)
        } else {
            24.0
        };
        *scale = 2f64.powi(e as i32);
    }
    scales
}

/// The first projection whose weight, rounded to its receptor's step under `scales`,
/// is off by more than [`WEIGHT_RESOLUTION`] of itself.
fn unresolved_weight(scenario: &Scenario, scales: &[f64; 3]) -> Option<usize> {
    scenario.projections.iter().position(|pr| {
        let w = pr.jump();
        let scale = scales[pr.channel() as usize];
        w != 0.0 && ((w * scale).round() / scale - w).abs() > WEIGHT_RESOLUTION * w.abs()
    })
}

/// CSR table of one projection: from the procedural generator (storage = "table";
/// `degree_rows`: a fixed-total-number projection's out-degree rows, see
/// `connectivity::out_degree`, with `proj.table_base` 0), or a fixed in-degree draw
/// (each post neuron picks `k` sources uniformly with replacement, stream
/// `STREAM_CONN | index * PROC_SPLIT`, counter `(post, m)`).
fn build_table(
    tables: &mut Tables,
    proj: &ProjParams,
    degree_rows: &[u32],
    pr: &crate::scenario::Projection,
    seed: u64,
    index: usize,
) -> Result<()> {
    let pre_size = proj.pre_size as usize;
    let base = tables.cols.len();
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); pre_size];
    if pr.rule == Rule::FixedIndegree {
        let k = key(seed, STREAM_CONN | (index as u32 * PROC_SPLIT));
        let kin = pr.k.unwrap_or(0) as u32;
        let exclude_self = proj.same_pop != 0 && proj.autapses == 0;
        let range = if exclude_self {
            proj.pre_size - 1
        } else {
            proj.pre_size
        };
        for post in 0..proj.post_size {
            for m in 0..kin {
                let r = threefry2x32(UVec2::new(post, m), k);
                let mut s = connectivity::mul_hi_u32(r.x, range);
                if exclude_self && s >= post {
                    s += 1;
                }
                rows[s as usize].push(post);
            }
        }
    } else {
        for (pre, row) in rows.iter_mut().enumerate() {
            for tid in 0..PROC_SPLIT {
                connectivity::for_each_target(proj, degree_rows, pre as u32, tid, |t| row.push(t));
            }
        }
    }
    let total: usize = rows.iter().map(|r| r.len()).sum();
    if base + total > u32::MAX as usize {
        return Err(Error::Capacity(format!(
            "projections[{index}]: {total} explicit synapses exceed the 2^32 table entries; use a procedural rule"
        )));
    }
    tables.cols.reserve(total);
    for row in rows {
        tables.rows.push(tables.cols.len() as u32);
        tables.cols.extend_from_slice(&row);
    }
    tables.rows.push(tables.cols.len() as u32);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{
        fixed_point_scales, receptor_bounds, scales_for, spike_groups, unresolved_weight,
        WEIGHT_RESOLUTION,
    };
    use crate::bench::scaled_coba;
    use crate::error::Error;
    use crate::scenario::{Scenario, EMBEDDED};

    /// Every embedded scenario, and the benchmark's scaled COBA up to 1e6 neurons,
    /// resolves its weights with the certain bound (every presynaptic neuron of a
    /// fixed-probability projection), so the in-degree fallback leaves their
    /// fixed-point scales, and with them every result, as they were.
    #[test]
    fn networks_that_resolve_with_the_certain_bound_keep_it() {
        let mut scenarios: Vec<Scenario> = EMBEDDED
            .iter()
            .map(|(name, text)| Scenario::from_toml(name, text).expect("embedded scenario"))
            .collect();
        for n in [4_000, 100_000, 1_000_000] {
            scenarios.push(scaled_coba(n, 1000, 1).expect("scaled coba"));
        }
        for s in &scenarios {
            let certain = scales_for(&receptor_bounds(s, false));
            assert_eq!(unresolved_weight(s, &certain), None, "{}", s.name);
            assert_eq!(
                fixed_point_scales(s).expect("scales"),
                certain,
                "{}",
                s.name
            );
        }
    }

    /// At 3e7 neurons the certain bound cannot resolve COBA's weights; the in-degree's
    /// 10-sigma bound gives a finer scale at which every weight is within
    /// WEIGHT_RESOLUTION, and still above the expected input of a step with every
    /// input of the mean in-degree arriving at once.
    #[test]
    fn tens_of_millions_take_the_in_degree_bound() {
        let s = scaled_coba(30_000_000, 1000, 1).expect("scaled coba");
        let certain = scales_for(&receptor_bounds(&s, false));
        assert!(unresolved_weight(&s, &certain).is_some());
        let scales = fixed_point_scales(&s).expect("scales");
        assert!(
            scales[0] > certain[0] && scales[1] > certain[1],
            "{scales:?}"
        );
        for pr in &s.projections {
            let (w, scale) = (pr.jump(), scales[pr.channel() as usize]);
            assert!(((w * scale).round() / scale - w).abs() <= WEIGHT_RESOLUTION * w.abs());
        }
        // Onto E: 800 excitatory inputs expected. Their sum at the mean in-degree
        // fits in i32 with room (the bound is 800 + 10 sqrt(800) + 10 = 1093 inputs),
        // and the scale is the finest that bound allows (within its power of two).
        let mean_ampa = 800.0 * s.projections[0].jump();
        assert!(mean_ampa * scales[0] < i32::MAX as f64 / 1.2);
        assert!(mean_ampa * scales[0] > i32::MAX as f64 / 4.0);
    }

    /// A weight that no bound resolves (a tiny weight next to a large input onto the
    /// same receptor) is refused, naming the projection, the population whose input
    /// sets the scale and the projection that brings most of that input.
    #[test]
    fn weights_no_bound_resolves_are_refused() {
        let mut s = scaled_coba(4_000, 80, 1).expect("scaled coba");
        s.projections[0].weight_nS = Some(1e9);
        let msg = match fixed_point_scales(&s) {
            Err(Error::Capacity(m)) => m,
            other => panic!("expected a capacity error, got {other:?}"),
        };
        // AMPA's scale is shared by both targets: E -> I's weight is the one lost,
        // to the input onto E that E -> E brings.
        assert!(msg.starts_with("projections[1] (E -> I)"), "{msg}");
        assert!(msg.contains("AMPA (excitatory) ring buffer"), "{msg}");
        assert!(msg.contains("onto `E`"), "{msg}");
        assert!(
            msg.contains("most of it from projections[0] (E -> E, weight 1000000000)"),
            "{msg}"
        );
        assert!(msg.contains("32-bit fixed point"), "{msg}");
    }

    /// One workgroup per `PROC_SPLIT` synapses per spike of the busiest population,
    /// at least 1 (no synapses, or only probability-rule ones) and at most
    /// `MAX_SPIKE_GROUPS`.
    #[test]
    fn spike_groups_cover_the_busiest_population() {
        assert_eq!(spike_groups(&[]), 1);
        assert_eq!(spike_groups(&[0, 0]), 1);
        assert_eq!(spike_groups(&[64]), 1);
        assert_eq!(spike_groups(&[10, 65]), 2);
        assert_eq!(spike_groups(&[3904]), 61);
        assert_eq!(spike_groups(&[3905]), 62);
        assert_eq!(
            spike_groups(&[1_000_000_000]),
            super::limits::MAX_SPIKE_GROUPS
        );
    }
}
