//! In-silico voltage clamp of one NMDA receptor pool under ketamine, as the
//! electrophysiology papers do it (Kotermanski & Johnson 2009, J Neurosci 29:2774;
//! Orser, Pennefather & MacDonald 1997, Anesthesiology 86:903).
//!
//! The pool is integrated with the simulator's own kinetics, unchanged:
//! [`pool_step`] of `model::ketamine` (four-state open-channel trapping block,
//! SCIENCE.md section 3) with [`PoolRates::new`], at the clamped voltage, with the Mg2+
//! unblocked fraction `B_Mg(V)` of [`mg_block`]. The current is `I ∝ g O B_Mg(V)`, so at
//! a fixed voltage the fractional block of the current is `1 - O_drug / O_control`.
//!
//! Protocols (see `docs/clamp.md`):
//! - steady-state dose response under saturating agonist, with a Hill fit
//!   ([`Clamp::dose_response`], [`fit_hill`]);
//! - onset of block after a concentration step in agonist ([`Clamp::onset`]) and offset
//!   after washout in agonist ([`Clamp::offset`]), single-exponential fits
//!   ([`fit_exponential`]);
//! - trapping: block in agonist + drug, agonist off (drug on) until the channels close,
//!   drug washout without agonist, agonist back without drug ([`Clamp::trapping`]).
//!
//! `ketasim clamp` is [`ClampArgs`] + [`clamp_command`].

use std::fmt::Write as _;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::model::ketamine::{pool_step, PoolRates, PoolState, DELTA, KD_REF_MV, WOODHULL_MV};
use crate::model::{mg_block, MG_SLOPE_PER_MV};
use crate::scenario::Subunit;

/// Opening rate per unit transmitter drive, 0.5 /ms (Brunel & Wang 2001, J Comput
/// Neurosci 11:63; the simulator's `alpha_per_ms` default).
pub const DEFAULT_ALPHA_PER_MS: f64 = 0.5;
/// Transmitter drive `x` used as "saturating agonist": the opening rate is then
/// `alpha x = 5 /ms`, 225 times the fastest closing rate (GluN2A, 1/45 ms), so the open
/// probability is `alpha x / (alpha x + 1/tau_decay)` = 0.9956 (2A), 0.99943 (2B),
/// 0.99933 (2C), 0.99994 (2D): the pool's maximum of 1 to within 0.5%.
pub const SATURATING_X: f64 = 10.0;
/// Default holding potential (mV): the -66 mV of the Kotermanski & Johnson 2009 IC50s.
pub const DEFAULT_VOLTAGE_MV: f64 = -66.0;
/// Default extracellular Mg2+ (mM), physiological.
pub const DEFAULT_MG_MM: f64 = 1.0;
/// Default time step (ms).
pub const DEFAULT_DT_MS: f64 = 0.1;
/// Default drug washout without agonist in the trapping protocol (ms).
pub const DEFAULT_WASHOUT_MS: f64 = 60_000.0;
/// Agonist-off period of the trapping protocol before the drug washout, in units of
/// the subunit's deactivation time constant (the channels close to within e^-10).
pub const CLOSE_TAU_DECAYS: f64 = 10.0;
/// Simulated time after which a steady-state search gives up (ms).
pub const SETTLE_MAX_MS: f64 = 600_000.0;
/// A steady state is accepted when the remaining change of `O` and of `B + T`,
/// extrapolated from two equal windows, is below this (fraction of the pool).
pub const SETTLE_TOL: f64 = 1e-6;
/// Change per window at which the f32 state is taken as still (rounding level).
pub const SETTLE_FLOOR: f64 = 1e-7;

/// Allowed ranges of the inputs, with the flag each one is reported under.
const VOLTAGE_RANGE_MV: (f64, f64) = (-150.0, 100.0);
const MG_RANGE_MM: (f64, f64) = (0.0, 100.0);
const DT_RANGE_MS: (f64, f64) = (0.01, 1.0);
const CONC_MAX_UM: f64 = 1e6;
const WASHOUT_MAX_MS: f64 = 600_000.0;
/// Settling windows start at this length (ms) and double up to the maximum.
const WINDOW_START_MS: f64 = 10.0;
const WINDOW_MAX_MS: f64 = 2_000.0;
/// Traces keep at most this many samples (older ones are thinned by 2 when full).
const TRACE_CAP: usize = 1 << 20;
/// Exponential fits use at most this many (evenly spaced) samples.
const FIT_POINTS: usize = 4096;

/// The default concentration list: three per decade, 0.01 to 1000 µM (16 values).
pub fn default_concentrations_um() -> Vec<f64> {
    (-6..=9).map(|k| 10f64.powf(k as f64 / 3.0)).collect()
}

/// Parse a subunit as the CLI and the scenario files spell it: `2A`..`2D` (also
/// `GluN2A`, `N2A`, any case).
pub fn parse_subunit(s: &str) -> std::result::Result<Subunit, String> {
    let u = s.trim().to_ascii_uppercase();
    let u = u
        .strip_prefix("GLUN")
        .or_else(|| u.strip_prefix('N'))
        .unwrap_or(&u);
    match u {
        "2A" => Ok(Subunit::N2A),
        "2B" => Ok(Subunit::N2B),
        "2C" => Ok(Subunit::N2C),
        "2D" => Ok(Subunit::N2D),
        _ => Err(format!("unknown subunit '{s}': use 2A, 2B, 2C or 2D")),
    }
}

/// Blocked fraction of the pool, `B + T`.
pub fn blocked(st: &PoolState) -> f64 {
    st.b as f64 + st.t as f64
}

