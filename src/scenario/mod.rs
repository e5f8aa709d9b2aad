//! Scenario files: TOML descriptions of populations, projections, background drive,
//! time step, duration, seed and recording. Unknown fields are rejected; every
//! validation error names the file, the field and what is allowed.
//!
//! The format is documented in `docs/scenario.md`; `assets/scenarios/` holds the
//! embedded examples.

pub(crate) mod checks;
mod overrides;
mod protocol;
mod signalling;
mod validate;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use overrides::apply_override;
pub use protocol::{Protocol, ProtocolMode, Segment};
pub use signalling::{Baseline, Interventions, Signalling};

/// Scenarios compiled into the binary: (name, TOML text).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "pfc_ketamine",
        include_str!("../../assets/scenarios/pfc_ketamine.toml"),
    ),
    ("coba", include_str!("../../assets/scenarios/coba.toml")),
    (
        "stress_ketamine",
        include_str!("../../assets/scenarios/stress_ketamine.toml"),
    ),
    (
        "stress_saline",
        include_str!("../../assets/scenarios/stress_saline.toml"),
    ),
    (
        "microcircuit",
        include_str!("../../assets/scenarios/microcircuit.toml"),
    ),
];

/// The scenario `ketasim run` uses when no file is given: the prefrontal circuit
/// under the human 0.5 mg/kg protocol.
pub const DEFAULT_SCENARIO: &str = "pfc_ketamine";

/// A whole simulation description.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in output.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Where the network comes from (paper and year).
    #[serde(default)]
    pub source: String,
    /// Integration time step (ms); 0.05-0.25 ms is the range the models are made for.
    pub dt_ms: f64,
    /// Simulated time (ms). Required in continuous mode; in multiscale mode it follows
    /// from `[protocol]` (leave it out, or give exactly that value).
    #[serde(default)]
    pub duration_ms: f64,
    /// Seed of every random draw (connectivity, initial state, background drive).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How exponential synaptic variables are advanced each step.
    #[serde(default)]
    pub synapse_decay: DecayMethod,
    /// Neuron populations, in the order their neurons are numbered.
    pub populations: Vec<Population>,
    /// Connections between populations.
    #[serde(default)]
    pub projections: Vec<Projection>,
    /// Poisson background input onto populations.
    #[serde(default)]
    pub drives: Vec<Drive>,
    /// What is recorded.
    #[serde(default)]
    pub record: Record,
    /// Ketamine at the NMDA receptors.
    #[serde(default)]
    pub drug: Drug,
    /// Dosing protocol and pharmacokinetics (docs/pk.md); the host evaluates it and
    /// uploads the free effect-site concentration.
    #[serde(default)]
    pub pharmacokinetics: Option<crate::pk::PkScenario>,
    /// Continuous or multiscale simulation of the protocol (SCIENCE.md section 8).
    #[serde(default)]
    pub protocol: Protocol,
    /// Slow AMPA -> BDNF -> mTOR -> synapse-density state (SCIENCE.md section 7);
    /// none by default.
    #[serde(default)]
    pub signalling: Option<Signalling>,
    /// Blockers given before the drug (rapamycin, NBQX, BDNF block).
    #[serde(default)]
    pub interventions: Interventions,
}

fn default_seed() -> u64 {
    1
}

/// Per-step update of exponentially decaying synaptic variables `g' = -g/tau`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayMethod {
    /// `g <- g * exp(-dt/tau)`: the exact solution between input steps.
    #[default]
    Exact,
    /// `g <- g * (1 - dt/tau)`: forward Euler, as the COBA benchmark specifies
    /// (Brette et al. 2007).
    Euler,
}

