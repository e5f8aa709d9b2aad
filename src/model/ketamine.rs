//! Ketamine at the NMDA receptor: the four-state open-channel trapping-block scheme of
//! SCIENCE.md section 3, per receptor pool, integrated exactly by operator splitting.
//! The WGSL twin is `nmda_pool_step` in `shaders/common.wgsl`; both use the same
//! operations in the same order.
//!
//! States (fractions of a pool, C = 1 - O - B - T):
//!
//! ```text
//!   C <-> O      opening a = alpha x, closing b = 1/tau_decay
//!   T <-> B      the same gating while blocked (trapped channels open and close)
//!   O <-> B      block kb = k_on [K] B_Mg(V) (only Mg2+-free open channels),
//!                unblock ku = k_on K_d(V), K_d(V) = K_d(-66) exp(delta (V + 66) / 26.7)
//!   T            leaves only through B (full trapping)
//! ```
//!
//! Each step first relaxes the gating pairs (C,O) and (T,B) exactly for constant a, b,
//! then the block pair (O,B) exactly for constant kb, ku: every sub-step is a convex
//! combination within a pair, so the fractions stay in [0, 1] and keep their sum at any
//! dt and any concentration (no stiffness limit), and the steady-state block is
//! `[K] B_Mg / ([K] B_Mg + K_d)`, i.e. IC50(V) = K_d(V) (1 + [Mg]/K_Mg(V)).

use crate::rng::{exp_f32, one_minus_exp_neg};

/// Thermal voltage scale of the Woodhull model used for K_d(V) (mV), as in
/// SCIENCE.md section 3: exp(delta (V + 66) / 26.7).
pub const WOODHULL_MV: f32 = 26.7;
/// Reference voltage of the tabulated K_d (mV).
pub const KD_REF_MV: f32 = -66.0;

/// Per-pool constants, derived on the host (f64, rounded once).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PoolRates {
    /// alpha * dt: opening per unit transmitter drive per step.
    pub alpha_dt: f32,
    /// dt / tau_decay: closing per step.
    pub beta_dt: f32,
    /// k_on * dt (per µM per step).
    pub kon_dt: f32,
    /// K_d at -66 mV (µM).
    pub kd_ref_um: f32,
    /// delta / 26.7 mV (per mV).
    pub kd_slope_per_mv: f32,
}

/// One pool's state: open, open-blocked, trapped (closed-blocked) fractions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PoolState {
    /// Open, unblocked.
    pub o: f32,
    /// Open, blocked.
    pub b: f32,
    /// Closed, blocked (trapped).
    pub t: f32,
}

/// Advance one pool by one step: drive `x` (this step's transmitter drive), membrane
/// potential `v_mv`, Mg2+ unblocked fraction `mg_free` = B_Mg(V), free ketamine
/// `conc_um`.
pub fn pool_step(
    st: PoolState,
    r: &PoolRates,
    x: f32,
    v_mv: f32,
    mg_free: f32,
    conc_um: f32,
) -> PoolState {
    // Gating, exact for constant rates: each pair relaxes to its equilibrium split,
    // x(dt) = x0 e + total p_open (1 - e). Written as x0 e + total g with
    // g = p_open (1 - e): the same value in a form GPU compilers do not rewrite into a
    // lerp (which would round differently from this twin). Divisions are written as
    // multiplications by a reciprocal, which is what GPU compilers emit for them; 1 - e
    // comes from a series for small arguments (no cancellation).
    let a = r.alpha_dt * x;
    let ab = a + r.beta_dt;
    let e_gate = exp_f32(-ab);
    let g_gate = a * (1.0 / ab) * one_minus_exp_neg(ab);
    let c = 1.0 - st.o - st.b - st.t;
    let unblocked = c + st.o;
    let blocked = st.t + st.b;
    let o1 = st.o * e_gate + unblocked * g_gate;
    let b1 = st.b * e_gate + blocked * g_gate;
    let t1 = blocked - b1;
    // Block of open channels, exact for constant rates, in the same form.
    let kb = r.kon_dt * conc_um * mg_free;
    let ku = r.kon_dt * r.kd_ref_um * exp_f32(r.kd_slope_per_mv * (v_mv - KD_REF_MV));
    let kk = kb + ku;
    let e_block = exp_f32(-kk);
    let g_block = kb * (1.0 / kk) * one_minus_exp_neg(kk);
    let open_all = o1 + b1;
    let b2 = b1 * e_block + open_all * g_block;
    PoolState {
        o: open_all - b2,
        b: b2,
        t: t1,
    }
}