/// One receptor pool under voltage clamp: subunit, holding potential, Mg2+, time step
/// and gating constants. Build it with [`Clamp::new`] (which checks the ranges).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Clamp {
    /// GluN2 subunit: sets `tau_decay_ms`, `K0_Mg` and the ketamine `K_d`.
    pub subunit: Subunit,
    /// Clamped membrane potential (mV).
    pub voltage_mv: f64,
    /// Extracellular Mg2+ (mM).
    pub mg_mm: f64,
    /// Integration step (ms).
    pub dt_ms: f64,
    /// Opening rate per unit drive (1/ms).
    pub alpha_per_ms: f64,
    /// Deactivation time constant (ms), from the subunit.
    pub tau_decay_ms: f64,
    /// Transmitter drive while agonist is applied (default [`SATURATING_X`]).
    pub agonist_x: f64,
}

/// A steady state found by [`Clamp::settle`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settled {
    /// The state at convergence.
    pub state: PoolState,
    /// Simulated time it took (ms).
    pub t_ms: f64,
}

/// A recorded time course: time from the start of the segment, open fraction `O` and
/// blocked fraction `B + T`, every step (thinned by powers of 2 for long records).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// Time since the segment started (ms), first sample at 0 (the initial state).
    pub t_ms: Vec<f64>,
    /// Open, unblocked fraction `O`.
    pub open: Vec<f64>,
    /// Blocked fraction `B + T`.
    pub blocked: Vec<f64>,
}

impl Trace {
    fn push(&mut self, t_ms: f64, st: &PoolState) {
        self.t_ms.push(t_ms);
        self.open.push(st.o as f64);
        self.blocked.push(blocked(st));
    }

    /// Keep every other sample (the first one stays).
    fn thin(&mut self) {
        for v in [&mut self.t_ms, &mut self.open, &mut self.blocked] {
            let kept: Vec<f64> = v.iter().copied().step_by(2).collect();
            *v = kept;
        }
    }
}

/// Steady-state block at one concentration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BlockPoint {
    /// Ketamine concentration (µM).
    pub conc_um: f64,
    /// Fractional block of the current, `1 - I_drug / I_control` = `1 - O_drug / O_control`.
    pub fraction: f64,
    /// Blocked fraction of the receptors, `B + T`.
    pub blocked: f64,
    /// Open, unblocked fraction `O` with drug.
    pub open: f64,
    /// Simulated time to steady state from the drug-free steady state (ms).
    pub settle_ms: f64,
}

/// Least-squares Hill fit `block = 1 / (1 + (IC50 / c)^h)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HillFit {
    /// Concentration of half block (µM).
    pub ic50_um: f64,
    /// Hill coefficient.
    pub hill: f64,
    /// Root-mean-square residual of the fit (fraction).
    pub rms: f64,
}

impl HillFit {
    /// The fitted block at `conc_um`.
    pub fn block(&self, conc_um: f64) -> f64 {
        hill_model(self.ic50_um.ln(), self.hill, conc_um.ln())
    }
}

/// Steady-state dose response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoseResponse {
    /// Drug-free open fraction under the agonist.
    pub open_control: f64,
    /// One point per concentration, in the order given.
    pub points: Vec<BlockPoint>,
    /// Hill fit to the points.
    pub fit: HillFit,
}

/// Least-squares single exponential `y(t) = y_inf + amplitude * exp(-t / tau)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ExpFit {
    /// Time constant (ms).
    pub tau_ms: f64,
    /// Asymptote.
    pub y_inf: f64,
    /// `y(0) - y_inf`.
    pub amplitude: f64,
    /// Root-mean-square residual.
    pub rms: f64,
}

/// An onset or offset experiment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimeCourse {
    /// Concentration stepped to (onset) or washed out (offset) (µM).
    pub conc_um: f64,
    /// Fitted time constant of the fractional block of the current (ms).
    pub tau_ms: f64,
    /// Fractional block of the current at the start of the segment.
    pub block_start: f64,
    /// Fractional block at the end (steady state).
    pub block_end: f64,
    /// The reduced-model time constant `1 / (P_open (k_on [K] B_Mg + k_off))` that holds
    /// when gating is fast compared with block (ms), for comparison.
    pub reduced_tau_ms: f64,
    /// Simulated time of the segment (ms).
    pub duration_ms: f64,
    /// The exponential fit.
    pub fit: ExpFit,
}

/// The trapping experiment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trapping {
    /// Drug concentration during the block phase (µM).
    pub conc_um: f64,
    /// Agonist-off period with drug still present (ms).
    pub close_ms: f64,
    /// Drug washout without agonist (ms).
    pub washout_ms: f64,
    /// `B + T` at steady state in agonist + drug.
    pub blocked_steady: f64,
    /// `B + T` when the drug washout starts (channels closed): the pre-washout block.
    pub blocked_pre_washout: f64,
    /// `B + T` when agonist is re-applied, after the washout.
    pub blocked_at_reapply: f64,
    /// Smallest `B + T` seen during the washout.
    pub blocked_min_washout: f64,
    /// `blocked_at_reapply / blocked_pre_washout`: the block still present.
    pub trapped_fraction: f64,
    /// `blocked_at_reapply / blocked_steady`.
    pub trapped_of_steady: f64,
    /// Open fraction left when the washout starts (how closed the channels were).
    pub open_pre_washout: f64,
    /// Time constant of the loss of `B + T` after re-application of agonist without
    /// drug (ms).
    pub recovery_tau_ms: f64,
    /// The recovery fit.
    pub recovery_fit: ExpFit,
}

fn check_range(flag: &str, unit: &str, v: f64, lo: f64, hi: f64) -> Result<()> {
    if !v.is_finite() || v < lo || v > hi {
        bail!("{flag}: must be between {lo} and {hi} {unit}, got {v}");
    }
    Ok(())
}