/// One population of identical conductance-based LIF neurons.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    /// Unique name; projections and drives refer to it.
    pub name: String,
    /// Number of neurons (at least 1).
    pub size: i64,
    /// Conductance-based synapses (default) or current-based exponential ones with
    /// exact integration (NEST's `iaf_psc_exp`).
    #[serde(default)]
    pub synapse: SynapseKind,
    /// Membrane and synaptic parameters.
    #[serde(default)]
    pub neuron: NeuronParams,
    /// NMDA receptor pool (absent: no NMDA conductance).
    #[serde(default)]
    pub nmda: Option<NmdaParams>,
    /// Glutamate release and the population's extracellular pool (absent: the
    /// population releases no glutamate, e.g. GABAergic interneurons).
    #[serde(default)]
    pub glutamate: Option<GlutamateParams>,
    /// Initial state distribution.
    #[serde(default)]
    pub init: InitParams,
    /// Citation for the parameters.
    #[serde(default)]
    pub source: String,
}

/// How synaptic input acts on a population's neurons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SynapseKind {
    /// Conductances (nS) with reversal potentials, forward-Euler membrane
    /// (SCIENCE.md section 1).
    #[default]
    Conductance,
    /// Exponentially decaying currents (pA), `tau_syn_ex_ms`/`tau_syn_in_ms`, and the
    /// membrane integrated exactly (Rotter & Diesmann 1999), as NEST's `iaf_psc_exp`
    /// used by Potjans & Diesmann 2014. The sign of a projection's `weight_pA` picks
    /// the excitatory (> 0) or inhibitory (< 0) current.
    Current,
}

impl SynapseKind {
    /// The scenario spelling.
    pub fn label(self) -> &'static str {
        match self {
            SynapseKind::Conductance => "conductance",
            SynapseKind::Current => "current",
        }
    }
}

/// Conductance-based LIF parameters (SCIENCE.md section 1):
/// `C dV/dt = -g_L (V - E_L) - g_AMPA (V - E_AMPA) - g_NMDA s B_Mg(V) (V - E_NMDA)
///  - g_GABA (V - E_GABA) + I_ext`; spike at `V >= V_th`, reset to `V_reset`, hold for
/// `t_ref`. Defaults: the pyramidal cell of Brunel & Wang 2001 (J Comput Neurosci 11:63).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct NeuronParams {
    /// Membrane capacitance (pF). Brunel & Wang 2001: 500 pF pyramidal, 200 pF PV.
    #[serde(default = "d_c")]
    pub c_pF: f64,
    /// Leak conductance (nS). Brunel & Wang 2001: 25 nS pyramidal, 20 nS PV.
    #[serde(default = "d_gl")]
    pub g_l_nS: f64,
    /// Leak reversal (mV).
    #[serde(default = "d_el")]
    pub e_l_mV: f64,
    /// Spike threshold (mV).
    #[serde(default = "d_vth")]
    pub v_th_mV: f64,
    /// Reset potential (mV).
    #[serde(default = "d_vreset")]
    pub v_reset_mV: f64,
    /// Absolute refractory period (ms); rounded to whole steps.
    #[serde(default = "d_tref")]
    pub t_ref_ms: f64,
    /// Constant injected current (pA).
    #[serde(default)]
    pub i_ext_pA: f64,
    /// AMPA reversal (mV).
    #[serde(default)]
    pub e_ampa_mV: f64,
    /// NMDA reversal (mV).
    #[serde(default)]
    pub e_nmda_mV: f64,
    /// GABA_A reversal (mV).
    #[serde(default = "d_egaba")]
    pub e_gaba_mV: f64,
    /// AMPA conductance decay (ms). Brunel & Wang 2001: 2 ms.
    #[serde(default = "d_tau_ampa")]
    pub tau_ampa_ms: f64,
    /// GABA_A conductance decay (ms). Brunel & Wang 2001: 5 ms.
    #[serde(default = "d_tau_gaba")]
    pub tau_gaba_ms: f64,
    /// Current-based populations only: decay of the excitatory synaptic current
    /// (ms); default 2 ms, NEST's `iaf_psc_exp` default.
    #[serde(default)]
    pub tau_syn_ex_ms: Option<f64>,
    /// Current-based populations only: decay of the inhibitory synaptic current
    /// (ms); default 2 ms, NEST's `iaf_psc_exp` default.
    #[serde(default)]
    pub tau_syn_in_ms: Option<f64>,
}

/// NEST's `iaf_psc_exp` default synaptic time constant (ms).
pub const DEFAULT_TAU_SYN_MS: f64 = 2.0;

