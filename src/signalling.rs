//! Host side of the slow signalling state (SCIENCE.md section 7, docs/signalling.md):
//! at the end of every readout interval the population's local AMPA activation is
//! measured on the device (`signal_sum`), and the per-neuron slow state is advanced
//! from the previous readout to this one (`slow_update`), with the activation
//! interpolated linearly between the two readouts. The first readout captures the
//! baseline. The host only turns the scenario into [`SlowParams`] and the population
//! sums into means; every per-neuron operation runs in the kernels (or their CPU twins).

use serde::Serialize;

use crate::backend::Backend;
use crate::error::Result;
use crate::model::layout::{
    SlowParams, SlowPop, SIG_SCALE, SLOW_SCALE, SLOW_SIGNAL, SLOW_STATE, SLOW_SUMS_PER_POP,
};
use crate::model::Network;
use crate::scenario::{Interventions, Signalling};

/// Linear pieces of the activation across one gap between readouts.
pub const GAP_PIECES: usize = 16;

/// One population's slow state after a readout (population means).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SlowReadout {
    /// Local AMPA activation over the readout interval (nS/s per neuron: the
    /// recurrent AMPA conductance it received per second, per synapse, i.e. as at
    /// healthy synapse density).
    pub activation_ns_per_s: f64,
    /// Activation relative to the adapted reference (1 at baseline).
    pub activation_rel: f64,
    /// BDNF (drive units; `m_rest` at baseline).
    pub bdnf: f64,
    /// mTOR activity (drive units; `m_rest` at baseline).
    pub mtor: f64,
    /// Synaptic protein relative to basal (1 at baseline).
    pub protein: f64,
    /// Synapse density relative to healthy.
    pub density: f64,
    /// Resting BDNF and mTOR level D(1), to express them relative to baseline.
    pub m_rest: f64,
}

/// The slow state of one population over a run's windows in brief ([`slow_brief`]).
#[derive(Debug, Clone, Copy)]
pub struct SlowBrief<'a> {
    /// The window with the highest mTOR (the first of equal ones).
    pub peak: &'a crate::protocol::Window,
    /// That mTOR, relative to its resting level.
    pub peak_mtor_rel: f64,
    /// The last window with a readout.
    pub last: &'a crate::protocol::Window,
    /// Its readout.
    pub last_readout: SlowReadout,
}

/// [`SlowBrief`] of population `p`; None where it carries no slow state.
pub fn slow_brief(windows: &[crate::protocol::Window], p: usize) -> Option<SlowBrief<'_>> {
    let mut with = windows
        .iter()
        .filter_map(|w| w.pops.get(p).and_then(|x| x.slow).map(|s| (w, s)));
    let (w0, s0) = with.next()?;
    let mut b = SlowBrief {
        peak: w0,
        peak_mtor_rel: s0.mtor / s0.m_rest,
        last: w0,
        last_readout: s0,
    };
    for (w, s) in with {
        let m = s.mtor / s.m_rest;
        if m > b.peak_mtor_rel {
            (b.peak, b.peak_mtor_rel) = (w, m);
        }
        (b.last, b.last_readout) = (w, s);
    }
    Some(b)
}

/// Drives the slow state of one network through a run.
pub struct SlowDriver {
    cfg: Signalling,
    iv: Interventions,
    /// Protocol time (min) from which the interventions act.
    iv_min: Option<f64>,
    on: Vec<bool>,
    sizes: Vec<u32>,
    s_set: f32,
    /// Activation at the previous readout (nS/s per neuron), per population.
    a_prev: Vec<f32>,
    /// Protocol time of the previous readout (min); None before the baseline.
    t_prev_min: Option<f64>,
}

fn f32_of(x: f64) -> f32 {
    x as f32
}