fn check_conc(flag: &str, c: f64) -> Result<()> {
    if !c.is_finite() || c <= 0.0 || c > CONC_MAX_UM {
        bail!("{flag}: concentrations must be positive and at most {CONC_MAX_UM} µM, got {c}");
    }
    Ok(())
}

impl Clamp {
    /// A clamped pool at saturating agonist ([`SATURATING_X`]) with the default
    /// `alpha` and the subunit's `tau_decay`. Errors name the CLI flag: `--voltage-mv`
    /// (-150 to 100 mV), `--mg-mm` (0 to 100 mM), `--dt-ms` (0.01 to 1 ms).
    pub fn new(subunit: Subunit, voltage_mv: f64, mg_mm: f64, dt_ms: f64) -> Result<Clamp> {
        check_range(
            "--voltage-mv",
            "mV",
            voltage_mv,
            VOLTAGE_RANGE_MV.0,
            VOLTAGE_RANGE_MV.1,
        )?;
        check_range("--mg-mm", "mM", mg_mm, MG_RANGE_MM.0, MG_RANGE_MM.1)?;
        check_range("--dt-ms", "ms", dt_ms, DT_RANGE_MS.0, DT_RANGE_MS.1)?;
        Ok(Clamp {
            subunit,
            voltage_mv,
            mg_mm,
            dt_ms,
            alpha_per_ms: DEFAULT_ALPHA_PER_MS,
            tau_decay_ms: subunit.tau_decay_ms(),
            agonist_x: SATURATING_X,
        })
    }

    /// The same clamp with another agonist drive `x` (>= 0).
    pub fn with_agonist(self, x: f64) -> Clamp {
        Clamp {
            agonist_x: x,
            ..self
        }
    }

    /// The pool's rates, from [`PoolRates::new`].
    pub fn rates(&self) -> PoolRates {
        PoolRates::new(
            self.subunit,
            self.dt_ms,
            self.alpha_per_ms,
            self.tau_decay_ms,
        )
    }

    /// `B_Mg(V)` as the kernels compute it ([`mg_block`], f32).
    pub fn mg_free(&self) -> f32 {
        mg_block(
            self.voltage_mv as f32,
            (self.mg_mm / self.subunit.k0_mg_mM()) as f32,
        )
    }

    /// `B_Mg(V)` in f64, for the closed-form values.
    pub fn mg_free_f64(&self) -> f64 {
        1.0 / (1.0
            + self.mg_mm / self.subunit.k0_mg_mM()
                * (-(MG_SLOPE_PER_MV as f64) * self.voltage_mv).exp())
    }

    /// Drug-free open probability at drive `x`: `alpha x / (alpha x + 1/tau_decay)`.
    pub fn open_probability(&self, x: f64) -> f64 {
        let a = self.alpha_per_ms * x;
        a / (a + 1.0 / self.tau_decay_ms)
    }

    /// The drive `x` that gives drug-free open probability `p` (0 <= p < 1).
    pub fn agonist_for_open_probability(&self, p: f64) -> f64 {
        p / (1.0 - p) / (self.alpha_per_ms * self.tau_decay_ms)
    }

    /// `K_d(V) = K_d(-66) exp(delta (V + 66) / 26.7)` (µM).
    pub fn kd_um(&self) -> f64 {
        self.subunit.ketamine_kd_um()
            * (DELTA * (self.voltage_mv - KD_REF_MV as f64) / WOODHULL_MV as f64).exp()
    }

    /// The closed-form steady-state IC50 of the scheme,
    /// `K_d(V) (1 + [Mg]/K_Mg(V)) = K_d(V) / B_Mg(V)` (µM).
    pub fn analytic_ic50_um(&self) -> f64 {
        self.kd_um() / self.mg_free_f64()
    }

    /// Unblocking rate `k_off = k_on K_d(V)` (1/ms).
    pub fn koff_per_ms(&self) -> f64 {
        crate::model::ketamine::KON_PER_UM_PER_MS * self.kd_um()
    }

    /// Reduced-model relaxation time of the block at concentration `conc_um` and drive
    /// `x`, valid when gating is fast: `1 / (P_open (k_on [K] B_Mg + k_off))` (ms).
    pub fn reduced_tau_ms(&self, x: f64, conc_um: f64) -> f64 {
        let kon = crate::model::ketamine::KON_PER_UM_PER_MS;
        let rate =
            self.open_probability(x) * (kon * conc_um * self.mg_free_f64() + self.koff_per_ms());
        1.0 / rate
    }

    /// Whole steps in `duration_ms` (rounded, at least 0).
    pub fn steps(&self, duration_ms: f64) -> u64 {
        (duration_ms / self.dt_ms).round().max(0.0) as u64
    }

    /// Integrate `duration_ms` at drive `x` and concentration `conc_um`.
    pub fn run(&self, st: PoolState, x: f64, conc_um: f64, duration_ms: f64) -> PoolState {
        let r = self.rates();
        let mg = self.mg_free();
        let (v, x, c) = (self.voltage_mv as f32, x as f32, conc_um as f32);
        let mut st = st;
        for _ in 0..self.steps(duration_ms) {
            st = pool_step(st, &r, x, v, mg, c);
        }
        st
    }

    /// Integrate `duration_ms` and record every step (thinned by 2 whenever the record
    /// reaches 2^20 samples).
    pub fn record(
        &self,
        st: PoolState,
        x: f64,
        conc_um: f64,
        duration_ms: f64,
    ) -> (PoolState, Trace) {
        let mut rec = Recorder::new(&st);
        let st = self.advance(st, x, conc_um, self.steps(duration_ms), &mut rec);
        (st, rec.trace)
    }