fn d_c() -> f64 {
    500.0
}
fn d_gl() -> f64 {
    25.0
}
fn d_el() -> f64 {
    -70.0
}
fn d_vth() -> f64 {
    -50.0
}
fn d_vreset() -> f64 {
    -55.0
}
fn d_tref() -> f64 {
    2.0
}
fn d_egaba() -> f64 {
    -70.0
}
fn d_tau_ampa() -> f64 {
    2.0
}
fn d_tau_gaba() -> f64 {
    5.0
}

impl Default for NeuronParams {
    fn default() -> Self {
        NeuronParams {
            c_pF: d_c(),
            g_l_nS: d_gl(),
            e_l_mV: d_el(),
            v_th_mV: d_vth(),
            v_reset_mV: d_vreset(),
            t_ref_ms: d_tref(),
            i_ext_pA: 0.0,
            e_ampa_mV: 0.0,
            e_nmda_mV: 0.0,
            e_gaba_mV: d_egaba(),
            tau_ampa_ms: d_tau_ampa(),
            tau_gaba_ms: d_tau_gaba(),
            tau_syn_ex_ms: None,
            tau_syn_in_ms: None,
        }
    }
}

/// GluN2 subunit of an NMDA receptor pool; sets its deactivation time constant and
/// Mg2+ affinity (SCIENCE.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subunit {
    /// GluN1/GluN2A.
    #[serde(rename = "2A")]
    N2A,
    /// GluN1/GluN2B.
    #[serde(rename = "2B")]
    N2B,
    /// GluN1/GluN2C.
    #[serde(rename = "2C")]
    N2C,
    /// GluN1/GluN2D.
    #[serde(rename = "2D")]
    N2D,
}

impl Subunit {
    /// Deactivation time constant (ms) after a brief glutamate pulse: Vicini et al.
    /// 1998 (J Neurophysiol 79:555) give 2A about 40-50 ms, 2B 300-400 ms, 2C about
    /// 300 ms and 2D 2-5 s; the midpoints are used.
    pub fn tau_decay_ms(self) -> f64 {
        match self {
            Subunit::N2A => 45.0,
            Subunit::N2B => 350.0,
            Subunit::N2C => 300.0,
            Subunit::N2D => 3500.0,
        }
    }

    /// `K0_Mg` (mM) of `B_Mg(V) = 1/(1 + [Mg]/K0 exp(-0.062 V))`: 3.57 mM for 2A/2B
    /// (Jahr & Stevens 1990, J Neurosci 10:3178); 2C/2D are blocked several times more
    /// weakly (Qian, Buller & Johnson 2005, J Physiol 562:319), starting values 45 and
    /// 23 mM from SCIENCE.md section 2.
    #[allow(non_snake_case)]
    pub fn k0_mg_mM(self) -> f64 {
        match self {
            Subunit::N2A | Subunit::N2B => 3.57,
            Subunit::N2C => 45.0,
            Subunit::N2D => 23.0,
        }
    }

    /// The scenario spelling.
    pub fn label(self) -> &'static str {
        match self {
            Subunit::N2A => "2A",
            Subunit::N2B => "2B",
            Subunit::N2C => "2C",
            Subunit::N2D => "2D",
        }
    }
}

