//! `[signalling]` and `[interventions]`: the slow AMPA -> BDNF -> mTOR -> synapse
//! chain of SCIENCE.md section 7 (hours to days), and the blockers a scenario can give
//! (rapamycin, NBQX, BDNF block). Equations, sources and the choices behind every
//! default are in docs/signalling.md; the kernels are `shaders/signal_sum.wgsl` and
//! `shaders/slow_update.wgsl` (twins in `src/cpu/slow.rs`).

use serde::{Deserialize, Serialize};

use super::checks::{positive, Check};

/// The chronic state the slow state starts in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// Synapse density 1 (its set point).
    #[default]
    Healthy,
    /// Synapse density and its set point lowered to `stress_density` (the prefrontal
    /// synaptic atrophy of chronic stress and depression).
    ChronicStress,
}

/// The `[signalling]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signalling {
    /// Populations that carry the slow state (the pyramidal cells). Their recurrent
    /// (local) AMPA and NMDA input is scaled by each neuron's synapse density.
    pub populations: Vec<String>,
    /// `healthy` (default) or `chronic_stress`.
    #[serde(default)]
    pub baseline: Baseline,
    /// Synapse density (and its set point) under `chronic_stress`, relative to healthy.
    #[serde(default = "d_stress_density")]
    pub stress_density: f64,
    /// Time constant with which the reference of the AMPA activation follows the
    /// activation (min): the cascade answers changes of its input, not its level.
    #[serde(default = "d_tau_adapt")]
    pub tau_adapt_min: f64,
    /// Hill coefficient n of the drive D(r) = r^n / (r^n + K^n) (integer 1-8).
    #[serde(default = "d_hill_n")]
    pub hill_n: i64,
    /// Relative AMPA activation K at which the drive is half maximal.
    #[serde(default = "d_hill_k")]
    pub hill_k: f64,
    /// BDNF time constant (min).
    #[serde(default = "d_tau_bdnf")]
    pub tau_bdnf_min: f64,
    /// mTOR time constant (min).
    #[serde(default = "d_tau_mtor")]
    pub tau_mtor_min: f64,
    /// Synaptic-protein time constant (h).
    #[serde(default = "d_tau_protein")]
    pub tau_protein_h: f64,
    /// Protein excess over basal (P - 1) below which no synapses form.
    #[serde(default = "d_threshold")]
    pub growth_threshold: f64,
    /// Synapse formation rate per hour per unit of protein excess above threshold.
    #[serde(default = "d_growth")]
    pub growth_per_h: f64,
    /// Density that formation approaches (relative to healthy).
    #[serde(default = "d_max_density")]
    pub max_density: f64,
    /// Time constant with which the density returns to its set point (h).
    #[serde(default = "d_tau_loss")]
    pub tau_loss_h: f64,
    /// Longest substep of the slow integration (s).
    #[serde(default = "d_step")]
    pub step_s: f64,
}

fn d_stress_density() -> f64 {
    0.7
}
fn d_tau_adapt() -> f64 {
    60.0
}
fn d_hill_n() -> i64 {
    4
}
fn d_hill_k() -> f64 {
    1.5
}
fn d_tau_bdnf() -> f64 {
    20.0
}
fn d_tau_mtor() -> f64 {
    15.0
}
fn d_tau_protein() -> f64 {
    1.0
}
fn d_threshold() -> f64 {
    0.05
}
fn d_growth() -> f64 {
    3.5
}
fn d_max_density() -> f64 {
    1.5
}
fn d_tau_loss() -> f64 {
    168.0
}
fn d_step() -> f64 {
    60.0
}

/// The `[interventions]` table: blockers given before the drug.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interventions {
    /// Fraction of mTOR activity removed (rapamycin), 0-1.
    #[serde(default)]
    pub mtor_block: f64,
    /// Fraction of every AMPA conductance removed (NBQX), 0-1.
    #[serde(default)]
    pub ampa_block: f64,
    /// Fraction of BDNF (TrkB) signalling removed, 0-1.
    #[serde(default)]
    pub bdnf_block: f64,
    /// Protocol time (min) from which the blockers act; default: right after the
    /// baseline readouts, whose measurement they must not touch.
    #[serde(default)]
    pub time_min: Option<f64>,
}