    fn advance(
        &self,
        st: PoolState,
        x: f64,
        conc_um: f64,
        n: u64,
        rec: &mut Recorder,
    ) -> PoolState {
        let r = self.rates();
        let mg = self.mg_free();
        let (v, x, c) = (self.voltage_mv as f32, x as f32, conc_um as f32);
        let mut st = st;
        for _ in 0..n {
            st = pool_step(st, &r, x, v, mg, c);
            rec.step(self.dt_ms, &st);
        }
        st
    }

    /// Integrate at constant drive and concentration until steady state.
    ///
    /// Convergence: the pool is run in pairs of equal windows (10 ms, doubling up to
    /// 2 s); from the changes `d1`, `d2` of `O` and of `B + T` over the two windows, the
    /// remaining change of a single exponential is `d2 r / (1 - r)` with `r = d2 / d1`.
    /// Steady state is accepted when that is below [`SETTLE_TOL`] (or `d2` is below
    /// the f32 rounding level [`SETTLE_FLOOR`]) in two consecutive pairs (so a fast
    /// gating transient cannot pass for convergence). Fails after [`SETTLE_MAX_MS`].
    pub fn settle(&self, st: PoolState, x: f64, conc_um: f64) -> Result<Settled> {
        self.settle_inner(st, x, conc_um, &mut Recorder::off())
    }

    /// [`Clamp::settle`], recording the time course (see [`Clamp::record`]).
    pub fn settle_traced(&self, st: PoolState, x: f64, conc_um: f64) -> Result<(Settled, Trace)> {
        let mut rec = Recorder::new(&st);
        let s = self.settle_inner(st, x, conc_um, &mut rec)?;
        Ok((s, rec.trace))
    }

    fn settle_inner(
        &self,
        st: PoolState,
        x: f64,
        conc_um: f64,
        rec: &mut Recorder,
    ) -> Result<Settled> {
        let change = |a: &PoolState, b: &PoolState| {
            ((a.o as f64 - b.o as f64).abs()).max((blocked(a) - blocked(b)).abs())
        };
        let mut st = st;
        let mut t = 0.0;
        let mut window = WINDOW_START_MS;
        let mut calm = 0;
        while t < SETTLE_MAX_MS {
            let n = self.steps(window).max(1);
            let s1 = self.advance(st, x, conc_um, n, rec);
            let s2 = self.advance(s1, x, conc_um, n, rec);
            t += 2.0 * n as f64 * self.dt_ms;
            let (d1, d2) = (change(&st, &s1), change(&s1, &s2));
            st = s2;
            let still = d2 <= SETTLE_FLOOR
                || (d2 < d1 && {
                    let r = d2 / d1;
                    d2 * r / (1.0 - r) < SETTLE_TOL
                });
            calm = if still { calm + 1 } else { 0 };
            if calm >= 2 {
                return Ok(Settled { state: st, t_ms: t });
            }
            window = (window * 2.0).min(WINDOW_MAX_MS);
        }
        bail!(
            "no steady state within {} s of simulated time (subunit {}, {} mV, {} mM Mg2+, {} µM, drive {x})",
            SETTLE_MAX_MS / 1000.0,
            self.subunit.label(),
            self.voltage_mv,
            self.mg_mm,
            conc_um
        )
    }

    /// The drug-free steady state under the agonist (from all channels closed).
    pub fn control_state(&self) -> Result<PoolState> {
        Ok(self
            .settle(PoolState::default(), self.agonist_x, 0.0)?
            .state)
    }

    /// Steady-state block at `conc_um`: drug applied to the drug-free steady state in
    /// agonist, integrated to steady state.
    pub fn steady_block(&self, conc_um: f64) -> Result<BlockPoint> {
        check_conc("--conc-um", conc_um)?;
        let control = self.control_state()?;
        self.block_from(&control, conc_um)
    }

    fn block_from(&self, control: &PoolState, conc_um: f64) -> Result<BlockPoint> {
        let s = self.settle(*control, self.agonist_x, conc_um)?;
        Ok(BlockPoint {
            conc_um,
            fraction: 1.0 - s.state.o as f64 / control.o as f64,
            blocked: blocked(&s.state),
            open: s.state.o as f64,
            settle_ms: s.t_ms,
        })
    }

    /// Steady-state block at each concentration and the Hill fit.
    pub fn dose_response(&self, conc_um: &[f64]) -> Result<DoseResponse> {
        for &c in conc_um {
            check_conc("--conc-um", c)?;
        }
        let control = self.control_state()?;
        if control.o <= 0.0 {
            bail!(
                "no open channels under the agonist (drive {})",
                self.agonist_x
            );
        }
        let points = conc_um
            .iter()
            .map(|&c| self.block_from(&control, c))
            .collect::<Result<Vec<_>>>()?;
        let c: Vec<f64> = points.iter().map(|p| p.conc_um).collect();
        let f: Vec<f64> = points.iter().map(|p| p.fraction).collect();
        let fit = fit_hill(&c, &f)?;
        Ok(DoseResponse {
            open_control: control.o as f64,
            points,
            fit,
        })
    }

    /// Initial rate of block development (fraction of the pool per ms, `d(B + T)/dt`
    /// averaged over `window_ms`) after `conc_um` is applied to the drug-free steady
    /// state at drive `x`. With `x = 0` the start is all channels closed.
    pub fn initial_block_rate(&self, x: f64, conc_um: f64, window_ms: f64) -> Result<f64> {
        let start = if x > 0.0 {
            self.settle(PoolState::default(), x, 0.0)?.state
        } else {
            PoolState::default()
        };
        let n = self.steps(window_ms).max(1);
        let end = self.run(start, x, conc_um, n as f64 * self.dt_ms);
        Ok((blocked(&end) - blocked(&start)) / (n as f64 * self.dt_ms))
    }