/// NMDA receptor pool of a population, aggregated per postsynaptic neuron:
/// `dx/dt = -x/tau_rise + sum_spikes drive`, `ds/dt = alpha x (1 - s) - s/tau_decay`,
/// `g_NMDA = g_max s B_Mg(V)` (the saturating scheme of Brunel & Wang 2001, with `s`
/// the open fraction of the cell's receptor pool).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct NmdaParams {
    /// GluN2 subunit: sets `tau_decay_ms` and `k0_mg_mM` unless they are given.
    #[serde(default = "d_subunit")]
    pub subunit: Subunit,
    /// Conductance with every receptor of the pool open (nS).
    pub g_max_nS: f64,
    /// Rise time constant of the transmitter drive x (ms). Brunel & Wang 2001: 2 ms.
    #[serde(default = "d_tau_rise")]
    pub tau_rise_ms: f64,
    /// Opening rate per unit drive (1/ms). Brunel & Wang 2001: 0.5 /ms.
    #[serde(default = "d_alpha")]
    pub alpha_per_ms: f64,
    /// Deactivation time constant (ms); default from the subunit.
    #[serde(default)]
    pub tau_decay_ms: Option<f64>,
    /// Mg2+ dissociation constant at 0 mV (mM); default from the subunit.
    #[serde(default)]
    pub k0_mg_mM: Option<f64>,
    /// Extracellular Mg2+ (mM). 1 mM is physiological.
    #[serde(default = "d_mg")]
    pub mg_mM: f64,
    /// Receptor pools of different subunits sharing the drive x (at most 2, fractions
    /// summing to 1), e.g. pyramidal 2A/2B, PV interneurons with a 2D share. Absent:
    /// one pool of `subunit` with the `tau_decay_ms`/`k0_mg_mM` given above.
    #[serde(default)]
    pub pools: Vec<PoolSpec>,
}

/// One subunit pool of a population's NMDA receptors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct PoolSpec {
    /// GluN2 subunit: sets deactivation, Mg2+ affinity and ketamine K_d.
    pub subunit: Subunit,
    /// Share of the population's NMDA conductance `g_max_nS` (0-1).
    pub fraction: f64,
    /// Deactivation time constant (ms); default from the subunit.
    #[serde(default)]
    pub tau_decay_ms: Option<f64>,
    /// Mg2+ dissociation constant at 0 mV (mM); default from the subunit.
    #[serde(default)]
    pub k0_mg_mM: Option<f64>,
    /// Ketamine K_d at -66 mV (µM); default from the subunit (Kotermanski & Johnson
    /// 2009).
    #[serde(default)]
    pub ketamine_kd_um: Option<f64>,
}

impl NmdaParams {
    /// The pools as given, or the single pool the top-level fields describe.
    pub fn pool_specs(&self) -> Vec<PoolSpec> {
        if self.pools.is_empty() {
            vec![PoolSpec {
                subunit: self.subunit,
                fraction: 1.0,
                tau_decay_ms: self.tau_decay_ms,
                k0_mg_mM: self.k0_mg_mM,
                ketamine_kd_um: None,
            }]
        } else {
            self.pools.clone()
        }
    }
}

/// Free ketamine at the receptors (the brain effect site), in µM: a constant, or the
/// time course of a `[pharmacokinetics]` protocol.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drug {
    /// A constant free concentration (µM) (not with `[pharmacokinetics]`), applied
    /// from `start_ms` on.
    #[serde(default)]
    pub conc_um: f64,
    /// Simulation time (ms) at which `conc_um` is applied (a step; before it the
    /// concentration is 0, e.g. a pre-drug baseline).
    #[serde(default)]
    pub start_ms: f64,
    /// Protocol time (min after the protocol's t = 0, e.g. the start of an infusion)
    /// at which the simulation starts: a network window placed anywhere in the
    /// protocol. May be negative (a pre-drug baseline).
    #[serde(default)]
    pub protocol_time_min: f64,
}

fn d_subunit() -> Subunit {
    Subunit::N2B
}
fn d_tau_rise() -> f64 {
    2.0
}
fn d_alpha() -> f64 {
    0.5
}
fn d_mg() -> f64 {
    1.0
}

