//! Host-side ketamine pharmacokinetics (SCIENCE.md section 4): from a dosing protocol
//! to the free ketamine concentration that the NMDA receptors see (µM), or a
//! user-given concentration table instead.
//!
//! # Model
//!
//! One linear, time-invariant system per species preset (amounts per kg body weight):
//!
//! ```text
//!   d(D_ip)/dt = -ka_ip D_ip                         i.p. depot (mg/kg)
//!   d(D_sc)/dt = -ka_sc D_sc                         s.c. depot (mg/kg)
//!   d(A1)/dt   =  ka_ip D_ip + ka_sc D_sc + R(t)     central (plasma) amount (mg/kg)
//!                 - (k10 + k12) A1 + k21 A2
//!   d(A2)/dt   =  k12 A1 - k21 A2                    peripheral amount (mg/kg)
//!   d(Ce)/dt   =  ke0 (A1 / V1 - Ce)                 effect site, plasma-equivalent (mg/L)
//!
//!   plasma (ng/mL)              = 1000 A1 / V1
//!   free brain (effect site, µM) = free_fraction * brain_plasma_ratio * 1000 Ce / 237.7
//! ```
//!
//! Human: two compartments (Clements & Nimmo 1981). Rat and mouse: one compartment
//! (`k12 = 0`) with first-order absorption from an i.p. or s.c. depot. Doses: an i.v.
//! bolus adds `dose` to A1, an i.p./s.c. dose adds `F dose` to its depot, an i.v.
//! infusion adds the constant rate `R = dose / infusion_min` to A1 while it runs.
//!
//! # Exactness
//!
//! The infusion rate is carried as a sixth, constant state, so between two events
//! (dose times and infusion ends) the whole system is `x' = M x` with a constant 6x6
//! matrix and the solution is `x(t) = exp(M (t - t_k)) x(t_k)`. The matrix exponential
//! is computed by scaling and squaring with a Taylor series on `|M h| <= 1/2` (truncation
//! below 1e-20), i.e. to rounding error: no time step, no Euler. Because the system is
//! linear, doses superpose exactly. `tests/pk.rs` checks it against the closed forms
//! (bolus, Bateman function, bi-exponential, effect site) to 1e-9.

use crate::scenario::checks::{finite, fraction, non_negative, positive};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Molar mass of ketamine (free base, C13H16ClNO), g/mol (SCIENCE.md section 4).
pub const KETAMINE_MW_G_PER_MOL: f64 = 237.7;

/// 1 µM of ketamine in ng/mL: 1 µmol/L x 237.7 g/mol = 237.7 µg/L = 237.7 ng/mL.
pub const NG_PER_ML_PER_UM: f64 = KETAMINE_MW_G_PER_MOL;

/// Prefix of every validation message: the scenario table this type is read from.
const TABLE: &str = "pharmacokinetics";

/// Highest free ketamine concentration at the receptors that a run accepts (µM), from
/// a constant `drug.conc_um`, a `conc_table` or a dosing protocol's peak: a hundred
/// times the plasma level of anaesthesia (5-10 µM, Zanos et al. 2018; SCIENCE.md
/// section 4) and far above every subunit's IC50 (0.31-5.35 µM, Kotermanski & Johnson
/// 2009; section 3), so it stops only values no experiment gives, before they
/// overflow the kernels' f32 state.
pub const MAX_CONC_UM: f64 = 1000.0;

/// Species preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Species {
    /// Two-compartment i.v. model of Clements & Nimmo 1981.
    Human,
    /// One compartment with first-order absorption (starting values).
    Rat,
    /// One compartment with first-order absorption (starting values).
    Mouse,
}

impl Species {
    /// The spelling used in scenario files and on the command line.
    pub fn label(self) -> &'static str {
        match self {
            Species::Human => "human",
            Species::Rat => "rat",
            Species::Mouse => "mouse",
        }
    }
}

/// Route of administration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// Intravenous bolus: the whole dose enters plasma at `time_min`.
    IvBolus,
    /// Intravenous infusion at a constant rate for `infusion_min` minutes.
    IvInfusion,
    /// Intraperitoneal: first-order absorption at `ka_ip_per_min`, fraction
    /// `bioavailability_ip`.
    Ip,
    /// Subcutaneous: first-order absorption at `ka_sc_per_min`, fraction
    /// `bioavailability_sc`.
    Sc,
}

impl Route {
    /// The spelling used in scenario files and on the command line.
    pub fn label(self) -> &'static str {
        match self {
            Route::IvBolus => "iv-bolus",
            Route::IvInfusion => "iv-infusion",
            Route::Ip => "ip",
            Route::Sc => "sc",
        }
    }
}

/// One dose of a protocol. Doses superpose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dose {
    /// When the dose is given (min) on the protocol's clock (the simulation's t = 0);
    /// any finite value, negative for a dose given before the simulated window starts.
    /// For an infusion, its start.
    #[serde(default)]
    pub time_min: f64,
    /// Route of administration.
    pub route: Route,
    /// Dose (mg per kg body weight, as ketamine), >= 0.
    pub dose_mg_per_kg: f64,
    /// Duration of an `iv-infusion` (min), > 0; required for it and only for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infusion_min: Option<f64>,
}

/// The numbers of one pharmacokinetic model (a species preset with any overrides).
/// Every preset value carries its source or is marked a starting value with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PkParams {
    /// Central (plasma) volume, L/kg.
    pub v1_l_per_kg: f64,
    /// Elimination rate constant from the central compartment, /min.
    pub k10_per_min: f64,
    /// Central -> peripheral rate constant, /min (0: one compartment).
    pub k12_per_min: f64,
    /// Peripheral -> central rate constant, /min.
    pub k21_per_min: f64,
    /// i.p. absorption rate constant, /min (`None`: no i.p. route for this preset).
    pub ka_ip_per_min: Option<f64>,
    /// s.c. absorption rate constant, /min (`None`: no s.c. route for this preset).
    pub ka_sc_per_min: Option<f64>,
    /// Fraction of an i.p. dose that reaches plasma, (0, 1].
    pub bioavailability_ip: f64,
    /// Fraction of an s.c. dose that reaches plasma, (0, 1].
    pub bioavailability_sc: f64,
    /// Plasma -> brain effect-site equilibration rate constant, /min.
    pub ke0_per_min: f64,
    /// Free (unbound) fraction applied to the effect-site level, (0, 1].
    pub free_fraction: f64,
    /// Multiplier on the effect-site level (brain : plasma), > 0.
    pub brain_plasma_ratio: f64,
}