impl Interventions {
    /// Whether any blocker is set.
    pub fn any(&self) -> bool {
        self.mtor_block > 0.0 || self.ampa_block > 0.0 || self.bdnf_block > 0.0
    }

    /// Check the table; `baseline_end_min` is the protocol time at which the
    /// baseline readouts end.
    pub fn validate(&self, has_signalling: bool, baseline_end_min: f64) -> Check {
        for (name, v) in [
            ("mtor_block", self.mtor_block),
            ("ampa_block", self.ampa_block),
            ("bdnf_block", self.bdnf_block),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return Err(format!(
                    "interventions.{name}: must be a fraction in [0, 1] of the activity removed (got {v})"
                ));
            }
        }
        if !has_signalling && (self.mtor_block > 0.0 || self.bdnf_block > 0.0) {
            return Err("interventions: mtor_block and bdnf_block act on the slow signalling state; add a [signalling] table (ampa_block alone works without it)".into());
        }
        if let Some(t) = self.time_min {
            if !t.is_finite() {
                return Err(format!(
                    "interventions.time_min: must be a finite protocol time in minutes (got {t})"
                ));
            }
            if t < baseline_end_min - 1e-9 {
                return Err(format!(
                    "interventions.time_min: the blockers would act during the baseline readout, which ends at {baseline_end_min} min; give a time at or after it (got {t})"
                ));
            }
        }
        Ok(())
    }
}

impl Signalling {
    /// Check the table (population names are checked by the caller).
    pub fn validate(&self) -> Check {
        if self.populations.is_empty() {
            return Err("signalling.populations: name at least one population (the pyramidal cells), e.g. [\"E\"]".into());
        }
        positive("signalling.stress_density", self.stress_density)?;
        positive("signalling.tau_adapt_min", self.tau_adapt_min)?;
        if !(1..=8).contains(&self.hill_n) {
            return Err(format!(
                "signalling.hill_n: must be an integer from 1 to 8 (got {})",
                self.hill_n
            ));
        }
        positive("signalling.hill_k", self.hill_k)?;
        positive("signalling.tau_bdnf_min", self.tau_bdnf_min)?;
        positive("signalling.tau_mtor_min", self.tau_mtor_min)?;
        positive("signalling.tau_protein_h", self.tau_protein_h)?;
        super::checks::non_negative("signalling.growth_threshold", self.growth_threshold)?;
        super::checks::non_negative("signalling.growth_per_h", self.growth_per_h)?;
        positive("signalling.max_density", self.max_density)?;
        positive("signalling.tau_loss_h", self.tau_loss_h)?;
        positive("signalling.step_s", self.step_s)?;
        let set = self.set_point();
        if self.max_density < set {
            return Err(format!(
                "signalling.max_density: must be at least the density set point {set} (got {})",
                self.max_density
            ));
        }
        let fastest_s = 60.0
            * self
                .tau_adapt_min
                .min(self.tau_bdnf_min)
                .min(self.tau_mtor_min);
        if self.step_s > fastest_s / 5.0 {
            return Err(format!(
                "signalling.step_s: must be at most a fifth of the fastest slow time constant ({fastest_s} s), so the coarse integration follows it; give at most {} (got {})",
                fastest_s / 5.0,
                self.step_s
            ));
        }
        Ok(())
    }

    /// The density set point (and starting density) of the chosen baseline.
    pub fn set_point(&self) -> f64 {
        match self.baseline {
            Baseline::Healthy => 1.0,
            Baseline::ChronicStress => self.stress_density,
        }
    }

    /// Resting drive D(1) = 1 / (1 + K^n): the BDNF and mTOR level at baseline.
    pub fn m_rest(&self) -> f64 {
        1.0 / (1.0 + self.hill_k.powi(self.hill_n as i32))
    }
}