/// Glutamate release by a population's spikes and its extracellular pool
/// (SCIENCE.md section 5). Each spike releases `p_release R` vesicles per release site,
/// where R in [0, 1] is the neuron's releasable fraction: short-term depression after
/// Tsodyks & Markram 1997 (PNAS 94:719), R -= p_release R at a spike, recovering as
/// dR/dt = (1 - R) / tau_recovery. The extracellular pool G (µM) rises by
/// `um_per_vesicle / size` per vesicle and is cleared by transporters with
/// Michaelis-Menten kinetics, dG/dt = -Vmax G / (K_m + G).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct GlutamateParams {
    /// Release probability per site and spike. Starting value 0.3: cortical
    /// pyramidal synapses have release probabilities of about 0.1-0.5 (Markram et al.
    /// 1997, J Physiol 500:409; Tsodyks & Markram 1997 use U = 0.5 at layer-5 pairs).
    #[serde(default = "d_p_release")]
    pub release_probability: f64,
    /// Recovery of the releasable pool (ms); Tsodyks & Markram 1997: about 800 ms.
    #[serde(default = "d_tau_rec")]
    pub tau_recovery_ms: f64,
    /// Release sites per neuron (counted in `release_rate`).
    #[serde(default = "d_sites")]
    pub release_sites: f64,
    /// Pool rise (µM) when every neuron of the population releases one vesicle
    /// (chosen so that the default pool sits near 1 µM at a few Hz, the order of basal
    /// extracellular glutamate in prefrontal microdialysis, Moghaddam et al. 1997).
    #[serde(default = "d_um_per_vesicle")]
    pub um_per_vesicle: f64,
    /// Transporter uptake Vmax (µM/ms). Chosen with `uptake_km_um` for a linear
    /// clearance time K_m/Vmax of 2 s, the slow bulk pool microdialysis samples.
    #[serde(default = "d_vmax")]
    pub uptake_vmax_um_per_ms: f64,
    /// Transporter K_m (µM): starting value 20 µM, within the range of glial and
    /// neuronal EAAT affinities (Danbolt 2001, Prog Neurobiol 65:1).
    #[serde(default = "d_km")]
    pub uptake_km_um: f64,
    /// Initial extracellular glutamate (µM).
    #[serde(default)]
    pub initial_um: f64,
}

fn d_p_release() -> f64 {
    0.3
}
fn d_tau_rec() -> f64 {
    800.0
}
fn d_sites() -> f64 {
    1.0
}
fn d_um_per_vesicle() -> f64 {
    0.5
}
fn d_vmax() -> f64 {
    0.01
}
fn d_km() -> f64 {
    20.0
}

/// Initial state: V and the AMPA/GABA_A conductances drawn from normal distributions
/// (counter-based RNG, stream `init`). Defaults: V at `e_l_mV`, no conductance.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct InitParams {
    /// Mean initial V (mV); default the leak reversal.
    #[serde(default)]
    pub v_mean_mV: Option<f64>,
    /// Standard deviation of the initial V (mV).
    #[serde(default)]
    pub v_sd_mV: f64,
    /// Mean initial AMPA conductance (nS).
    #[serde(default)]
    pub g_ampa_mean_nS: f64,
    /// Standard deviation of the initial AMPA conductance (nS).
    #[serde(default)]
    pub g_ampa_sd_nS: f64,
    /// Mean initial GABA_A conductance (nS).
    #[serde(default)]
    pub g_gaba_mean_nS: f64,
    /// Standard deviation of the initial GABA_A conductance (nS).
    #[serde(default)]
    pub g_gaba_sd_nS: f64,
}

/// Postsynaptic receptor a projection or drive acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Receptor {
    /// AMPA: conductance jump `weight_nS`, decay `tau_ampa_ms`.
    Ampa,
    /// GABA_A: conductance jump `weight_nS`, decay `tau_gaba_ms`.
    #[serde(alias = "gaba")]
    GabaA,
    /// NMDA: transmitter-drive jump `drive` into the population's NMDA pool.
    Nmda,
}

impl Receptor {
    /// The scenario spelling.
    pub fn label(self) -> &'static str {
        match self {
            Receptor::Ampa => "ampa",
            Receptor::GabaA => "gaba_a",
            Receptor::Nmda => "nmda",
        }
    }

    /// Channel index used by the kernels (0 AMPA, 1 GABA_A, 2 NMDA).
    pub fn index(self) -> u32 {
        match self {
            Receptor::Ampa => 0,
            Receptor::GabaA => 1,
            Receptor::Nmda => 2,
        }
    }
}