/// Human, Clements & Nimmo 1981 (Br J Anaesth 53:27), the set used by open TIVA tools
/// (SCIENCE.md section 4): central volume 1.75 L/kg.
pub const HUMAN_V1_L_PER_KG: f64 = 1.75;
/// Human, Clements & Nimmo 1981: k10 = 0.0109 /min (clearance 1.75 x 0.0109 = 19.1
/// mL/min/kg, matching the meta-analytic 79 L/h/70 kg = 18.8 mL/min/kg of Kamp et al.
/// 2020, Anesthesiology 133:1192). With k12, k21 below: distribution half-life 17.6 min,
/// terminal half-life ln 2 / beta = 182.9 min = 3.05 h.
pub const HUMAN_K10_PER_MIN: f64 = 0.0109;
/// Human, Clements & Nimmo 1981: k12 = 0.0186 /min.
pub const HUMAN_K12_PER_MIN: f64 = 0.0186;
/// Human, Clements & Nimmo 1981: k21 = 0.0137 /min.
pub const HUMAN_K21_PER_MIN: f64 = 0.0137;
/// Human effect-site equilibration, *starting value* 1 /min (t1/2 0.69 min): the low
/// end of SCIENCE.md's 1-5 /min, because a human's cardiac output per kg (and so brain
/// delivery relative to body size) is several times lower than a rodent's; it makes
/// the brain lag plasma by about a minute, which the tests check.
pub const HUMAN_KE0_PER_MIN: f64 = 1.0;

/// Rodent volume of distribution, *starting value* 4 L/kg: ketamine's steady-state
/// volume is 3-4 L/kg wherever it has been measured (human 252 L/70 kg = 3.6 L/kg,
/// Kamp et al. 2020; dog 4.06 L/kg, Pypendop & Ilkiw 2005, Am J Vet Res 66:2034;
/// rabbit 3.2 L/kg, Luca et al. 2020, Vet Anaesth Analg); the one-compartment rodent
/// model lumps it into one volume.
pub const RODENT_V_L_PER_KG: f64 = 4.0;
/// Rat elimination half-life, *starting value* 40 min (k = ln 2 / 40 = 0.0173 /min):
/// inside the 15-60 min rodent range, shorter than dog (61 min, Kaka & Hayton 1980,
/// J Pharmacokinet Biopharm 8:193) and rabbit (59 min, Luca et al. 2020), longer than
/// mouse. With 4 L/kg it gives a clearance of 69 mL/min/kg, about 1.25 x the rat's
/// hepatic blood flow (55 mL/min/kg, Davies & Morris 1993, Pharm Res 10:1093), the
/// same ratio as in rabbit (88 vs 71 mL/min/kg) and as expected for a high-extraction
/// drug (human: 19 vs 21 mL/min/kg).
pub const RAT_HALF_LIFE_MIN: f64 = 40.0;
/// Mouse elimination half-life, *starting value* 15 min (k = 0.0462 /min): the short
/// end of the rodent range, so that after 30 mg/kg s.c. the brain level is maximal near
/// 15 min and below 20 % of its peak at 1 h, as NMDA receptor occupancy is in Lord et
/// al. 2013 (Eur J Pharmacol 715:21: maximal at 15 min, none significant at 1 h).
pub const MOUSE_HALF_LIFE_MIN: f64 = 15.0;
/// Rodent i.p. absorption, *starting value* 0.5 /min (absorption t1/2 1.4 min): the
/// peritoneum absorbs small lipophilic drugs within minutes, and the plasma peak then
/// falls at 5-7 min, brain a minute later ("brain peak within minutes", SCIENCE.md).
pub const RODENT_KA_IP_PER_MIN: f64 = 0.5;
/// Rodent s.c. absorption, *starting value* 0.15 /min (absorption t1/2 4.6 min):
/// slower than i.p.; puts the mouse brain peak after s.c. dosing at 12-13 min, at
/// Lord et al. 2013's maximal occupancy at 15 min.
pub const RODENT_KA_SC_PER_MIN: f64 = 0.15;
/// Rodent i.p. and s.c. bioavailability, *starting value* 1: the rodent volume and
/// clearance above are apparent values (V/F, CL/F) that already absorb incomplete
/// absorption or first pass; set it below 1 for a measured i.p. first-pass loss.
pub const RODENT_BIOAVAILABILITY: f64 = 1.0;
/// Rodent effect-site equilibration, *starting value* 3 /min (t1/2 0.23 min): higher
/// than human (higher cardiac output per kg); rat brain ketamine peaks less than a
/// minute after an i.v. injection (Cohen et al. 1973, Anesthesiology 39:370). In the
/// one-compartment model, which has no fast distribution phase, the effect site then
/// peaks 1.7 min after an i.v. bolus.
pub const RODENT_KE0_PER_MIN: f64 = 3.0;
/// Free (unbound) fraction, *starting value* 0.6 for every species: inside SCIENCE.md's
/// 0.5-0.9, near the measured plasma protein binding of ketamine (53.5 % bound in dog
/// plasma by equilibrium dialysis, i.e. 0.47 free, Kaka & Hayton 1980); unbound drug is
/// what crosses the blood-brain barrier and what the receptor sees.
pub const FREE_FRACTION: f64 = 0.6;
/// Brain : plasma multiplier on the effect-site level, *starting value* 1 for every
/// species. Rat brain tissue holds 6.5 x the plasma level (Cohen et al. 1973), but
/// that is the *total* (mostly tissue-bound) brain level; for a drug that crosses the
/// blood-brain barrier passively the *unbound* brain level equals the unbound plasma
/// level, so applying 6.5 on top of the free fraction would put the free brain level
/// at 3-4 x plasma. A scenario may set it (e.g. to represent the total-tissue level).
pub const BRAIN_PLASMA_RATIO: f64 = 1.0;

