//! Scenario checks: each failure names the field (as a dotted path) and what is
//! allowed, so that `ketasim run` can print it and exit non-zero.

use super::{ProtocolMode, Receptor, Rule, Scenario, Storage, SynapseKind};
use crate::model::limits::{
    MAX_DELAY_STEPS, MAX_DRIVES, MAX_NEURONS, MAX_NMDA_POOLS, MAX_POPULATIONS, MAX_PROJECTIONS,
};
use crate::pk::MAX_CONC_UM;
use crate::rng::{NORMAL_F32_MAX, POISSON_MAX_MEAN};

use super::checks::{finite, non_negative, positive, Check};

/// Largest step of a conductance-based membrane relative to its leak time constant,
/// dt / tau_m (tau_m = C / g_L). Chosen: the forward-Euler step multiplies V - E_L by
/// 1 - dt/tau_m where the exact decay is e^(-dt/tau_m); at a tenth the two differ by
/// 0.5% per step (0.9 against 0.905), while at 1 the leak overshoots E_L and beyond 2
/// it diverges. Every scenario here runs at 0.01 (dt 0.1 ms, tau_m 10-20 ms). Current-based
/// populations integrate exactly and have no such limit.
pub const MAX_DT_OVER_TAU_M: f64 = 0.1;

/// The weight fields of a projection or drive: `weight_nS` for AMPA/GABA_A, `drive`
/// for NMDA, never both.
fn weight(field: &str, receptor: Receptor, weight_ns: Option<f64>, drive: Option<f64>) -> Check {
    let name = receptor.label();
    match receptor {
        Receptor::Ampa | Receptor::GabaA => {
            if drive.is_some() {
                return Err(format!(
                    "{field}.drive: only NMDA takes `drive`; give `weight_nS` (nS) for {name}"
                ));
            }
            match weight_ns {
                Some(w) => non_negative(&format!("{field}.weight_nS"), w),
                None => Err(format!(
                    "{field}.weight_nS: missing; {name} needs a conductance jump in nS (>= 0)"
                )),
            }
        }
        Receptor::Nmda => {
            if weight_ns.is_some() {
                return Err(format!(
                    "{field}.weight_nS: NMDA takes `drive` (dimensionless jump of the transmitter drive), not `weight_nS`"
                ));
            }
            match drive {
                Some(d) => non_negative(&format!("{field}.drive"), d),
                None => Err(format!(
                    "{field}.drive: missing; NMDA needs a drive jump per spike (dimensionless, >= 0)"
                )),
            }
        }
    }
}

/// The synaptic fields of a projection or drive `field` onto population `post`
/// (named `post_name`) of kind `kind`: conductance-based targets take `receptor` and
/// `weight_nS`/`drive` (checked by [`weight`]); current-based ones take `weight_pA`
/// only, whose sign picks the current.
#[allow(clippy::too_many_arguments)]
fn synapse_fields(
    field: &str,
    post_name: &str,
    kind: SynapseKind,
    receptor: Option<Receptor>,
    weight_ns: Option<f64>,
    drive: Option<f64>,
    weight_pa: Option<f64>,
    weight_sd_pa: Option<f64>,
) -> Check {
    match kind {
        SynapseKind::Conductance => {
            if weight_pa.is_some() {
                return Err(format!(
                    "{field}.weight_pA: population `{post_name}` has conductance-based synapses; give weight_nS (or drive for NMDA), or set synapse = \"current\" on `{post_name}`"
                ));
            }
            if weight_sd_pa.is_some() {
                return Err(format!(
                    "{field}.weight_sd_pA: only for current-based targets (weight_pA); population `{post_name}` has conductance-based synapses"
                ));
            }
            let Some(r) = receptor else {
                return Err(format!(
                    "{field}.receptor: missing; population `{post_name}` has conductance-based synapses: give \"ampa\", \"gaba_a\" or \"nmda\""
                ));
            };
            weight(field, r, weight_ns, drive)
        }
        SynapseKind::Current => {
            if let Some(r) = receptor {
                return Err(format!(
                    "{field}.receptor: population `{post_name}` has current-based synapses (synapse = \"current\"), where the sign of weight_pA picks the excitatory or inhibitory current; remove receptor = \"{}\"",
                    r.label()
                ));
            }
            for (name, v) in [("weight_nS", weight_ns), ("drive", drive)] {
                if v.is_some() {
                    return Err(format!(
                        "{field}.{name}: population `{post_name}` has current-based synapses (synapse = \"current\"); give weight_pA (pA; > 0 excitatory, < 0 inhibitory)"
                    ));
                }
            }
            match weight_pa {
                Some(w) => finite(&format!("{field}.weight_pA"), w)?,
                None => {
                    return Err(format!(
                        "{field}.weight_pA: missing; population `{post_name}` has current-based synapses: give the current jump per spike in pA (> 0 excitatory, < 0 inhibitory)"
                    ))
                }
            }
            if let Some(sd) = weight_sd_pa {
                non_negative(&format!("{field}.weight_sd_pA"), sd)?;
            }
            Ok(())
        }
    }
}