impl SlowDriver {
    /// The driver of `net`, or None without `[signalling]`.
    pub fn new(net: &Network) -> Option<SlowDriver> {
        let cfg = net.scenario.signalling.clone()?;
        let on: Vec<bool> = net.pops().iter().map(|p| p.sig_on != 0).collect();
        // On the protocol clock, also inside a gap (the network's own block starts at
        // the first simulated step after it, `Network::intervention_step`).
        let iv = &net.scenario.interventions;
        let iv_min = iv.any().then(|| {
            iv.time_min
                .unwrap_or_else(|| net.scenario.baseline_end_min())
        });
        Some(SlowDriver {
            s_set: f32_of(cfg.set_point()),
            cfg,
            iv: net.scenario.interventions.clone(),
            iv_min,
            sizes: net.pops().iter().map(|p| p.size).collect(),
            a_prev: vec![0.0; on.len()],
            on,
            t_prev_min: None,
        })
    }

    /// K^n and D(1) = 1 / (1 + K^n) in f32, as the kernel computes D.
    fn hill_consts(&self) -> (f32, f32) {
        let k_pow = f32_of(self.cfg.hill_k.powi(self.cfg.hill_n as i32));
        (k_pow, 1.0f32 / (1.0f32 + k_pow))
    }

    /// Each population's entry of a `slow_update` call: `a` the (start, end)
    /// activation per population over the span.
    pub fn pops(&self, a: &[(f32, f32)]) -> Vec<SlowPop> {
        (0..self.on.len())
            .map(|p| {
                let (a_start, a_end) = a.get(p).copied().unwrap_or((0.0, 0.0));
                SlowPop {
                    on: u32::from(self.on[p]),
                    a_start,
                    a_end,
                    s_set: self.s_set,
                    ..SlowPop::default()
                }
            })
            .collect()
    }

    /// The kernel constants for one call; `dt_h` the span to advance (0 to capture or
    /// measure), `blocked` whether the interventions act over the span.
    pub fn params(&self, mode: u32, dt_h: f64, blocked: bool) -> SlowParams {
        let c = &self.cfg;
        let n_sub = ((dt_h * 3600.0 / c.step_s).ceil() as u32).max(1);
        let h_h = dt_h / n_sub as f64;
        let rate = |tau_h: f64| f32_of(-(-h_h / tau_h).exp_m1());
        let (k_pow, m_rest) = self.hill_consts();
        let gain = |b: f64| if blocked { f32_of(1.0 - b) } else { 1.0 };
        SlowParams {
            mode,
            n_sub,
            hill_n: c.hill_n as u32,
            _pad0: 0,
            inv_interval_s: 0.0,
            adapt_rate: rate(c.tau_adapt_min / 60.0),
            bdnf_rate: rate(c.tau_bdnf_min / 60.0),
            mtor_rate: rate(c.tau_mtor_min / 60.0),
            protein_rate: rate(c.tau_protein_h),
            hill_k_pow: k_pow,
            m_rest,
            mtor_gain: gain(self.iv.mtor_block),
            bdnf_gain: gain(self.iv.bdnf_block),
            growth_per_h: f32_of(c.growth_per_h),
            threshold: f32_of(c.growth_threshold),
            max_density: f32_of(c.max_density),
            loss_per_h: f32_of(1.0 / c.tau_loss_h),
            h_hours: f32_of(h_h),
            _pad1: 0.0,
            _pad2: 0.0,
        }
    }

    /// Discard what the accumulators hold (call where a readout interval starts).
    pub fn start_interval(&mut self, backend: &mut dyn Backend) -> Result<()> {
        let p = self.params(0, 0.0, false);
        backend.signal_sum(&p)?;
        Ok(())
    }