/// Connectivity rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Each (pre, post) pair is connected independently with probability `p`.
    FixedProbability,
    /// Each presynaptic neuron has exactly `k` targets, drawn uniformly with
    /// replacement (multapses allowed, as NEST's `fixed_outdegree` by default).
    FixedOutdegree,
    /// Each postsynaptic neuron has exactly `k` sources, drawn uniformly with
    /// replacement; needs an explicit table.
    FixedIndegree,
    /// Exactly `n` synapses in all, each with a uniformly drawn source and target
    /// (multapses allowed, as NEST's `fixed_total_number`): multinomial out-degrees,
    /// drawn once when the network is built and kept per presynaptic neuron (4 bytes
    /// each); the targets are regenerated from the seed as for fixed out-degree.
    FixedTotalNumber,
}

impl Rule {
    /// The scenario spelling.
    pub fn label(self) -> &'static str {
        match self {
            Rule::FixedProbability => "fixed_probability",
            Rule::FixedOutdegree => "fixed_outdegree",
            Rule::FixedIndegree => "fixed_indegree",
            Rule::FixedTotalNumber => "fixed_total_number",
        }
    }
}

/// Where the synapses of a projection live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// Procedural where the rule allows it, a table otherwise.
    #[default]
    Auto,
    /// Regenerated from the seed at every spike: no per-synapse memory.
    Procedural,
    /// An explicit compressed (CSR) table of postsynaptic indices.
    Table,
}

/// Static connections from one population to another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct Projection {
    /// Presynaptic population name.
    pub pre: String,
    /// Postsynaptic population name.
    pub post: String,
    /// Receptor the synapses act on (conductance-based `post`; absent for a
    /// current-based one, where the sign of `weight_pA` picks the current).
    #[serde(default)]
    pub receptor: Option<Receptor>,
    /// Connectivity rule.
    pub rule: Rule,
    /// Connection probability (fixed_probability), in (0, 1].
    #[serde(default)]
    pub p: Option<f64>,
    /// Out-degree (fixed_outdegree) or in-degree (fixed_indegree).
    #[serde(default)]
    pub k: Option<i64>,
    /// Total number of synapses (fixed_total_number; NEST's `N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<i64>,
    /// Conductance jump per spike (nS), for AMPA and GABA_A.
    #[serde(default)]
    pub weight_nS: Option<f64>,
    /// Drive jump per spike (dimensionless), for NMDA.
    #[serde(default)]
    pub drive: Option<f64>,
    /// Current jump per spike (pA), for a current-based `post`: > 0 excitatory,
    /// < 0 inhibitory.
    #[serde(default)]
    pub weight_pA: Option<f64>,
    /// Standard deviation of a normally distributed `weight_pA`, drawn per synapse
    /// (a draw of the wrong sign is redrawn, as NEST's `redraw`).
    #[serde(default)]
    pub weight_sd_pA: Option<f64>,
    /// Axonal + synaptic delay (ms), at least one step; rounded to whole steps. With
    /// `delay_sd_ms`, the mean of a normal distribution drawn per synapse.
    pub delay_ms: f64,
    /// Standard deviation of a normally distributed delay, drawn per synapse (draws
    /// that round to less than one step are redrawn, as NEST's `redraw`).
    #[serde(default)]
    pub delay_sd_ms: Option<f64>,
    /// Whether a neuron may connect to itself when pre == post.
    #[serde(default = "d_true")]
    pub autapses: bool,
    /// Synapse storage.
    #[serde(default)]
    pub storage: Storage,
    /// Citation.
    #[serde(default)]
    pub source: String,
}

fn d_true() -> bool {
    true
}

/// Independent Poisson input to every neuron of a population.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct Drive {
    /// Target population.
    pub population: String,
    /// Total event rate per neuron (Hz): number of sources times rate per source.
    pub rate_hz: f64,
    /// Receptor the events act on (conductance-based population; absent for a
    /// current-based one, where the sign of `weight_pA` picks the current).
    #[serde(default)]
    pub receptor: Option<Receptor>,
    /// Conductance jump per event (nS), for AMPA and GABA_A.
    #[serde(default)]
    pub weight_nS: Option<f64>,
    /// Drive jump per event (dimensionless), for NMDA.
    #[serde(default)]
    pub drive: Option<f64>,
    /// Current jump per event (pA), for a current-based population: > 0 excitatory,
    /// < 0 inhibitory.
    #[serde(default)]
    pub weight_pA: Option<f64>,
    /// Citation.
    #[serde(default)]
    pub source: String,
}