impl PkParams {
    /// The preset of a species (see the constants above for the sources).
    pub fn preset(species: Species) -> Self {
        let rodent = |half_life_min: f64| PkParams {
            v1_l_per_kg: RODENT_V_L_PER_KG,
            k10_per_min: std::f64::consts::LN_2 / half_life_min,
            k12_per_min: 0.0,
            k21_per_min: 0.0,
            ka_ip_per_min: Some(RODENT_KA_IP_PER_MIN),
            ka_sc_per_min: Some(RODENT_KA_SC_PER_MIN),
            bioavailability_ip: RODENT_BIOAVAILABILITY,
            bioavailability_sc: RODENT_BIOAVAILABILITY,
            ke0_per_min: RODENT_KE0_PER_MIN,
            free_fraction: FREE_FRACTION,
            brain_plasma_ratio: BRAIN_PLASMA_RATIO,
        };
        match species {
            Species::Human => PkParams {
                v1_l_per_kg: HUMAN_V1_L_PER_KG,
                k10_per_min: HUMAN_K10_PER_MIN,
                k12_per_min: HUMAN_K12_PER_MIN,
                k21_per_min: HUMAN_K21_PER_MIN,
                // No human i.p./s.c. absorption data in the model: those routes need
                // `ka_ip_per_min` / `ka_sc_per_min` from the scenario.
                ka_ip_per_min: None,
                ka_sc_per_min: None,
                bioavailability_ip: 1.0,
                bioavailability_sc: 1.0,
                ke0_per_min: HUMAN_KE0_PER_MIN,
                free_fraction: FREE_FRACTION,
                brain_plasma_ratio: BRAIN_PLASMA_RATIO,
            },
            Species::Rat => rodent(RAT_HALF_LIFE_MIN),
            Species::Mouse => rodent(MOUSE_HALF_LIFE_MIN),
        }
    }

    /// Clearance, mL/min/kg (V1 k10).
    pub fn clearance_ml_per_min_per_kg(&self) -> f64 {
        1000.0 * self.v1_l_per_kg * self.k10_per_min
    }

    /// Disposition rate constants (alpha >= beta), /min: the eigenvalues of the
    /// central/peripheral system; `(k10, k10)` for one compartment.
    pub fn disposition_rates_per_min(&self) -> (f64, f64) {
        let (k10, k12, k21) = (self.k10_per_min, self.k12_per_min, self.k21_per_min);
        if k12 == 0.0 {
            return (k10, k10);
        }
        let s = k10 + k12 + k21;
        let p = k10 * k21;
        let alpha = 0.5 * (s + (s * s - 4.0 * p).max(0.0).sqrt());
        // beta from the product, free of the cancellation in s - sqrt(...).
        (alpha, p / alpha)
    }

    /// Terminal (elimination) half-life, min: ln 2 / beta.
    pub fn terminal_half_life_min(&self) -> f64 {
        std::f64::consts::LN_2 / self.disposition_rates_per_min().1
    }

    /// Distribution half-life, min: ln 2 / alpha; `None` for one compartment.
    pub fn distribution_half_life_min(&self) -> Option<f64> {
        (self.k12_per_min > 0.0)
            .then(|| std::f64::consts::LN_2 / self.disposition_rates_per_min().0)
    }

    /// Check every value; `prefix` is the table the fields live in.
    fn validate(&self, prefix: &str) -> Result<(), String> {
        positive(&format!("{prefix}.v1_l_per_kg"), self.v1_l_per_kg)?;
        positive(&format!("{prefix}.k10_per_min"), self.k10_per_min)?;
        non_negative(&format!("{prefix}.k12_per_min"), self.k12_per_min)?;
        non_negative(&format!("{prefix}.k21_per_min"), self.k21_per_min)?;
        if self.k12_per_min > 0.0 && self.k21_per_min <= 0.0 {
            return Err(format!(
                "{prefix}.k21_per_min: must be > 0 when k12_per_min > 0 (got {}; drug would never return from the peripheral compartment)",
                self.k21_per_min
            ));
        }
        if let Some(k) = self.ka_ip_per_min {
            positive(&format!("{prefix}.ka_ip_per_min"), k)?;
        }
        if let Some(k) = self.ka_sc_per_min {
            positive(&format!("{prefix}.ka_sc_per_min"), k)?;
        }
        fraction(
            &format!("{prefix}.bioavailability_ip"),
            self.bioavailability_ip,
        )?;
        fraction(
            &format!("{prefix}.bioavailability_sc"),
            self.bioavailability_sc,
        )?;
        positive(&format!("{prefix}.ke0_per_min"), self.ke0_per_min)?;
        fraction(&format!("{prefix}.free_fraction"), self.free_fraction)?;
        positive(
            &format!("{prefix}.brain_plasma_ratio"),
            self.brain_plasma_ratio,
        )?;
        Ok(())
    }
}

/// The `[pharmacokinetics]` table of a scenario: a dosing protocol on a species preset
/// (with optional overrides of every model parameter), or a table of the free brain
/// concentration. Empty (the default): no drug.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkScenario {
    /// Species preset; required with `doses` or any parameter override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub species: Option<Species>,
    /// Doses (any number, any routes; they superpose).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doses: Vec<Dose>,
    /// Instead of a model: `[[t_min, conc_um], ...]`, the free brain concentration
    /// (µM) at strictly increasing times (min), linearly interpolated and constant
    /// beyond the ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conc_table: Option<Vec<[f64; 2]>>,
    /// Override: central volume, L/kg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1_l_per_kg: Option<f64>,
    /// Override: elimination rate constant, /min.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k10_per_min: Option<f64>,
    /// Override: central -> peripheral rate constant, /min (> 0 makes a rodent preset
    /// two-compartment; then give `k21_per_min` too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k12_per_min: Option<f64>,
    /// Override: peripheral -> central rate constant, /min.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k21_per_min: Option<f64>,
    /// Override: i.p. absorption rate constant, /min.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ka_ip_per_min: Option<f64>,
    /// Override: s.c. absorption rate constant, /min.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ka_sc_per_min: Option<f64>,
    /// Override: i.p. bioavailability, (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bioavailability_ip: Option<f64>,
    /// Override: s.c. bioavailability, (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bioavailability_sc: Option<f64>,
    /// Override: effect-site equilibration rate constant, /min.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ke0_per_min: Option<f64>,
    /// Override: free (unbound) fraction, (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_fraction: Option<f64>,
    /// Override: brain : plasma multiplier on the effect-site level, > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brain_plasma_ratio: Option<f64>,
}