    /// Onset of block: from the drug-free steady state in agonist, step to `conc_um`
    /// and fit a single exponential to the fractional block of the current
    /// `1 - O(t) / O_control` until steady state.
    pub fn onset(&self, conc_um: f64) -> Result<TimeCourse> {
        check_conc("--step-conc-um", conc_um)?;
        let control = self.control_state()?;
        let (s, trace) = self.settle_traced(control, self.agonist_x, conc_um)?;
        self.time_course(conc_um, &control, &trace, s.t_ms, conc_um)
    }

    /// Offset of block: from steady-state block at `conc_um` in agonist, wash the drug
    /// out (agonist stays) and fit a single exponential to the fractional block of the
    /// current until steady state.
    pub fn offset(&self, conc_um: f64) -> Result<TimeCourse> {
        check_conc("--step-conc-um", conc_um)?;
        let control = self.control_state()?;
        let blocked_ss = self.settle(control, self.agonist_x, conc_um)?.state;
        let (s, trace) = self.settle_traced(blocked_ss, self.agonist_x, 0.0)?;
        self.time_course(conc_um, &control, &trace, s.t_ms, 0.0)
    }

    fn time_course(
        &self,
        conc_um: f64,
        control: &PoolState,
        trace: &Trace,
        duration_ms: f64,
        conc_during: f64,
    ) -> Result<TimeCourse> {
        let o_ctrl = control.o as f64;
        let y: Vec<f64> = trace.open.iter().map(|o| 1.0 - o / o_ctrl).collect();
        let fit = fit_exponential(&trace.t_ms, &y)?;
        Ok(TimeCourse {
            conc_um,
            tau_ms: fit.tau_ms,
            block_start: y[0],
            block_end: *y.last().unwrap_or(&y[0]),
            reduced_tau_ms: self.reduced_tau_ms(self.agonist_x, conc_during),
            duration_ms,
            fit,
        })
    }

    /// Trapping: steady-state block at `conc_um` in agonist; agonist off with the drug
    /// still present for `close_ms` (channels close); drug washout without agonist for
    /// `washout_ms`; agonist back without drug until steady state. Reports the block
    /// `B + T` at each stage and the time constant of its loss after re-application.
    pub fn trapping(&self, conc_um: f64, close_ms: f64, washout_ms: f64) -> Result<Trapping> {
        check_conc("--step-conc-um", conc_um)?;
        check_range("--washout-ms", "ms", washout_ms, 0.0, WASHOUT_MAX_MS)?;
        check_range("close_ms", "ms", close_ms, 0.0, WASHOUT_MAX_MS)?;
        let control = self.control_state()?;
        let ss = self.settle(control, self.agonist_x, conc_um)?.state;
        let closed = self.run(ss, 0.0, conc_um, close_ms);
        let (washed, wash) = self.record(closed, 0.0, 0.0, washout_ms);
        let min_wash = wash.blocked.iter().copied().fold(f64::INFINITY, f64::min);
        let (_, rec) = self.settle_traced(washed, self.agonist_x, 0.0)?;
        let recovery_fit = fit_exponential(&rec.t_ms, &rec.blocked)?;
        let pre = blocked(&closed);
        let at = blocked(&washed);
        Ok(Trapping {
            conc_um,
            close_ms,
            washout_ms,
            blocked_steady: blocked(&ss),
            blocked_pre_washout: pre,
            blocked_at_reapply: at,
            blocked_min_washout: min_wash,
            trapped_fraction: if pre > 0.0 { at / pre } else { 0.0 },
            trapped_of_steady: if blocked(&ss) > 0.0 {
                at / blocked(&ss)
            } else {
                0.0
            },
            open_pre_washout: closed.o as f64,
            recovery_tau_ms: recovery_fit.tau_ms,
            recovery_fit,
        })
    }

    /// Agonist-off period of the default trapping protocol: [`CLOSE_TAU_DECAYS`]
    /// deactivation time constants (ms).
    pub fn default_close_ms(&self) -> f64 {
        CLOSE_TAU_DECAYS * self.tau_decay_ms
    }
}

/// Collects a [`Trace`] while integrating (or nothing).
struct Recorder {
    on: bool,
    trace: Trace,
    t_ms: f64,
    stride: u64,
    count: u64,
}

impl Recorder {
    fn new(st: &PoolState) -> Recorder {
        let mut trace = Trace::default();
        trace.push(0.0, st);
        Recorder {
            on: true,
            trace,
            t_ms: 0.0,
            stride: 1,
            count: 0,
        }
    }

    fn off() -> Recorder {
        Recorder {
            on: false,
            trace: Trace::default(),
            t_ms: 0.0,
            stride: 1,
            count: 0,
        }
    }

    #[inline]
    fn step(&mut self, dt_ms: f64, st: &PoolState) {
        if !self.on {
            return;
        }
        self.count += 1;
        if self.count.is_multiple_of(self.stride) {
            self.t_ms = self.count as f64 * dt_ms;
            self.trace.push(self.t_ms, st);
            if self.trace.t_ms.len() >= TRACE_CAP {
                self.trace.thin();
                self.stride *= 2;
            }
        }
    }
}

fn hill_model(ln_ic50: f64, h: f64, ln_c: f64) -> f64 {
    1.0 / (1.0 + (h * (ln_ic50 - ln_c)).exp())
}