    /// End of a readout interval `interval_s` long, ending at protocol time `t_min`:
    /// measure the activation, then capture the baseline (first call) or advance the
    /// slow state from the previous readout. Returns one entry per population (None
    /// where it carries no slow state).
    ///
    /// The activation over the span since the previous readout: the measured value
    /// over the readout interval itself; across the gap before it (multiscale), the
    /// previous and this readout's values joined along the free concentration `conc`
    /// (protocol min -> µM), `A(t) = A_prev + (A_now - A_prev) w(t)` with
    /// `w = (c(t) - c_prev) / (c_now - c_prev)` clamped to [0, 1], so that the
    /// activation moves when the drug does (a dose inside a gap moves it at the dose,
    /// not at the gap's start); linearly in time where the concentration does not
    /// change across the gap. [`GAP_PIECES`] linear pieces per gap.
    pub fn finish_interval(
        &mut self,
        backend: &mut dyn Backend,
        interval_s: f64,
        t_min: f64,
        conc: &dyn Fn(f64) -> f64,
    ) -> Result<Vec<Option<SlowReadout>>> {
        let mut p = self.params(0, 0.0, false);
        p.inv_interval_s = f32_of(1.0 / interval_s);
        let sig = backend.signal_sum(&p)?;
        let a_now: Vec<f32> = (0..self.on.len())
            .map(|k| {
                let sum = sig[k * SLOW_SUMS_PER_POP + SLOW_SIGNAL];
                f32_of(sum as f64 / SIG_SCALE as f64 / self.sizes[k].max(1) as f64)
            })
            .collect();
        let sums = match self.t_prev_min {
            None => {
                let a: Vec<(f32, f32)> = a_now.iter().map(|&x| (x, x)).collect();
                backend.slow_update(&self.params(1, 0.0, false), &self.pops(&a))?
            }
            Some(t0) => {
                let t_w = (t_min - interval_s / 60.0).max(t0);
                let (c0, c1) = (conc(t0), conc(t_w));
                let by_conc = (c1 - c0).abs() > 1e-6 * c0.abs().max(c1.abs()).max(1e-3);
                // Weight of A_now at time t.
                let weight = |t: f64| -> f64 {
                    if t >= t_w {
                        1.0
                    } else if by_conc {
                        ((conc(t) - c0) / (c1 - c0)).clamp(0.0, 1.0)
                    } else {
                        ((t - t0) / (t_w - t0)).clamp(0.0, 1.0)
                    }
                };
                let mut cuts: Vec<f64> = if t_w > t0 {
                    (0..=GAP_PIECES)
                        .map(|k| t0 + (t_w - t0) * k as f64 / GAP_PIECES as f64)
                        .collect()
                } else {
                    vec![t0]
                };
                cuts.push(t_min);
                if let Some(ti) = self.iv_min {
                    if ti > t0 && ti < t_min {
                        cuts.push(ti);
                        cuts.sort_by(f64::total_cmp);
                    }
                }
                let at = |t: f64, w_end_side: bool| -> Vec<f32> {
                    // Inside the readout interval the measured value holds.
                    let w = if w_end_side && t > t_w - 1e-12 {
                        1.0
                    } else {
                        weight(t)
                    };
                    let w = f32_of(w);
                    self.a_prev
                        .iter()
                        .zip(&a_now)
                        .map(|(&a, &b)| a + (b - a) * w)
                        .collect()
                };
                let mut sums = Vec::new();
                for w in cuts.windows(2) {
                    if w[1] - w[0] <= 0.0 {
                        continue;
                    }
                    // A piece that starts at the readout interval's start uses the
                    // measured value throughout.
                    let inside = w[0] >= t_w - 1e-12;
                    let (from, to) = (at(w[0], inside), at(w[1], true));
                    let a: Vec<(f32, f32)> = from.into_iter().zip(to).collect();
                    let blocked = self.iv_min.is_some_and(|ti| w[0] >= ti - 1e-12);
                    let prm = self.params(0, (w[1] - w[0]) / 60.0, blocked);
                    sums = backend.slow_update(&prm, &self.pops(&a))?;
                }
                sums
            }
        };
        self.t_prev_min = Some(t_min);
        self.a_prev.clone_from(&a_now);
        let (_, m_rest) = self.hill_consts();
        Ok((0..self.on.len())
            .map(|k| {
                self.on[k].then(|| {
                    let n = self.sizes[k].max(1) as f64;
                    let at = |j: usize, scale: f32| {
                        sums[k * SLOW_SUMS_PER_POP + SLOW_STATE + j] as f64 / scale as f64 / n
                    };
                    let reference = at(0, SIG_SCALE);
                    SlowReadout {
                        activation_ns_per_s: a_now[k] as f64,
                        activation_rel: if reference > 0.0 {
                            a_now[k] as f64 / reference
                        } else {
                            1.0
                        },
                        bdnf: at(1, SLOW_SCALE),
                        mtor: at(2, SLOW_SCALE),
                        protein: at(3, SLOW_SCALE),
                        density: at(4, SLOW_SCALE),
                        m_rest: m_rest as f64,
                    }
                })
            })
            .collect())
    }
}