impl PkScenario {
    /// The overrides that are set, with their field names.
    fn overrides(&self) -> Vec<(&'static str, f64)> {
        [
            ("v1_l_per_kg", self.v1_l_per_kg),
            ("k10_per_min", self.k10_per_min),
            ("k12_per_min", self.k12_per_min),
            ("k21_per_min", self.k21_per_min),
            ("ka_ip_per_min", self.ka_ip_per_min),
            ("ka_sc_per_min", self.ka_sc_per_min),
            ("bioavailability_ip", self.bioavailability_ip),
            ("bioavailability_sc", self.bioavailability_sc),
            ("ke0_per_min", self.ke0_per_min),
            ("free_fraction", self.free_fraction),
            ("brain_plasma_ratio", self.brain_plasma_ratio),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect()
    }

    /// The model parameters: the species preset with the overrides applied. `None`
    /// with a `conc_table` or without a species.
    pub fn params(&self) -> Option<PkParams> {
        if self.conc_table.is_some() {
            return None;
        }
        let mut p = PkParams::preset(self.species?);
        let set = |dst: &mut f64, v: Option<f64>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut p.v1_l_per_kg, self.v1_l_per_kg);
        set(&mut p.k10_per_min, self.k10_per_min);
        set(&mut p.k12_per_min, self.k12_per_min);
        set(&mut p.k21_per_min, self.k21_per_min);
        if self.ka_ip_per_min.is_some() {
            p.ka_ip_per_min = self.ka_ip_per_min;
        }
        if self.ka_sc_per_min.is_some() {
            p.ka_sc_per_min = self.ka_sc_per_min;
        }
        set(&mut p.bioavailability_ip, self.bioavailability_ip);
        set(&mut p.bioavailability_sc, self.bioavailability_sc);
        set(&mut p.ke0_per_min, self.ke0_per_min);
        set(&mut p.free_fraction, self.free_fraction);
        set(&mut p.brain_plasma_ratio, self.brain_plasma_ratio);
        Some(p)
    }

    /// Check every field; the error names the first bad one as a path such as
    /// `pharmacokinetics.doses[0].dose_mg_per_kg`.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(table) = &self.conc_table {
            if !self.doses.is_empty() {
                return Err(format!(
                    "{TABLE}.conc_table: give either `doses` or `conc_table`, not both"
                ));
            }
            if self.species.is_some() {
                return Err(format!(
                    "{TABLE}.species: not used with `conc_table` (the table is the free brain level itself); remove one"
                ));
            }
            if let Some((name, _)) = self.overrides().first() {
                return Err(format!(
                    "{TABLE}.{name}: not used with `conc_table` (the table is the free brain level itself); remove one"
                ));
            }
            return validate_table(table);
        }
        let Some(species) = self.species else {
            if !self.doses.is_empty() {
                return Err(format!(
                    "{TABLE}.species: missing; doses need a species preset: \"human\", \"rat\" or \"mouse\""
                ));
            }
            if let Some((name, _)) = self.overrides().first() {
                return Err(format!(
                    "{TABLE}.species: missing; `{name}` overrides a species preset: give \"human\", \"rat\" or \"mouse\""
                ));
            }
            return Ok(());
        };
        let p = self
            .params()
            .expect("a species and no table give parameters");
        p.validate(TABLE)?;
        for (i, d) in self.doses.iter().enumerate() {
            let f = format!("{TABLE}.doses[{i}]");
            finite(&format!("{f}.time_min"), d.time_min)?;
            non_negative(&format!("{f}.dose_mg_per_kg"), d.dose_mg_per_kg)?;
            match (d.route, d.infusion_min) {
                (Route::IvInfusion, None) => {
                    return Err(format!(
                        "{f}.infusion_min: missing; route \"iv-infusion\" needs its duration in minutes (> 0)"
                    ))
                }
                (Route::IvInfusion, Some(m)) => positive(&format!("{f}.infusion_min"), m)?,
                (r, Some(_)) => {
                    return Err(format!(
                        "{f}.infusion_min: only for route \"iv-infusion\" (route is \"{}\")",
                        r.label()
                    ))
                }
                (_, None) => {}
            }
            let (missing, key) = match d.route {
                Route::Ip => (p.ka_ip_per_min.is_none(), "ka_ip_per_min"),
                Route::Sc => (p.ka_sc_per_min.is_none(), "ka_sc_per_min"),
                _ => (false, ""),
            };
            if missing {
                return Err(format!(
                    "{f}.route: \"{}\" needs an absorption rate, which the {} preset does not have; set {TABLE}.{key} or use \"iv-bolus\" / \"iv-infusion\"",
                    d.route.label(),
                    species.label()
                ));
            }
        }
        check_peak(&p, &self.doses)
    }
}

/// The doses' free effect-site peak is at most [`MAX_CONC_UM`]. The effect site
/// follows plasma (dCe/dt = ke0 (Cp - Ce)), so Ce never exceeds the highest plasma
/// level, and that never exceeds every bioavailable dose in the central volume at
/// once: (sum of F dose) / V1. Where that bound is already below the limit (every
/// protocol with doses an experiment gives) nothing more is computed; otherwise the
/// peak itself is found ([`PkProfile::peak_free_brain_conc_um`]) from the first dose
/// to five of the slowest half-lives (elimination, absorption, effect site) after the
/// last dose or infusion end.
fn check_peak(p: &PkParams, doses: &[Dose]) -> Result<(), String> {
    let to_um = p.free_fraction * p.brain_plasma_ratio * 1000.0 / NG_PER_ML_PER_UM;
    let bioavailable: f64 = doses
        .iter()
        .map(|d| {
            d.dose_mg_per_kg
                * match d.route {
                    Route::Ip => p.bioavailability_ip,
                    Route::Sc => p.bioavailability_sc,
                    Route::IvBolus | Route::IvInfusion => 1.0,
                }
        })
        .sum();
    if bioavailable / p.v1_l_per_kg * to_um <= MAX_CONC_UM {
        return Ok(());
    }
    let profile = PkProfile {
        kind: Kind::Model(Box::new(Compiled::new(*p, doses))),
    };
    let first = doses
        .iter()
        .map(|d| d.time_min)
        .fold(f64::INFINITY, f64::min);
    let last = profile.event_times_min().into_iter().fold(first, f64::max);
    let slowest_per_min = [
        p.disposition_rates_per_min().1,
        p.ke0_per_min,
        p.ka_ip_per_min.unwrap_or(f64::INFINITY),
        p.ka_sc_per_min.unwrap_or(f64::INFINITY),
    ]
    .into_iter()
    .fold(f64::INFINITY, f64::min);
    let horizon = last + 5.0 * std::f64::consts::LN_2 / slowest_per_min;
    let (t, peak) = profile.peak_free_brain_conc_um(first, horizon);
    if peak.is_finite() && peak <= MAX_CONC_UM {
        return Ok(());
    }
    Err(format!(
        "{TABLE}.doses: the free effect-site ketamine peaks at {peak:.4e} µM (at {t:.1} min), above the {MAX_CONC_UM} µM a run accepts (anaesthesia is 5-10 µM); lower dose_mg_per_kg"
    ))
}