/// Least-squares fit of `block = 1 / (1 + (IC50 / c)^h)` on log concentration:
/// Levenberg-Marquardt on `(ln IC50, h)`, started from a weighted logit regression.
/// Needs at least two distinct concentrations with block strictly between 0 and 1:
/// repeats of one concentration leave the two parameters undetermined (any Hill
/// slope fits one point), so they count once.
pub fn fit_hill(conc_um: &[f64], fraction: &[f64]) -> Result<HillFit> {
    if conc_um.len() != fraction.len() {
        bail!(
            "fit_hill: {} concentrations but {} fractions",
            conc_um.len(),
            fraction.len()
        );
    }
    let pts: Vec<(f64, f64)> = conc_um
        .iter()
        .zip(fraction)
        .filter(|(c, f)| **c > 0.0 && c.is_finite() && f.is_finite())
        .map(|(c, f)| (c.ln(), *f))
        .collect();
    let mid: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .filter(|(_, f)| *f > 1e-6 && *f < 1.0 - 1e-6)
        .collect();
    let mut distinct: Vec<f64> = mid.iter().map(|&(x, _)| x).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() < 2 {
        bail!(
            "--conc-um: the Hill fit needs at least two distinct concentrations with partial block (0 < block < 1); got {} of {} (give concentrations on both sides of the IC50)",
            distinct.len(),
            pts.len()
        );
    }
    // Start: weighted linear regression of logit(f) = h (ln c - ln IC50).
    let (mut sw, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x, f) in &mid {
        let w = f * (1.0 - f);
        let y = (f / (1.0 - f)).ln();
        sw += w;
        sx += w * x;
        sy += w * y;
        sxx += w * x * x;
        sxy += w * x * y;
    }
    let den = sw * sxx - sx * sx;
    let (mut th, mut h) = if den > 1e-300 {
        let slope = (sw * sxy - sx * sy) / den;
        let icpt = (sy - slope * sx) / sw;
        if slope > 0.0 {
            (-icpt / slope, slope)
        } else {
            (sx / sw, 1.0)
        }
    } else {
        (sx / sw, 1.0)
    };
    h = h.clamp(0.05, 20.0);
    let sse = |th: f64, h: f64| -> f64 {
        pts.iter()
            .map(|&(x, f)| (f - hill_model(th, h, x)).powi(2))
            .sum()
    };
    let mut cur = sse(th, h);
    let mut lambda = 1e-3;
    for _ in 0..500 {
        // Normal equations of the model's Jacobian.
        let (mut a11, mut a12, mut a22, mut g1, mut g2) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(x, f) in &pts {
            let m = hill_model(th, h, x);
            let s = m * (1.0 - m);
            let j1 = -h * s;
            let j2 = -(th - x) * s;
            let r = f - m;
            a11 += j1 * j1;
            a12 += j1 * j2;
            a22 += j2 * j2;
            g1 += j1 * r;
            g2 += j2 * r;
        }
        let mut improved = false;
        for _ in 0..30 {
            let b11 = a11 * (1.0 + lambda) + 1e-300;
            let b22 = a22 * (1.0 + lambda) + 1e-300;
            let det = b11 * b22 - a12 * a12;
            if det <= 0.0 || !det.is_finite() {
                lambda *= 10.0;
                continue;
            }
            let d1 = (g1 * b22 - g2 * a12) / det;
            let d2 = (b11 * g2 - a12 * g1) / det;
            let (nt, nh) = (th + d1, (h + d2).clamp(0.05, 20.0));
            let new = sse(nt, nh);
            if new.is_finite() && new <= cur {
                let small = (nt - th).abs() < 1e-12 && (nh - h).abs() < 1e-12;
                th = nt;
                h = nh;
                let gain = cur - new;
                cur = new;
                lambda = (lambda / 3.0).max(1e-12);
                improved = !small && gain > 1e-18 * (1.0 + cur);
                break;
            }
            lambda *= 4.0;
        }
        if !improved {
            break;
        }
    }
    Ok(HillFit {
        ic50_um: th.exp(),
        hill: h,
        rms: (cur / pts.len() as f64).sqrt(),
    })
}

/// Least-squares fit of `y = y_inf + amplitude exp(-(t - t0) / tau)` (t0 the first
/// time): for each `tau` the amplitudes are linear (solved exactly); `ln tau` is found
/// by a log grid from 1e-5 to 10 times the record's span and golden-section refinement.
/// Long records are subsampled evenly to 4096 points.
pub fn fit_exponential(t_ms: &[f64], y: &[f64]) -> Result<ExpFit> {
    if t_ms.len() != y.len() || t_ms.len() < 4 {
        bail!(
            "fit_exponential: need at least 4 samples of t and y, got {} and {}",
            t_ms.len(),
            y.len()
        );
    }
    let n = t_ms.len();
    let idx: Vec<usize> = if n > FIT_POINTS {
        (0..FIT_POINTS)
            .map(|i| i * (n - 1) / (FIT_POINTS - 1))
            .collect()
    } else {
        (0..n).collect()
    };
    let t0 = t_ms[0];
    let ts: Vec<f64> = idx.iter().map(|&i| t_ms[i] - t0).collect();
    let ys: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
    let span = *ts.last().unwrap_or(&0.0);
    if span <= 0.0 {
        bail!("fit_exponential: the record has no duration");
    }
    let m = ts.len() as f64;
    let sum_y: f64 = ys.iter().sum();
    // Amplitudes and residual for one tau.
    let solve = |tau: f64| -> (f64, f64, f64) {
        let (mut se, mut see, mut sye) = (0.0, 0.0, 0.0);
        for (t, yy) in ts.iter().zip(&ys) {
            let e = (-t / tau).exp();
            se += e;
            see += e * e;
            sye += yy * e;
        }
        let det = m * see - se * se;
        let (c, a) = if det > 1e-12 * m * see.max(1e-300) {
            ((sum_y * see - se * sye) / det, (m * sye - se * sum_y) / det)
        } else {
            (sum_y / m, 0.0)
        };
        let sse: f64 = ts
            .iter()
            .zip(&ys)
            .map(|(t, yy)| (yy - c - a * (-t / tau).exp()).powi(2))
            .sum();
        (c, a, sse)
    };
    let (lo, hi) = ((span * 1e-5).ln(), (span * 10.0).ln());
    const GRID: usize = 120;
    let grid: Vec<f64> = (0..=GRID)
        .map(|k| lo + (hi - lo) * k as f64 / GRID as f64)
        .collect();
    let errs: Vec<f64> = grid.iter().map(|&l| solve(l.exp()).2).collect();
    let best = (0..=GRID)
        .min_by(|&i, &j| errs[i].total_cmp(&errs[j]))
        .unwrap_or(0);
    let (mut a, mut b) = (grid[best.saturating_sub(1)], grid[(best + 1).min(GRID)]);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut x1 = b - g * (b - a);
    let mut x2 = a + g * (b - a);
    let mut f1 = solve(x1.exp()).2;
    let mut f2 = solve(x2.exp()).2;
    for _ in 0..80 {
        if f1 <= f2 {
            b = x2;
            x2 = x1;
            f2 = f1;
            x1 = b - g * (b - a);
            f1 = solve(x1.exp()).2;
        } else {
            a = x1;
            x1 = x2;
            f1 = f2;
            x2 = a + g * (b - a);
            f2 = solve(x2.exp()).2;
        }
    }
    let tau = (0.5 * (a + b)).exp();
    let (c, amp, sse) = solve(tau);
    Ok(ExpFit {
        tau_ms: tau,
        y_inf: c,
        amplitude: amp,
        rms: (sse / m).sqrt(),
    })
}