/// The channel (ring buffer and state variable) a projection or drive feeds: the
/// receptor's (0 AMPA, 1 GABA_A, 2 NMDA) for conductance-based targets; for
/// current-based ones 0 (excitatory current) when `weight_pA >= 0`, else 1
/// (inhibitory current).
fn channel_of(receptor: Option<Receptor>, weight_pa: Option<f64>) -> u32 {
    match (receptor, weight_pa) {
        (Some(r), _) => r.index(),
        (None, Some(w)) if w < 0.0 => 1,
        _ => 0,
    }
}

impl Projection {
    /// The channel the synapses feed (see `channel_of`).
    pub fn channel(&self) -> u32 {
        channel_of(self.receptor, self.weight_pA)
    }

    /// The mean jump per spike in the channel's unit: `weight_nS`, `drive` or
    /// `weight_pA`.
    pub fn jump(&self) -> f64 {
        self.weight_nS
            .or(self.drive)
            .or(self.weight_pA)
            .unwrap_or(0.0)
    }
}

impl Drive {
    /// The channel the events feed (see `channel_of`).
    pub fn channel(&self) -> u32 {
        channel_of(self.receptor, self.weight_pA)
    }

    /// The jump per event in the channel's unit.
    pub fn jump(&self) -> f64 {
        self.weight_nS
            .or(self.drive)
            .or(self.weight_pA)
            .unwrap_or(0.0)
    }
}

/// Recording options.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Width of the time bins of `rates.csv` (ms).
    #[serde(default = "d_rate_bin")]
    pub rate_bin_ms: f64,
    /// Interval between samples of population means (V, conductances) (ms).
    #[serde(default = "d_sample")]
    pub sample_interval_ms: f64,
    /// Populations whose individual spikes are written to `spikes.csv`.
    #[serde(default)]
    pub spikes: Vec<String>,
    /// Most spikes recorded per read-back batch; more are counted and reported.
    #[serde(default = "d_max_spikes")]
    pub max_spikes_per_batch: i64,
    /// The first `baseline_ms` of the run are the pre-drug baseline that glutamate is
    /// expressed against (% of baseline); 0: no baseline.
    #[serde(default)]
    pub baseline_ms: f64,
    /// Averaging window of the reported glutamate level (ms; microdialysis samples
    /// are minutes long): `summary.json` gives the mean over the last window.
    #[serde(default = "d_glu_window")]
    pub glutamate_window_ms: f64,
}

fn d_glu_window() -> f64 {
    100.0
}

fn d_rate_bin() -> f64 {
    10.0
}
fn d_sample() -> f64 {
    1.0
}
fn d_max_spikes() -> i64 {
    1 << 20
}

impl Default for Record {
    fn default() -> Self {
        Record {
            rate_bin_ms: d_rate_bin(),
            sample_interval_ms: d_sample(),
            spikes: Vec::new(),
            max_spikes_per_batch: d_max_spikes(),
            baseline_ms: 0.0,
            glutamate_window_ms: d_glu_window(),
        }
    }
}

/// Whole steps in `ms` at `dt_ms`, rounded to nearest: how every duration (delay,
/// refractory period, bins) becomes steps.
pub fn steps_of(ms: f64, dt_ms: f64) -> u32 {
    (ms / dt_ms).round().clamp(0.0, u32::MAX as f64) as u32
}

/// Where a scenario's text came from and what it says.
#[derive(Debug, Clone)]
pub struct Source {
    /// File name, or `<embedded:NAME>`.
    pub file: String,
    /// TOML text.
    pub text: String,
}

impl Source {
    /// Read a scenario: an existing file path, or the name of an embedded scenario.
    pub fn locate(arg: Option<&str>) -> Result<Source> {
        let name = arg.unwrap_or(DEFAULT_SCENARIO);
        let path = std::path::Path::new(name);
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|e| Error::Scenario {
                file: name.to_string(),
                message: format!("cannot read: {e}"),
            })?;
            return Ok(Source {
                file: name.to_string(),
                text,
            });
        }
        if let Some((n, text)) = EMBEDDED.iter().find(|(n, _)| *n == name) {
            return Ok(Source {
                file: format!("<embedded:{n}>"),
                text: (*text).to_string(),
            });
        }
        let names: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
        Err(Error::Scenario {
            file: name.to_string(),
            message: format!(
                "no such file, and not an embedded scenario (embedded: {})",
                names.join(", ")
            ),
        })
    }
}