impl PkScenario {
    /// Validate and precompute: the state at every dose and infusion end, so that each
    /// later evaluation is one matrix exponential (or one table look-up).
    pub fn profile(&self) -> Result<PkProfile, String> {
        self.validate()?;
        if let Some(table) = &self.conc_table {
            return Ok(PkProfile {
                kind: Kind::Table(table.clone()),
            });
        }
        match self.params() {
            None => Ok(PkProfile { kind: Kind::None }),
            Some(p) => Ok(PkProfile {
                kind: Kind::Model(Box::new(Compiled::new(p, &self.doses))),
            }),
        }
    }

    /// Free ketamine at the brain effect site (µM) at `t_min` on the protocol's clock
    /// (0 before the first dose). Builds the profile on every call: for many
    /// evaluations use [`PkScenario::profile`] once. NaN if the scenario is invalid.
    pub fn free_brain_conc_um(&self, t_min: f64) -> f64 {
        self.profile()
            .map_or(f64::NAN, |p| p.free_brain_conc_um(t_min))
    }

    /// Plasma ketamine (total, ng/mL) at `t_min`; `None` with a `conc_table`, which
    /// has no plasma level. NaN if the scenario is invalid.
    pub fn plasma_ng_per_ml(&self, t_min: f64) -> Option<f64> {
        match self.profile() {
            Ok(p) => p.plasma_ng_per_ml(t_min),
            Err(_) => Some(f64::NAN),
        }
    }
}