/// `ketasim clamp`: the in-silico voltage-clamp experiments on one receptor pool.
#[derive(Debug, Clone, clap::Args)]
pub struct ClampArgs {
    /// GluN2 subunit of the receptor pool: 2A, 2B, 2C or 2D.
    #[arg(long, value_parser = parse_subunit)]
    pub subunit: Subunit,
    /// Holding potential (mV), -150 to 100.
    #[arg(long, default_value_t = DEFAULT_VOLTAGE_MV, allow_negative_numbers = true)]
    pub voltage_mv: f64,
    /// Extracellular Mg2+ (mM), 0 to 100.
    #[arg(long, default_value_t = DEFAULT_MG_MM, allow_negative_numbers = true)]
    pub mg_mm: f64,
    /// Ketamine concentrations (µM), comma separated; default: three per decade from
    /// 0.01 to 1000.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub conc_um: Vec<f64>,
    /// Integration step (ms), 0.01 to 1.
    #[arg(long, default_value_t = DEFAULT_DT_MS, allow_negative_numbers = true)]
    pub dt_ms: f64,
    /// Concentration of the onset, offset and trapping protocols (µM); default: the
    /// fitted IC50.
    #[arg(long, allow_negative_numbers = true)]
    pub step_conc_um: Option<f64>,
    /// Drug washout without agonist in the trapping protocol (ms), 0 to 600000.
    #[arg(long, default_value_t = DEFAULT_WASHOUT_MS, allow_negative_numbers = true)]
    pub washout_ms: f64,
    /// Print JSON instead of the text table.
    #[arg(long)]
    pub json: bool,
}

/// Everything `ketasim clamp` measures (its JSON form).
#[derive(Debug, Clone, Serialize)]
pub struct ClampReport {
    /// GluN2 subunit ("2A".."2D").
    pub subunit: Subunit,
    /// Holding potential (mV).
    pub voltage_mv: f64,
    /// Extracellular Mg2+ (mM).
    pub mg_mm: f64,
    /// Time step (ms).
    pub dt_ms: f64,
    /// Opening rate per unit drive (1/ms).
    pub alpha_per_ms: f64,
    /// Deactivation time constant (ms).
    pub tau_decay_ms: f64,
    /// Mg2+ K0 of the subunit (mM).
    pub k0_mg_mm: f64,
    /// `B_Mg(V)` at the holding potential.
    pub mg_unblocked_fraction: f64,
    /// Agonist drive `x` (saturating).
    pub agonist_x: f64,
    /// Drug-free open probability under the agonist (closed form).
    pub open_probability: f64,
    /// Drug-free open fraction reached in the simulation.
    pub open_control: f64,
    /// Fitted IC50 (µM).
    pub ic50_um: f64,
    /// Fitted Hill coefficient.
    pub hill: f64,
    /// RMS residual of the Hill fit.
    pub hill_fit_rms: f64,
    /// Closed-form IC50 of the scheme, `K_d(V) / B_Mg(V)` (µM).
    pub analytic_ic50_um: f64,
    /// Target IC50 at -66 mV in 0 Mg2+ (Kotermanski & Johnson 2009) (µM).
    pub target_ic50_um_0mg: f64,
    /// Target IC50 at -66 mV in 1 mM Mg2+ (µM).
    pub target_ic50_um_1mg: f64,
    /// Steady-state block per concentration.
    pub block: Vec<BlockPoint>,
    /// Concentration of the time-course protocols (µM).
    pub step_conc_um: f64,
    /// Onset time constant of block after the concentration step in agonist (ms).
    pub onset_tau_ms: f64,
    /// Offset time constant after washout in agonist (ms).
    pub offset_tau_ms: f64,
    /// Fraction of the pre-washout block still present when agonist is re-applied.
    pub trapped_fraction: f64,
    /// Time constant of the loss of trapped block after re-application (ms).
    pub recovery_tau_ms: f64,
    /// Onset details.
    pub onset: TimeCourse,
    /// Offset details.
    pub offset: TimeCourse,
    /// Trapping details.
    pub trapping: Trapping,
}