impl Scenario {
    /// `record.sample_interval_ms` as a run takes it: whole steps, at least one, in ms.
    pub fn sample_interval_run_ms(&self) -> f64 {
        steps_of(self.record.sample_interval_ms, self.dt_ms).max(1) as f64 * self.dt_ms
    }

    /// `record.rate_bin_ms` as a run takes it: whole steps, at least one, in ms.
    pub fn rate_bin_run_ms(&self) -> f64 {
        steps_of(self.record.rate_bin_ms, self.dt_ms).max(1) as f64 * self.dt_ms
    }

    /// In multiscale mode, fill in `duration_ms` from `[protocol]` when it was left
    /// out (validation then checks a given value against it).
    pub fn resolve_duration(&mut self) {
        if self.protocol.mode == ProtocolMode::Multiscale
            && self.duration_ms == 0.0
            && self.dt_ms.is_finite()
            && self.dt_ms > 0.0
        {
            self.duration_ms = self.protocol.multiscale_duration_ms(self.dt_ms);
        }
    }

    /// Parse, apply `--set` overrides, and validate.
    pub fn load(source: &Source, overrides: &[String]) -> Result<Scenario> {
        let err = |message: String| Error::Scenario {
            file: source.file.clone(),
            message,
        };
        let scenario: Scenario = if overrides.is_empty() {
            // Straight from the text, so that errors point at the line and the key.
            toml::from_str(&source.text).map_err(|e| err(e.to_string()))?
        } else {
            let mut value: toml::Table =
                toml::from_str(&source.text).map_err(|e| err(e.to_string()))?;
            for o in overrides {
                apply_override(&mut value, o)?;
            }
            Scenario::deserialize(toml::Value::Table(value))
                .map_err(|e| err(format!("{e} (after the --set overrides)")))?
        };
        let mut scenario = scenario;
        scenario.resolve_duration();
        scenario.validate().map_err(err)?;
        Ok(scenario)
    }

    /// Parse and validate TOML text (tests and embedded use).
    pub fn from_toml(file: &str, text: &str) -> Result<Scenario> {
        Scenario::load(
            &Source {
                file: file.to_string(),
                text: text.to_string(),
            },
            &[],
        )
    }

    /// Index of the population called `name`.
    pub fn population_index(&self, name: &str) -> Option<usize> {
        self.populations.iter().position(|p| p.name == name)
    }

    /// Protocol time (min) at which the baseline readouts end: the last window that
    /// ends before the first dose in multiscale mode, the last row inside
    /// `record.baseline_ms` in continuous mode; the first readout when there is none.
    /// The slow signalling state takes its reference there, and the interventions act
    /// from there by default.
    pub fn baseline_end_min(&self) -> f64 {
        match self.protocol.mode {
            ProtocolMode::Multiscale => {
                let win_min = self.protocol.window_ms / 60_000.0;
                let first_dose = self
                    .pharmacokinetics
                    .as_ref()
                    .and_then(|pk| pk.doses.iter().map(|d| d.time_min).reduce(f64::min));
                let times = &self.protocol.window_times_min;
                let last = match first_dose {
                    Some(d) => times.iter().rev().find(|&&t| t + win_min <= d + 1e-12),
                    None => None,
                };
                last.or(times.first()).copied().unwrap_or(0.0) + win_min
            }
            ProtocolMode::Continuous => {
                let row = self.protocol.timecourse_ms.min(self.duration_ms);
                let rows = (self.record.baseline_ms / row + 1e-9).floor().max(1.0);
                self.drug.protocol_time_min + rows * row / 60_000.0
            }
        }
    }

    /// Total number of neurons.
    pub fn neuron_count(&self) -> u64 {
        self.populations.iter().map(|p| p.size.max(0) as u64).sum()
    }
}