impl Scenario {
    /// Check every field; the error names the first bad field.
    pub fn validate(&self) -> Check {
        positive("dt_ms", self.dt_ms)?;
        let first_dose_min = self
            .pharmacokinetics
            .as_ref()
            .and_then(|pk| pk.doses.iter().map(|d| d.time_min).reduce(f64::min));
        self.protocol
            .validate(self.dt_ms, self.pharmacokinetics.is_some(), first_dose_min)?;
        if self.protocol.mode == ProtocolMode::Multiscale {
            let d = self.protocol.multiscale_duration_ms(self.dt_ms);
            if (self.duration_ms - d).abs() > 0.5 * self.dt_ms {
                return Err(format!(
                    "duration_ms: in multiscale mode the simulated time follows from [protocol] ({d} ms = warmup_ms + windows x (settle_ms + window_ms)); remove duration_ms (got {})",
                    self.duration_ms
                ));
            }
            if self.drug.protocol_time_min != 0.0 {
                return Err("drug.protocol_time_min: multiscale places its windows with protocol.window_times_min; remove drug.protocol_time_min".into());
            }
        }
        if self.duration_ms == 0.0 {
            return Err("duration_ms: missing or 0; give the simulated time in ms, > 0 (or use [protocol] mode = \"multiscale\")".into());
        }
        positive("duration_ms", self.duration_ms)?;
        if self.duration_ms < self.dt_ms {
            return Err(format!(
                "duration_ms: must be at least one step, dt_ms = {} (got {})",
                self.dt_ms, self.duration_ms
            ));
        }
        if self.duration_ms / self.dt_ms > u32::MAX as f64 / 2.0 {
            return Err(format!(
                "duration_ms: {} ms at dt_ms = {} is more than 2^31 steps; split the run or raise dt_ms",
                self.duration_ms, self.dt_ms
            ));
        }
        if self.seed >> 60 != 0 {
            return Err(format!(
                "seed: must be below 2^60 (the top bits key the random streams), got {}",
                self.seed
            ));
        }
        if self.populations.is_empty() {
            return Err("populations: at least one [[populations]] table is needed".into());
        }
        if self.populations.len() > MAX_POPULATIONS {
            return Err(format!(
                "populations: at most {MAX_POPULATIONS} populations are supported (got {})",
                self.populations.len()
            ));
        }
        let mut total: u64 = 0;
        for (i, p) in self.populations.iter().enumerate() {
            let f = format!("populations[{i}] ({:?})", p.name);
            if p.name.trim().is_empty() {
                return Err(format!("populations[{i}].name: must not be empty"));
            }
            if self.populations[..i].iter().any(|q| q.name == p.name) {
                return Err(format!(
                    "{f}.name: `{}` is used twice; names must be unique",
                    p.name
                ));
            }
            if p.size < 1 {
                return Err(format!(
                    "{f}.size: must be an integer >= 1 (got {})",
                    p.size
                ));
            }
            total += p.size as u64;
            let n = &p.neuron;
            positive(&format!("{f}.neuron.c_pF"), n.c_pF)?;
            non_negative(&format!("{f}.neuron.g_l_nS"), n.g_l_nS)?;
            for (name, v) in [
                ("e_l_mV", n.e_l_mV),
                ("v_th_mV", n.v_th_mV),
                ("v_reset_mV", n.v_reset_mV),
                ("i_ext_pA", n.i_ext_pA),
                ("e_ampa_mV", n.e_ampa_mV),
                ("e_nmda_mV", n.e_nmda_mV),
                ("e_gaba_mV", n.e_gaba_mV),
            ] {
                finite(&format!("{f}.neuron.{name}"), v)?;
            }
            if n.v_reset_mV >= n.v_th_mV {
                return Err(format!(
                    "{f}.neuron.v_reset_mV: must be below v_th_mV = {} (got {})",
                    n.v_th_mV, n.v_reset_mV
                ));
            }
            non_negative(&format!("{f}.neuron.t_ref_ms"), n.t_ref_ms)?;
            positive(&format!("{f}.neuron.tau_ampa_ms"), n.tau_ampa_ms)?;
            positive(&format!("{f}.neuron.tau_gaba_ms"), n.tau_gaba_ms)?;
            match p.synapse {
                SynapseKind::Conductance => {
                    let dt_over_tau_m = self.dt_ms * n.g_l_nS / n.c_pF;
                    if dt_over_tau_m > MAX_DT_OVER_TAU_M {
                        return Err(format!(
                            "{f}.neuron.g_l_nS: tau_m = c_pF / g_l_nS = {:.4} ms is shorter than {} dt_ms (dt_ms = {}); the forward-Euler membrane step needs dt_ms <= tau_m / {} (at dt_ms = tau_m it overshoots E_L, beyond 2 tau_m it diverges): lower g_l_nS or dt_ms, or raise c_pF",
                            n.c_pF / n.g_l_nS,
                            1.0 / MAX_DT_OVER_TAU_M,
                            self.dt_ms,
                            1.0 / MAX_DT_OVER_TAU_M
                        ));
                    }
                    for (name, v) in [
                        ("tau_syn_ex_ms", n.tau_syn_ex_ms),
                        ("tau_syn_in_ms", n.tau_syn_in_ms),
                    ] {
                        if v.is_some() {
                            return Err(format!(
                                "{f}.neuron.{name}: only for current-based synapses; set synapse = \"current\" on the population, or use tau_ampa_ms/tau_gaba_ms"
                            ));
                        }
                    }
                }
                SynapseKind::Current => {
                    for (name, v) in [
                        ("tau_syn_ex_ms", n.tau_syn_ex_ms),
                        ("tau_syn_in_ms", n.tau_syn_in_ms),
                    ] {
                        if let Some(t) = v {
                            positive(&format!("{f}.neuron.{name}"), t)?;
                        }
                    }
                    if n.g_l_nS <= 0.0 {
                        return Err(format!(
                            "{f}.neuron.g_l_nS: current-based populations need a leak (tau_m = c_pF / g_l_nS), > 0 (got {})",
                            n.g_l_nS
                        ));
                    }
                    if p.nmda.is_some() {
                        return Err(format!(
                            "{f}.nmda: current-based populations (synapse = \"current\") have no NMDA receptors; remove [populations.nmda] or set synapse = \"conductance\""
                        ));
                    }
                    let init = &p.init;
                    for (name, v) in [
                        ("g_ampa_mean_nS", init.g_ampa_mean_nS),
                        ("g_ampa_sd_nS", init.g_ampa_sd_nS),
                        ("g_gaba_mean_nS", init.g_gaba_mean_nS),
                        ("g_gaba_sd_nS", init.g_gaba_sd_nS),
                    ] {
                        if v != 0.0 {
                            return Err(format!(
                                "{f}.init.{name}: current-based populations start with zero synaptic currents; remove it"
                            ));
                        }
                    }
                }
            }
            if let Some(m) = &p.nmda {
                non_negative(&format!("{f}.nmda.g_max_nS"), m.g_max_nS)?;
                positive(&format!("{f}.nmda.tau_rise_ms"), m.tau_rise_ms)?;
                non_negative(&format!("{f}.nmda.alpha_per_ms"), m.alpha_per_ms)?;
                if let Some(t) = m.tau_decay_ms {
                    positive(&format!("{f}.nmda.tau_decay_ms"), t)?;
                }
                if let Some(k) = m.k0_mg_mM {
                    positive(&format!("{f}.nmda.k0_mg_mM"), k)?;
                }
                non_negative(&format!("{f}.nmda.mg_mM"), m.mg_mM)?;
                if m.pools.len() > MAX_NMDA_POOLS {
                    return Err(format!(
                        "{f}.nmda.pools: at most {MAX_NMDA_POOLS} subunit pools per population (got {})",
                        m.pools.len()
                    ));
                }
                if !m.pools.is_empty() {
                    for (k, pool) in m.pools.iter().enumerate() {
                        let g = format!("{f}.nmda.pools[{k}]");
                        if !(pool.fraction.is_finite() && (0.0..=1.0).contains(&pool.fraction)) {
                            return Err(format!(
                                "{g}.fraction: must be in [0, 1] (got {})",
                                pool.fraction
                            ));
                        }
                        if let Some(t) = pool.tau_decay_ms {
                            positive(&format!("{g}.tau_decay_ms"), t)?;
                        }
                        if let Some(k0) = pool.k0_mg_mM {
                            positive(&format!("{g}.k0_mg_mM"), k0)?;
                        }
                        if let Some(kd) = pool.ketamine_kd_um {
                            positive(&format!("{g}.ketamine_kd_um"), kd)?;
                        }
                    }
                    let sum: f64 = m.pools.iter().map(|q| q.fraction).sum();
                    if (sum - 1.0).abs() > 1e-6 {
                        return Err(format!(
                            "{f}.nmda.pools: the fractions must sum to 1 (got {sum})"
                        ));
                    }
                }
            }
            if let Some(g) = &p.glutamate {
                let h = format!("{f}.glutamate");
                if !(g.release_probability.is_finite()
                    && (0.0..=1.0).contains(&g.release_probability))
                {
                    return Err(format!(
                        "{h}.release_probability: must be in [0, 1] (got {})",
                        g.release_probability
                    ));
                }
                positive(&format!("{h}.tau_recovery_ms"), g.tau_recovery_ms)?;
                non_negative(&format!("{h}.release_sites"), g.release_sites)?;
                non_negative(&format!("{h}.um_per_vesicle"), g.um_per_vesicle)?;
                non_negative(
                    &format!("{h}.uptake_vmax_um_per_ms"),
                    g.uptake_vmax_um_per_ms,
                )?;
                positive(&format!("{h}.uptake_km_um"), g.uptake_km_um)?;
                non_negative(&format!("{h}.initial_um"), g.initial_um)?;
                if g.uptake_vmax_um_per_ms * self.dt_ms >= g.uptake_km_um {
                    return Err(format!(
                        "{h}.uptake_vmax_um_per_ms: Vmax dt must stay below K_m for a stable uptake step (Vmax {} µM/ms x dt {} ms >= K_m {} µM)",
                        g.uptake_vmax_um_per_ms, self.dt_ms, g.uptake_km_um
                    ));
                }
            }
            let init = &p.init;
            if let Some(v) = init.v_mean_mV {
                finite(&format!("{f}.init.v_mean_mV"), v)?;
            }
            non_negative(&format!("{f}.init.v_sd_mV"), init.v_sd_mV)?;
            finite(&format!("{f}.init.g_ampa_mean_nS"), init.g_ampa_mean_nS)?;
            non_negative(&format!("{f}.init.g_ampa_sd_nS"), init.g_ampa_sd_nS)?;
            finite(&format!("{f}.init.g_gaba_mean_nS"), init.g_gaba_mean_nS)?;
            non_negative(&format!("{f}.init.g_gaba_sd_nS"), init.g_gaba_sd_nS)?;
        }
        if total > MAX_NEURONS {
            return Err(format!(
                "populations: {total} neurons in all; at most {MAX_NEURONS} are addressable"
            ));
        }
        if self.projections.len() > MAX_PROJECTIONS {
            return Err(format!(
                "projections: at most {MAX_PROJECTIONS} are supported (got {})",
                self.projections.len()
            ));
        }
        for (i, pr) in self.projections.iter().enumerate() {
            let f = format!("projections[{i}] ({} -> {})", pr.pre, pr.post);
            let names = || {
                self.populations
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if self.population_index(&pr.pre).is_none() {
                return Err(format!(
                    "{f}.pre: no population named `{}` (populations: {})",
                    pr.pre,
                    names()
                ));
            }
            let Some(post) = self.population_index(&pr.post) else {
                return Err(format!(
                    "{f}.post: no population named `{}` (populations: {})",
                    pr.post,
                    names()
                ));
            };
            match pr.rule {
                Rule::FixedProbability => {
                    if pr.k.is_some() {
                        return Err(format!("{f}.k: fixed_probability takes `p`, not `k`"));
                    }
                    if pr.n.is_some() {
                        return Err(format!("{f}.n: fixed_probability takes `p`, not `n`"));
                    }
                    match pr.p {
                        Some(p) if p.is_finite() && p > 0.0 && p <= 1.0 => {}
                        Some(p) => {
                            return Err(format!("{f}.p: must be in (0, 1] (got {p})"));
                        }
                        None => {
                            return Err(format!(
                                "{f}.p: missing; fixed_probability needs a connection probability in (0, 1]"
                            ))
                        }
                    }
                }
                Rule::FixedTotalNumber => {
                    for (key, given) in [("p", pr.p.is_some()), ("k", pr.k.is_some())] {
                        if given {
                            return Err(format!(
                                "{f}.{key}: fixed_total_number takes `n` (the total number of synapses), not `{key}`"
                            ));
                        }
                    }
                    let what = "fixed_total_number needs the total number of synapses";
                    let Some(n) = pr.n else {
                        return Err(format!("{f}.n: missing; {what}"));
                    };
                    if !(1..=u32::MAX as i64 / 2).contains(&n) {
                        let most = u32::MAX / 2;
                        return Err(format!("{f}.n: must be an integer in 1..={most} (got {n})"));
                    }
                }
                Rule::FixedOutdegree | Rule::FixedIndegree => {
                    if pr.p.is_some() {
                        return Err(format!("{f}.p: {} takes `k`, not `p`", pr.rule.label()));
                    }
                    if pr.n.is_some() {
                        return Err(format!("{f}.n: {} takes `k`, not `n`", pr.rule.label()));
                    }
                    match pr.k {
                        Some(k) if (1..=u32::MAX as i64 / 2).contains(&k) => {}
                        Some(k) => return Err(format!("{f}.k: must be an integer >= 1 (got {k})")),
                        None => {
                            return Err(format!(
                                "{f}.k: missing; {} needs the number of connections per neuron",
                                pr.rule.label()
                            ))
                        }
                    }
                }
            }
            if pr.rule == Rule::FixedIndegree && pr.storage == Storage::Procedural {
                return Err(format!(
                    "{f}.storage: fixed_indegree cannot be regenerated per presynaptic spike; use \"table\" or \"auto\""
                ));
            }
            if pr.pre == pr.post
                && !pr.autapses
                && pr.rule != Rule::FixedProbability
                && self.populations[post].size < 2
            {
                return Err(format!(
                    "{f}.autapses: `{}` has one neuron, so without autapses {} has no partner to draw; set autapses = true or enlarge the population",
                    pr.post,
                    pr.rule.label()
                ));
            }
            synapse_fields(
                &f,
                &pr.post,
                self.populations[post].synapse,
                pr.receptor,
                pr.weight_nS,
                pr.drive,
                pr.weight_pA,
                pr.weight_sd_pA,
            )?;
            if pr.receptor == Some(Receptor::Nmda) && self.populations[post].nmda.is_none() {
                return Err(format!(
                    "{f}.receptor: population `{}` has no NMDA receptors; add a [populations.nmda] table to it",
                    pr.post
                ));
            }
            finite(&format!("{f}.delay_ms"), pr.delay_ms)?;
            let d = super::steps_of(pr.delay_ms, self.dt_ms) as u64;
            if pr.delay_ms < self.dt_ms || d < 1 {
                return Err(format!(
                    "{f}.delay_ms: must be at least one time step, dt_ms = {} (got {})",
                    self.dt_ms, pr.delay_ms
                ));
            }
            if d > MAX_DELAY_STEPS as u64 {
                return Err(format!(
                    "{f}.delay_ms: {} ms is {d} steps; at most {MAX_DELAY_STEPS} steps are supported",
                    pr.delay_ms
                ));
            }
            if let Some(sd) = pr.delay_sd_ms {
                non_negative(&format!("{f}.delay_sd_ms"), sd)?;
                let longest = (pr.delay_ms + NORMAL_F32_MAX * sd) / self.dt_ms;
                if longest > MAX_DELAY_STEPS as f64 {
                    return Err(format!(
                        "{f}.delay_sd_ms: delays are drawn up to delay_ms + {NORMAL_F32_MAX} x delay_sd_ms = {:.1} steps; at most {MAX_DELAY_STEPS} steps are supported",
                        longest
                    ));
                }
            }
        }
        if self.drives.len() > MAX_DRIVES {
            return Err(format!(
                "drives: at most {MAX_DRIVES} are supported (got {})",
                self.drives.len()
            ));
        }
        for (i, d) in self.drives.iter().enumerate() {
            let f = format!("drives[{i}] ({})", d.population);
            let Some(pi) = self.population_index(&d.population) else {
                return Err(format!(
                    "{f}.population: no population named `{}`",
                    d.population
                ));
            };
            non_negative(&format!("{f}.rate_hz"), d.rate_hz)?;
            let mean = d.rate_hz * self.dt_ms * 1e-3;
            if mean > POISSON_MAX_MEAN {
                return Err(format!(
                    "{f}.rate_hz: {} Hz gives {mean:.1} events per step at dt_ms = {}; at most {POISSON_MAX_MEAN} are supported: lower the rate and raise the weight, or split the drive",
                    d.rate_hz, self.dt_ms
                ));
            }
            synapse_fields(
                &f,
                &d.population,
                self.populations[pi].synapse,
                d.receptor,
                d.weight_nS,
                d.drive,
                d.weight_pA,
                None,
            )?;
            if d.receptor == Some(Receptor::Nmda) && self.populations[pi].nmda.is_none() {
                return Err(format!(
                    "{f}.receptor: population `{}` has no NMDA receptors; add a [populations.nmda] table to it",
                    d.population
                ));
            }
        }
        if !(self.drug.conc_um.is_finite() && (0.0..=MAX_CONC_UM).contains(&self.drug.conc_um)) {
            return Err(format!(
                "drug.conc_um: must be a free concentration in 0..={MAX_CONC_UM} µM (got {})",
                self.drug.conc_um
            ));
        }
        non_negative("drug.start_ms", self.drug.start_ms)?;
        if self.drug.start_ms != 0.0 && self.pharmacokinetics.is_some() {
            return Err("drug.start_ms: applies to a constant conc_um; with [pharmacokinetics] place the window with drug.protocol_time_min".into());
        }
        if !self.drug.protocol_time_min.is_finite() {
            return Err(format!(
                "drug.protocol_time_min: must be a finite number of minutes (got {})",
                self.drug.protocol_time_min
            ));
        }
        if let Some(pk) = &self.pharmacokinetics {
            if self.drug.conc_um != 0.0 {
                return Err(
                    "drug.conc_um: give either a constant concentration or a [pharmacokinetics] protocol, not both".into(),
                );
            }
            pk.validate()?;
        }
        let r = &self.record;
        positive("record.rate_bin_ms", r.rate_bin_ms)?;
        if r.rate_bin_ms < self.dt_ms {
            return Err(format!(
                "record.rate_bin_ms: must be at least dt_ms = {} (got {})",
                self.dt_ms, r.rate_bin_ms
            ));
        }
        positive("record.sample_interval_ms", r.sample_interval_ms)?;
        if r.sample_interval_ms < self.dt_ms {
            return Err(format!(
                "record.sample_interval_ms: must be at least dt_ms = {} (got {})",
                self.dt_ms, r.sample_interval_ms
            ));
        }
        non_negative("record.baseline_ms", r.baseline_ms)?;
        if r.baseline_ms > self.duration_ms {
            return Err(format!(
                "record.baseline_ms: the baseline ({} ms) must fit in duration_ms ({} ms)",
                r.baseline_ms, self.duration_ms
            ));
        }
        positive("record.glutamate_window_ms", r.glutamate_window_ms)?;
        for name in &r.spikes {
            if self.population_index(name).is_none() {
                return Err(format!("record.spikes: no population named `{name}`"));
            }
        }
        if r.max_spikes_per_batch < 1 || r.max_spikes_per_batch > (1 << 26) {
            return Err(format!(
                "record.max_spikes_per_batch: must be in 1..={} (got {})",
                1 << 26,
                r.max_spikes_per_batch
            ));
        }
        self.validate_signalling()
    }

    /// `[signalling]` and `[interventions]`.
    fn validate_signalling(&self) -> Check {
        let base_end = self.baseline_end_min();
        self.interventions
            .validate(self.signalling.is_some(), base_end)?;
        if self.interventions.ampa_block > 0.0 {
            if let Some(p) = self
                .populations
                .iter()
                .find(|p| p.synapse == SynapseKind::Current)
            {
                return Err(format!(
                    "interventions.ampa_block: acts on conductance-based AMPA synapses, but population `{}` has current-based synapses (synapse = \"current\"); remove the block or use conductance-based populations",
                    p.name
                ));
            }
        }
        let Some(sig) = &self.signalling else {
            return Ok(());
        };
        sig.validate()?;
        for (i, name) in sig.populations.iter().enumerate() {
            if sig.populations[..i].contains(name) {
                return Err(format!("signalling.populations: `{name}` is listed twice"));
            }
            if self.population_index(name).is_none() {
                let names: Vec<&str> = self.populations.iter().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "signalling.populations: no population named `{name}` (populations: {})",
                    names.join(", ")
                ));
            }
            if self
                .populations
                .iter()
                .any(|p| &p.name == name && p.synapse == SynapseKind::Current)
            {
                return Err(format!(
                    "signalling.populations: `{name}` has current-based synapses (synapse = \"current\"); the slow state scales conductance-based AMPA and NMDA input, so name a conductance-based population"
                ));
            }
            if !self
                .projections
                .iter()
                .any(|p| &p.post == name && p.receptor == Some(Receptor::Ampa))
            {
                return Err(format!(
                    "signalling.populations: `{name}` receives no AMPA projection, so it has no local AMPA activation to drive the slow state; add one (e.g. a recurrent E -> E AMPA projection) or remove `{name}`"
                ));
            }
        }
        // The baseline readouts are what the slow state is referred to: no drug.
        let first_dose = match &self.pharmacokinetics {
            Some(pk) => pk.doses.iter().map(|d| d.time_min).reduce(f64::min),
            None if self.drug.conc_um > 0.0 => {
                Some(self.drug.protocol_time_min + self.drug.start_ms / 60_000.0)
            }
            None => None,
        };
        if let Some(d) = first_dose {
            if d < base_end - 1e-9 {
                return Err(format!(
                    "signalling: the baseline readouts (ending at {base_end} min) are the drug-free reference of the slow state, but the drug starts at {d} min; start the drug after them (drug.start_ms, the doses' time_min) or end the baseline earlier (record.baseline_ms, protocol.timecourse_ms / window_ms)"
                ));
            }
        }
        let spans = match self.protocol.mode {
            ProtocolMode::Multiscale => self.protocol.window_times_min.len(),
            ProtocolMode::Continuous => {
                (self.duration_ms / self.protocol.timecourse_ms).ceil() as usize
            }
        };
        if spans < 2 {
            return Err("signalling: needs at least two readouts (the baseline and one after it); add window times or lengthen the run".into());
        }
        Ok(())
    }
}