/// Run every protocol for `args` (validated; errors name the flag).
pub fn clamp_report(args: &ClampArgs) -> Result<ClampReport> {
    let clamp = Clamp::new(args.subunit, args.voltage_mv, args.mg_mm, args.dt_ms)?;
    let conc = if args.conc_um.is_empty() {
        default_concentrations_um()
    } else {
        args.conc_um.clone()
    };
    for &c in &conc {
        check_conc("--conc-um", c)?;
    }
    if let Some(c) = args.step_conc_um {
        check_conc("--step-conc-um", c)?;
    }
    check_range("--washout-ms", "ms", args.washout_ms, 0.0, WASHOUT_MAX_MS)?;
    let dr = clamp.dose_response(&conc)?;
    let step = args.step_conc_um.unwrap_or(dr.fit.ic50_um);
    let onset = clamp.onset(step)?;
    let offset = clamp.offset(step)?;
    let trapping = clamp.trapping(step, clamp.default_close_ms(), args.washout_ms)?;
    let (t0, t1) = args.subunit.ketamine_ic50_target_um();
    Ok(ClampReport {
        subunit: args.subunit,
        voltage_mv: clamp.voltage_mv,
        mg_mm: clamp.mg_mm,
        dt_ms: clamp.dt_ms,
        alpha_per_ms: clamp.alpha_per_ms,
        tau_decay_ms: clamp.tau_decay_ms,
        k0_mg_mm: args.subunit.k0_mg_mM(),
        mg_unblocked_fraction: clamp.mg_free() as f64,
        agonist_x: clamp.agonist_x,
        open_probability: clamp.open_probability(clamp.agonist_x),
        open_control: dr.open_control,
        ic50_um: dr.fit.ic50_um,
        hill: dr.fit.hill,
        hill_fit_rms: dr.fit.rms,
        analytic_ic50_um: clamp.analytic_ic50_um(),
        target_ic50_um_0mg: t0,
        target_ic50_um_1mg: t1,
        block: dr.points,
        step_conc_um: step,
        onset_tau_ms: onset.tau_ms,
        offset_tau_ms: offset.tau_ms,
        trapped_fraction: trapping.trapped_fraction,
        recovery_tau_ms: trapping.recovery_tau_ms,
        onset,
        offset,
        trapping,
    })
}

/// `ketasim clamp`: run the protocols and return the text table, or JSON with
/// `--json`.
pub fn clamp_command(args: &ClampArgs) -> anyhow::Result<String> {
    let r = clamp_report(args)?;
    if args.json {
        return Ok(serde_json::to_string_pretty(&r)? + "\n");
    }
    Ok(format_report(&r))
}

fn format_report(r: &ClampReport) -> String {
    let mut s = String::new();
    let fit = HillFit {
        ic50_um: r.ic50_um,
        hill: r.hill,
        rms: r.hill_fit_rms,
    };
    let _ = writeln!(
        s,
        "voltage clamp: GluN1/GluN{} at {} mV, {} mM Mg2+ (B_Mg {:.4}), dt {} ms",
        r.subunit.label(),
        r.voltage_mv,
        r.mg_mm,
        r.mg_unblocked_fraction,
        r.dt_ms
    );
    let _ = writeln!(
        s,
        "saturating agonist: x = {} (alpha x = {} /ms, tau_decay {} ms), P_open {:.5}",
        r.agonist_x,
        r.alpha_per_ms * r.agonist_x,
        r.tau_decay_ms,
        r.open_probability
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "steady-state block (1 - I_drug / I_control):");
    let _ = writeln!(
        s,
        "{:>12}  {:>9}  {:>9}  {:>10}",
        "conc (µM)", "block", "Hill fit", "settle (s)"
    );
    for p in &r.block {
        let _ = writeln!(
            s,
            "{:>12}  {:>9.5}  {:>9.5}  {:>10.2}",
            format_sig(p.conc_um),
            p.fraction,
            fit.block(p.conc_um),
            p.settle_ms / 1000.0
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "IC50 {} µM, Hill {:.3} (fit rms {:.1e}); closed form K_d(V)/B_Mg(V) = {} µM",
        format_sig(r.ic50_um),
        r.hill,
        r.hill_fit_rms,
        format_sig(r.analytic_ic50_um)
    );
    let _ = writeln!(
        s,
        "target at -66 mV (Kotermanski & Johnson 2009): {} µM in 0 Mg2+, {} µM in 1 mM Mg2+",
        r.target_ic50_um_0mg, r.target_ic50_um_1mg
    );
    let _ = writeln!(
        s,
        "onset  ({} µM step in agonist): tau {:.1} ms (reduced model {:.1} ms), block {:.3} -> {:.3}",
        format_sig(r.step_conc_um),
        r.onset_tau_ms,
        r.onset.reduced_tau_ms,
        tidy(r.onset.block_start),
        tidy(r.onset.block_end)
    );
    let _ = writeln!(
        s,
        "offset (washout in agonist):   tau {:.1} ms (reduced model {:.1} ms), block {:.3} -> {:.3}",
        r.offset_tau_ms,
        r.offset.reduced_tau_ms,
        tidy(r.offset.block_start),
        tidy(r.offset.block_end)
    );
    let t = &r.trapping;
    let _ = writeln!(
        s,
        "trapping: block B+T {:.4} in agonist + drug; agonist off {} s (drug on) -> {:.4}; \
         washout {} s without agonist -> {:.4} at re-application",
        t.blocked_steady,
        t.close_ms / 1000.0,
        t.blocked_pre_washout,
        t.washout_ms / 1000.0,
        t.blocked_at_reapply
    );
    let _ = writeln!(
        s,
        "trapped fraction {:.4} of the pre-washout block; recovery after re-application tau {:.1} ms",
        r.trapped_fraction, r.recovery_tau_ms
    );
    s
}

/// A fraction for a 3-decimal display: rounding-level values (|v| < 5e-4) as 0, so
/// that no "-0.000" appears.
fn tidy(v: f64) -> f64 {
    if v.abs() < 5e-4 {
        0.0
    } else {
        v
    }
}

/// Four significant digits, without trailing zeros.
fn format_sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