/// Ketamine association rate k_on: 1e7 /M/s = 0.01 /µM/ms (SCIENCE.md section 3,
/// starting value; single-channel data allow up to about 1.5e8 /M/s).
pub const KON_PER_UM_PER_MS: f64 = 0.01;
/// Fraction of the membrane field sensed at the ketamine site (Woodhull delta),
/// 0.8 (SCIENCE.md section 3, starting value).
pub const DELTA: f64 = 0.8;

use crate::scenario::Subunit;

impl Subunit {
    /// Ketamine K_d at -66 mV (µM): the steady-state IC50 in 0 Mg2+ of recombinant
    /// GluN1/GluN2x receptors (Kotermanski & Johnson 2009, J Neurosci 29:2774), where
    /// B_Mg = 1 so IC50 = K_d.
    pub fn ketamine_kd_um(self) -> f64 {
        match self {
            Subunit::N2A => 0.33,
            Subunit::N2B => 0.31,
            Subunit::N2C => 0.51,
            Subunit::N2D => 0.83,
        }
    }

    /// Steady-state IC50 targets at -66 mV (µM) in 0 and 1 mM Mg2+ (Kotermanski &
    /// Johnson 2009, the table of SCIENCE.md section 3).
    pub fn ketamine_ic50_target_um(self) -> (f64, f64) {
        match self {
            Subunit::N2A => (0.33, 5.35),
            Subunit::N2B => (0.31, 5.08),
            Subunit::N2C => (0.51, 1.18),
            Subunit::N2D => (0.83, 2.95),
        }
    }
}

impl PoolRates {
    /// Rates of a pool of `subunit` receptors at time step `dt_ms`, with opening rate
    /// `alpha_per_ms` per unit drive and deactivation `tau_decay_ms`.
    pub fn new(subunit: Subunit, dt_ms: f64, alpha_per_ms: f64, tau_decay_ms: f64) -> PoolRates {
        PoolRates {
            alpha_dt: (alpha_per_ms * dt_ms) as f32,
            beta_dt: (dt_ms / tau_decay_ms) as f32,
            kon_dt: (KON_PER_UM_PER_MS * dt_ms) as f32,
            kd_ref_um: subunit.ketamine_kd_um() as f32,
            kd_slope_per_mv: (DELTA / WOODHULL_MV as f64) as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::mg_block;

    /// Fractions stay in [0, 1] and sum to at most 1 for any dt in 0.05-0.25 ms and
    /// any concentration 0-1000 µM, also with huge drive.
    #[test]
    fn fractions_stay_valid_at_every_dt_and_concentration() {
        for dt in [0.05, 0.1, 0.25] {
            for conc in [0.0f32, 0.1, 1.0, 10.0, 100.0, 1000.0] {
                let r = PoolRates::new(Subunit::N2A, dt, 0.5, 45.0);
                let mut st = PoolState::default();
                for step in 0..20_000u32 {
                    let x = if step % 500 < 20 { 50.0 } else { 0.0 };
                    let v = -80.0 + (step % 97) as f32;
                    st = pool_step(st, &r, x, v, mg_block(v, 1.0 / 3.57), conc);
                    let c = 1.0 - st.o - st.b - st.t;
                    for f in [st.o, st.b, st.t] {
                        assert!(
                            (-1e-6..=1.0 + 1e-6).contains(&f),
                            "dt {dt} conc {conc}: {st:?}"
                        );
                    }
                    assert!(c >= -1e-5, "dt {dt} conc {conc}: C = {c}");
                }
            }
        }
    }
}