fn validate_table(table: &[[f64; 2]]) -> Result<(), String> {
    if table.is_empty() {
        return Err(format!(
            "{TABLE}.conc_table: must have at least one row [t_min, conc_um]"
        ));
    }
    for (i, &[t, c]) in table.iter().enumerate() {
        finite(&format!("{TABLE}.conc_table[{i}][0] (t_min)"), t)?;
        non_negative(&format!("{TABLE}.conc_table[{i}][1] (conc_um)"), c)?;
        if c > MAX_CONC_UM {
            return Err(format!(
                "{TABLE}.conc_table[{i}][1] (conc_um): at most {MAX_CONC_UM} µM free at the receptors (anaesthesia is 5-10 µM; got {c})"
            ));
        }
        if i > 0 && t <= table[i - 1][0] {
            return Err(format!(
                "{TABLE}.conc_table[{i}][0] (t_min): times must increase strictly (got {t} after {})",
                table[i - 1][0]
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The compiled profile.

/// State layout: i.p. depot, s.c. depot, central and peripheral amounts (mg/kg),
/// effect site (plasma-equivalent mg/L), infusion rate (mg/kg/min, constant between
/// events).
const D_IP: usize = 0;
const D_SC: usize = 1;
const A1: usize = 2;
const A2: usize = 3;
const CE: usize = 4;
const RATE: usize = 5;
const N: usize = 6;

type Mat = [[f64; N]; N];
type Vector = [f64; N];

/// A validated, precomputed concentration profile (see [`PkScenario::profile`]).
#[derive(Debug, Clone)]
pub struct PkProfile {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// No drug.
    None,
    /// Free brain µM, linearly interpolated.
    Table(Vec<[f64; 2]>),
    Model(Box<Compiled>),
}

#[derive(Debug, Clone)]
struct Compiled {
    params: PkParams,
    /// System matrix (per minute).
    m: Mat,
    /// Event times (ascending) and the state just after each event's doses.
    knots: Vec<(f64, Vector)>,
}

impl Compiled {
    fn new(p: PkParams, doses: &[Dose]) -> Self {
        let mut m = [[0.0; N]; N];
        let ka_ip = p.ka_ip_per_min.unwrap_or(0.0);
        let ka_sc = p.ka_sc_per_min.unwrap_or(0.0);
        m[D_IP][D_IP] = -ka_ip;
        m[D_SC][D_SC] = -ka_sc;
        m[A1][D_IP] = ka_ip;
        m[A1][D_SC] = ka_sc;
        m[A1][A1] = -(p.k10_per_min + p.k12_per_min);
        m[A1][A2] = p.k21_per_min;
        m[A1][RATE] = 1.0;
        m[A2][A1] = p.k12_per_min;
        m[A2][A2] = -p.k21_per_min;
        m[CE][A1] = p.ke0_per_min / p.v1_l_per_kg;
        m[CE][CE] = -p.ke0_per_min;

        // Infusion ends are computed once so that the start <= t < end test below
        // compares the very same floats as the event list.
        let ends: Vec<f64> = doses
            .iter()
            .map(|d| d.time_min + d.infusion_min.unwrap_or(0.0))
            .collect();
        let mut times: Vec<f64> = doses.iter().map(|d| d.time_min).collect();
        for (d, &e) in doses.iter().zip(&ends) {
            if d.route == Route::IvInfusion {
                times.push(e);
            }
        }
        times.sort_by(f64::total_cmp);
        times.dedup();

        let mut knots = Vec::with_capacity(times.len());
        let mut x = [0.0; N];
        let mut prev = f64::NAN;
        for &t in &times {
            if !prev.is_nan() {
                x = mat_vec(&expm(&m, t - prev), &x);
            }
            let mut rate = 0.0;
            for (d, &end) in doses.iter().zip(&ends) {
                match d.route {
                    Route::IvInfusion => {
                        if d.time_min <= t && t < end {
                            rate += d.dose_mg_per_kg / d.infusion_min.unwrap_or(f64::NAN);
                        }
                    }
                    _ if d.time_min != t => {}
                    Route::IvBolus => x[A1] += d.dose_mg_per_kg,
                    Route::Ip => x[D_IP] += p.bioavailability_ip * d.dose_mg_per_kg,
                    Route::Sc => x[D_SC] += p.bioavailability_sc * d.dose_mg_per_kg,
                }
            }
            x[RATE] = rate;
            knots.push((t, x));
            prev = t;
        }
        Compiled {
            params: p,
            m,
            knots,
        }
    }

    /// The state at `t` (zero before the first event).
    fn state(&self, t: f64) -> Vector {
        let k = self.knots.partition_point(|&(tk, _)| tk <= t);
        if k == 0 {
            return [0.0; N];
        }
        let (tk, xk) = &self.knots[k - 1];
        if t == f64::INFINITY {
            // Everything has been eliminated (k10 > 0, infusions are finite).
            return [0.0; N];
        }
        mat_vec(&expm(&self.m, t - tk), xk)
    }
}

impl PkProfile {
    /// The model parameters; `None` for a table or no drug.
    pub fn params(&self) -> Option<&PkParams> {
        match &self.kind {
            Kind::Model(c) => Some(&c.params),
            _ => None,
        }
    }

    /// Free ketamine at the brain effect site (µM) at `t_min`.
    pub fn free_brain_conc_um(&self, t_min: f64) -> f64 {
        if t_min.is_nan() {
            return f64::NAN;
        }
        match &self.kind {
            Kind::None => 0.0,
            Kind::Table(tab) => interpolate(tab, t_min),
            Kind::Model(c) => {
                let ce_mg_per_l = c.state(t_min)[CE].max(0.0);
                c.params.free_fraction * c.params.brain_plasma_ratio * 1000.0 * ce_mg_per_l
                    / NG_PER_ML_PER_UM
            }
        }
    }

    /// Plasma ketamine (total, ng/mL) at `t_min`; `None` for a table.
    pub fn plasma_ng_per_ml(&self, t_min: f64) -> Option<f64> {
        if t_min.is_nan() {
            return Some(f64::NAN);
        }
        match &self.kind {
            Kind::None => Some(0.0),
            Kind::Table(_) => None,
            Kind::Model(c) => Some(1000.0 * c.state(t_min)[A1].max(0.0) / c.params.v1_l_per_kg),
        }
    }

    /// Plasma (µM) at `t_min`; `None` for a table.
    pub fn plasma_um(&self, t_min: f64) -> Option<f64> {
        self.plasma_ng_per_ml(t_min).map(|c| c / NG_PER_ML_PER_UM)
    }

    /// The event times (doses, infusion ends) of a model; the knots of a table.
    pub fn event_times_min(&self) -> Vec<f64> {
        match &self.kind {
            Kind::None => Vec::new(),
            Kind::Table(t) => t.iter().map(|r| r[0]).collect(),
            Kind::Model(c) => c.knots.iter().map(|k| k.0).collect(),
        }
    }

    /// Peak plasma level in `[t0, t1]`: `(t_min, ng/mL)`; `None` for a table.
    pub fn peak_plasma_ng_per_ml(&self, t0: f64, t1: f64) -> Option<(f64, f64)> {
        self.plasma_ng_per_ml(t0)?;
        Some(self.peak(t0, t1, |t| self.plasma_ng_per_ml(t).unwrap_or(0.0)))
    }

    /// Peak free effect-site level in `[t0, t1]`: `(t_min, µM)`.
    pub fn peak_free_brain_conc_um(&self, t0: f64, t1: f64) -> (f64, f64) {
        self.peak(t0, t1, |t| self.free_brain_conc_um(t))
    }

    /// Maximum of `f` on `[t0, t1]`: a grid of at most 0.1 min (and at least 2000
    /// points), every event time (where infusions stop, the curves have kinks), then a
    /// golden-section refinement around the best grid point. Accurate to about 1e-6
    /// min for smooth maxima; exact at kinks.
    fn peak(&self, t0: f64, t1: f64, f: impl Fn(f64) -> f64) -> (f64, f64) {
        let (t0, t1) = if t1 < t0 { (t1, t0) } else { (t0, t1) };
        let span = t1 - t0;
        let n = ((span / 0.1).ceil() as usize).clamp(2000, 2_000_000);
        let h = span / n as f64;
        let mut best = (t0, f(t0));
        let consider = |t: f64, best: &mut (f64, f64)| {
            let v = f(t);
            if v > best.1 {
                *best = (t, v);
            }
        };
        for i in 1..=n {
            consider(t0 + h * i as f64, &mut best);
        }
        for t in self.event_times_min() {
            if t > t0 && t < t1 {
                consider(t, &mut best);
            }
        }
        // Golden-section search on [best - h, best + h] (unimodal near a smooth max).
        let (mut a, mut b) = ((best.0 - h).max(t0), (best.0 + h).min(t1));
        let g = 0.5 * (5f64.sqrt() - 1.0);
        let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
        let (mut fc, mut fd) = (f(c), f(d));
        for _ in 0..60 {
            if fc > fd {
                b = d;
                d = c;
                fd = fc;
                c = b - g * (b - a);
                fc = f(c);
            } else {
                a = c;
                c = d;
                fc = fd;
                d = a + g * (b - a);
                fd = f(d);
            }
        }
        let tm = 0.5 * (a + b);
        consider(tm, &mut best);
        best
    }
}

/// Linear interpolation in a validated table, constant beyond the ends.
fn interpolate(tab: &[[f64; 2]], t: f64) -> f64 {
    let k = tab.partition_point(|r| r[0] <= t);
    if k == 0 {
        return tab[0][1];
    }
    if k == tab.len() {
        return tab[k - 1][1];
    }
    let ([t0, c0], [t1, c1]) = (tab[k - 1], tab[k]);
    c0 + (c1 - c0) * (t - t0) / (t1 - t0)
}

fn mat_mul(a: &Mat, b: &Mat) -> Mat {
    let mut c = [[0.0; N]; N];
    for i in 0..N {
        for k in 0..N {
            let aik = a[i][k];
            if aik != 0.0 {
                for j in 0..N {
                    c[i][j] += aik * b[k][j];
                }
            }
        }
    }
    c
}

fn mat_vec(a: &Mat, x: &Vector) -> Vector {
    let mut y = [0.0; N];
    for i in 0..N {
        y[i] = (0..N).map(|j| a[i][j] * x[j]).sum();
    }
    y
}

fn norm1(a: &Mat) -> f64 {
    (0..N)
        .map(|j| (0..N).map(|i| a[i][j].abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

/// exp(m h): scaling and squaring, Taylor series on the scaled matrix (1-norm <= 1/2,
/// so the remainder after k terms is below 0.5^k / k!; the loop stops when a term no
/// longer changes the sum in double precision).
fn expm(m: &Mat, h: f64) -> Mat {
    let norm = norm1(m) * h.abs();
    let s = if norm > 0.5 {
        ((norm / 0.5).log2().ceil() as i32).min(1000)
    } else {
        0
    };
    let scale = h / 2f64.powi(s);
    let mut b = *m;
    for row in b.iter_mut() {
        for v in row.iter_mut() {
            *v *= scale;
        }
    }
    let mut sum = [[0.0; N]; N];
    for (i, row) in sum.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    let mut term = sum;
    for k in 1..=40 {
        term = mat_mul(&term, &b);
        let inv = 1.0 / k as f64;
        for row in term.iter_mut() {
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
        for i in 0..N {
            for j in 0..N {
                sum[i][j] += term[i][j];
            }
        }
        if norm1(&term) <= 1e-18 * norm1(&sum) {
            break;
        }
    }
    for _ in 0..s {
        sum = mat_mul(&sum, &sum);
    }
    sum
}

// ---------------------------------------------------------------------------------
// The `ketasim pk` subcommand.

/// `ketasim pk`: print a concentration-time course of one dose.
#[derive(Debug, Clone, clap::Args)]
pub struct PkArgs {
    /// Species preset.
    #[arg(long, value_enum)]
    pub species: Species,
    /// Route of administration (ip and sc: rat and mouse only).
    #[arg(long, value_enum)]
    pub route: Route,
    /// Dose, mg/kg (>= 0), given at t = 0.
    #[arg(long, allow_negative_numbers = true)]
    pub dose_mg_per_kg: f64,
    /// Infusion duration, min (> 0); required with --route iv-infusion, only then.
    #[arg(long, allow_negative_numbers = true)]
    pub infusion_min: Option<f64>,
    /// Length of the course, hours (> 0).
    #[arg(long, default_value_t = 6.0, allow_negative_numbers = true)]
    pub hours: f64,
    /// Output interval, min (> 0).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub step_min: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Largest number of rows `ketasim pk` prints.
pub const PK_MAX_ROWS: usize = 1_000_000;

/// One row of a `ketasim pk` course.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PkRow {
    /// Time since the dose (min).
    pub t_min: f64,
    /// Plasma ketamine, total (ng/mL).
    pub plasma_ng_per_ml: f64,
    /// Plasma ketamine, total (µM).
    pub plasma_um: f64,
    /// Free ketamine at the brain effect site (µM): what the receptor sees.
    pub free_effect_site_um: f64,
}

#[derive(Serialize)]
struct PkReport<'a> {
    species: &'a str,
    route: &'a str,
    dose_mg_per_kg: f64,
    infusion_min: Option<f64>,
    hours: f64,
    step_min: f64,
    model: &'a str,
    parameters: PkParams,
    clearance_ml_per_min_per_kg: f64,
    distribution_half_life_min: Option<f64>,
    terminal_half_life_min: f64,
    peak_plasma_ng_per_ml: f64,
    peak_plasma_um: f64,
    t_peak_min: f64,
    peak_free_effect_site_um: f64,
    t_peak_free_effect_site_min: f64,
    series: Vec<PkRow>,
}

/// Run `ketasim pk`: the text to print (a table, or JSON with `--json`). Errors name
/// the flag.
pub fn pk_command(args: &PkArgs) -> anyhow::Result<String> {
    let d = args.dose_mg_per_kg;
    if !(d.is_finite() && d >= 0.0) {
        anyhow::bail!("--dose-mg-per-kg: must be a finite number >= 0 (got {d})");
    }
    match (args.route, args.infusion_min) {
        (Route::IvInfusion, None) => {
            anyhow::bail!(
                "--infusion-min: required with --route iv-infusion (its duration in minutes, > 0)"
            )
        }
        (Route::IvInfusion, Some(m)) if !(m.is_finite() && m > 0.0) => {
            anyhow::bail!("--infusion-min: must be a finite number > 0 (got {m})")
        }
        (r, Some(_)) if r != Route::IvInfusion => {
            anyhow::bail!(
                "--infusion-min: only with --route iv-infusion (route is {})",
                r.label()
            )
        }
        _ => {}
    }
    let hours = args.hours;
    if !(hours.is_finite() && hours > 0.0) {
        anyhow::bail!("--hours: must be a finite number > 0 (got {hours})");
    }
    let step = args.step_min;
    if !(step.is_finite() && step > 0.0) {
        anyhow::bail!("--step-min: must be a finite number > 0 (got {step})");
    }
    let end = hours * 60.0;
    let steps = (end / step * (1.0 + 1e-12)).floor();
    if steps + 1.0 > PK_MAX_ROWS as f64 {
        anyhow::bail!(
            "--step-min: {step} min over {hours} h gives {} rows, more than {PK_MAX_ROWS}; raise --step-min or lower --hours",
            steps + 1.0
        );
    }
    let steps = steps as usize;
    let sc = PkScenario {
        species: Some(args.species),
        doses: vec![Dose {
            time_min: 0.0,
            route: args.route,
            dose_mg_per_kg: d,
            infusion_min: args.infusion_min,
        }],
        ..PkScenario::default()
    };
    let profile = sc.profile().map_err(|e| {
        let flag = if e.contains(".route") {
            "--route"
        } else if e.contains(".doses") {
            "--dose-mg-per-kg"
        } else {
            "--species"
        };
        anyhow::anyhow!("{flag}: {e}")
    })?;
    let params = *profile.params().expect("a dosed model has parameters");
    let series: Vec<PkRow> = (0..=steps)
        .map(|i| {
            let t = (i as f64 * step).min(end);
            let c = profile.plasma_ng_per_ml(t).unwrap_or(0.0);
            PkRow {
                t_min: t,
                plasma_ng_per_ml: c,
                plasma_um: c / NG_PER_ML_PER_UM,
                free_effect_site_um: profile.free_brain_conc_um(t),
            }
        })
        .collect();
    let (t_peak, peak) = profile
        .peak_plasma_ng_per_ml(0.0, end)
        .expect("a model has a plasma level");
    let (t_peak_e, peak_e) = profile.peak_free_brain_conc_um(0.0, end);
    let model = if params.k12_per_min > 0.0 {
        "two-compartment"
    } else {
        "one-compartment"
    };
    let report = PkReport {
        species: args.species.label(),
        route: args.route.label(),
        dose_mg_per_kg: d,
        infusion_min: args.infusion_min,
        hours,
        step_min: step,
        model,
        parameters: params,
        clearance_ml_per_min_per_kg: params.clearance_ml_per_min_per_kg(),
        distribution_half_life_min: params.distribution_half_life_min(),
        terminal_half_life_min: params.terminal_half_life_min(),
        peak_plasma_ng_per_ml: peak,
        peak_plasma_um: peak / NG_PER_ML_PER_UM,
        t_peak_min: t_peak,
        peak_free_effect_site_um: peak_e,
        t_peak_free_effect_site_min: t_peak_e,
        series,
    };
    if args.json {
        return Ok(serde_json::to_string_pretty(&report)? + "\n");
    }
    Ok(text_report(&report))
}

fn text_report(r: &PkReport) -> String {
    let p = &r.parameters;
    let mut s = String::new();
    let infusion = r
        .infusion_min
        .map_or(String::new(), |m| format!(" over {m} min"));
    let _ = writeln!(
        s,
        "# ketamine {} {} {} mg/kg{infusion} at t = 0 ({})",
        r.species, r.route, r.dose_mg_per_kg, r.model
    );
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v}"));
    let _ = writeln!(
        s,
        "# V1 {} L/kg, k10 {} k12 {} k21 {} /min, ka_ip {} ka_sc {} /min, F_ip {} F_sc {}, ke0 {} /min, free fraction {}, brain:plasma {}",
        p.v1_l_per_kg,
        p.k10_per_min,
        p.k12_per_min,
        p.k21_per_min,
        opt(p.ka_ip_per_min),
        opt(p.ka_sc_per_min),
        p.bioavailability_ip,
        p.bioavailability_sc,
        p.ke0_per_min,
        p.free_fraction,
        p.brain_plasma_ratio
    );
    let dist = r
        .distribution_half_life_min
        .map_or(String::new(), |d| format!("distribution t1/2 {d:.1} min, "));
    let _ = writeln!(
        s,
        "# clearance {:.1} mL/min/kg, {dist}terminal t1/2 {:.1} min ({:.2} h)",
        r.clearance_ml_per_min_per_kg,
        r.terminal_half_life_min,
        r.terminal_half_life_min / 60.0
    );
    let _ = writeln!(
        s,
        "# peak plasma {:.2} ng/mL ({:.4} uM) at {:.2} min; peak free effect site {:.4} uM at {:.2} min",
        r.peak_plasma_ng_per_ml,
        r.peak_plasma_um,
        r.t_peak_min,
        r.peak_free_effect_site_um,
        r.t_peak_free_effect_site_min
    );
    let _ = writeln!(
        s,
        "{:>10} {:>16} {:>12} {:>20}",
        "t_min", "plasma_ng_per_ml", "plasma_uM", "free_effect_site_uM"
    );
    for row in &r.series {
        let _ = writeln!(
            s,
            "{:>10.3} {:>16.4} {:>12.6} {:>20.6}",
            row.t_min, row.plasma_ng_per_ml, row.plasma_um, row.free_effect_site_um
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expm_of_a_diagonal_and_a_coupled_pair_is_exact() {
        // Diagonal: exp of each entry.
        let mut m = [[0.0; N]; N];
        for (i, row) in m.iter_mut().enumerate() {
            row[i] = -0.3 * (i as f64 + 1.0);
        }
        let e = expm(&m, 17.0);
        for (i, row) in e.iter().enumerate() {
            let want = (-0.3 * (i as f64 + 1.0) * 17.0).exp();
            assert!((row[i] - want).abs() <= 1e-14 + 1e-11 * want, "{i}");
        }
        // x' = -a x + y, y' = -b y: x(t) = y0 (e^-bt - e^-at) / (a - b) for x0 = 0.
        let mut m = [[0.0; N]; N];
        let (a, b) = (0.9, 0.05);
        m[0][0] = -a;
        m[0][1] = 1.0;
        m[1][1] = -b;
        for t in [0.01, 1.0, 30.0, 300.0] {
            let got = expm(&m, t)[0][1];
            let want = ((-b * t).exp() - (-a * t).exp()) / (a - b);
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1e-3), "{t}");
        }
    }

    #[test]
    fn human_disposition_half_lives() {
        let p = PkParams::preset(Species::Human);
        let (alpha, beta) = p.disposition_rates_per_min();
        // Eigenvalues: alpha + beta = k10 + k12 + k21, alpha beta = k10 k21.
        assert!((alpha + beta - 0.0432).abs() < 1e-15);
        assert!((alpha * beta - 0.0109 * 0.0137).abs() < 1e-18);
        assert!((p.terminal_half_life_min() - 182.934).abs() < 1e-3);
        assert!((p.distribution_half_life_min().unwrap() - 17.588).abs() < 1e-3);
        assert!((p.clearance_ml_per_min_per_kg() - 19.075).abs() < 1e-9);
    }

    #[test]
    fn table_interpolation_is_linear_and_flat_outside() {
        let tab = [[0.0, 1.0], [10.0, 3.0], [20.0, 0.0]];
        assert_eq!(interpolate(&tab, -5.0), 1.0);
        assert_eq!(interpolate(&tab, 5.0), 2.0);
        assert_eq!(interpolate(&tab, 10.0), 3.0);
        assert_eq!(interpolate(&tab, 15.0), 1.5);
        assert_eq!(interpolate(&tab, 25.0), 0.0);
    }
}
