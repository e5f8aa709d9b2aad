//! Protocols over minutes to hours (SCIENCE.md section 8): the multiscale bridge of
//! the ketamine block across the gaps between network windows, and the per-window
//! readouts that make `timecourse.csv` (both modes).

use serde::Serialize;

use crate::model::ketamine::KD_REF_MV;
use crate::model::limits::{MAX_NMDA_POOLS, STATS_PER_POP};
use crate::model::{mg_block, Network, NeuronState};
use crate::stats::{
    band_power, bin_spike_counts, lfp_proxy, mean_cv, spike_count_synchrony, welch_psd, Psd,
    GAMMA_BAND_HZ,
};

/// Bin width for the spike-count synchrony chi (ms): a few ms resolves locking to the
/// gamma cycle (12-33 ms at 30-80 Hz); Golomb 2007 (Scholarpedia 2:1347).
pub const SYNCHRONY_BIN_MS: f64 = 5.0;
/// Least spikes a neuron needs in a window to enter the mean CV of ISI.
pub const CV_MIN_SPIKES: usize = 3;
/// Fewest LFP-proxy samples a window's spectrum is computed from (two Welch segments
/// of the shortest length, 8 samples); fewer give no spectrum (NaN gamma power).
pub const MIN_SPECTRUM_SAMPLES: usize = 16;
/// Welch segment length for the LFP-proxy spectrum (samples): 256 samples at the
/// default 1 ms sampling give 3.9 Hz resolution, 13 bins in the gamma band.
pub const WELCH_SEGMENT: usize = 256;

/// What the bridge did to one population's NMDA pool across one gap.
#[derive(Debug, Clone, Serialize)]
pub struct BridgeEntry {
    /// Population.
    pub population: String,
    /// Pool index.
    pub pool: usize,
    /// Mean fraction of channels with an open gate (O + B), at the end of the window
    /// before the gap.
    pub gate_open: f64,
    /// Mean blocked fraction (B + T) at the end of the window before the gap.
    pub blocked_before: f64,
    /// Mean blocked fraction after the gap (what the next window starts from).
    pub blocked_after: f64,
    /// Relaxation time of the block at the end of the gap (s):
    /// 1 / (q (k_on c <B_Mg> + <k_off>)).
    pub relax_time_s: f64,
}

/// Advance the ketamine block of every NMDA pool across a gap between windows, from
/// protocol time `t_from_min` to `t_to_min`, with coarse steps of at most `step_s`.
///
/// Mean-field model per population and pool, with the gating frozen at its state at
/// the end of the previous window: channels open their gate with probability q
/// whether blocked or not (the 4-state trapping scheme, docs/clamp.md), and block and
/// unblock only while open, so the blocked fraction b = B + T obeys
///
///   db/dt = q [k_on c <B_Mg(V)> (1 - b) - <k_off(V)> b],
///   k_off(V) = k_on K_d(-66 mV) exp(delta (V + 66) / 26.7 mV)
///
/// (the rates of `model::ketamine::pool_step`, averaged over the population's
/// membrane potentials), solved exactly over each coarse step with c, the free
/// effect-site concentration, at the step's midpoint. Each neuron's blocked fraction
/// is then shifted by the population's change (clamped to [0, 1]), keeping its
/// fractions of open gates among blocked and unblocked channels.
///
/// Returns the new pools and a report per population and pool. `state` must be the
/// network's state at the end of the previous window.
pub fn bridge_block(
    net: &Network,
    state: &NeuronState,
    t_from_min: f64,
    t_to_min: f64,
    step_s: f64,
) -> (Vec<BridgeEntry>, [Vec<[f32; 4]>; MAX_NMDA_POOLS]) {
    let mut pools = state.pools.clone();
    let mut report = Vec::new();
    let Some(pk) = &net.pk else {
        return (report, pools);
    };
    let dt = net.scenario.dt_ms;
    let gap_ms = (t_to_min - t_from_min) * 60_000.0;
    for (p, pp) in net.pops().iter().enumerate() {
        let range = pp.offset as usize..(pp.offset + pp.size) as usize;
        for (k, pl) in pp.pools.iter().enumerate().take(pp.n_pools as usize) {
            let kon = pl.kon_dt as f64 / dt; // per µM per ms
            let (mut q, mut b0, mut kb, mut ku) = (0.0, 0.0, 0.0, 0.0);
            for i in range.clone() {
                let [o, bo, t, _] = state.pools[k][i];
                let v = state.v[i];
                q += (o + bo) as f64;
                b0 += (bo + t) as f64;
                kb += kon * mg_block(v, pl.mg_over_k0) as f64;
                ku += kon
                    * pl.kd_ref_um as f64
                    * (pl.kd_slope_per_mv as f64 * (v as f64 - KD_REF_MV as f64)).exp();
            }
            let n = pp.size.max(1) as f64;
            let (q, b_old, kb, ku) = (q / n, b0 / n, kb / n, ku / n);
            let mut b = b_old;
            let mut rate = q * ku;
            if gap_ms > 0.0 {
                let n_steps = (gap_ms / (step_s * 1000.0)).ceil().max(1.0) as u64;
                let h_ms = gap_ms / n_steps as f64;
                for s in 0..n_steps {
                    let mid = t_from_min + (s as f64 + 0.5) * h_ms / 60_000.0;
                    let c = pk.free_brain_conc_um(mid).max(0.0);
                    let on = kb * c;
                    rate = q * (on + ku);
                    let b_inf = if on + ku > 0.0 { on / (on + ku) } else { b };
                    b = b_inf + (b - b_inf) * (-rate * h_ms).exp();
                }
            }
            let shift = b - b_old;
            for i in range.clone() {
                let [o, bo, t, _] = state.pools[k][i];
                let (o, bo, t) = (o as f64, bo as f64, t as f64);
                let bi = bo + t;
                let ui = 1.0 - bi;
                let open_u = if ui > 1e-9 { o / ui } else { q };
                let open_b = if bi > 1e-9 { bo / bi } else { q };
                let bn = (bi + shift).clamp(0.0, 1.0);
                pools[k][i] = [
                    ((1.0 - bn) * open_u) as f32,
                    (bn * open_b) as f32,
                    (bn * (1.0 - open_b)) as f32,
                    0.0,
                ];
            }
            report.push(BridgeEntry {
                population: net.pop_names[p].clone(),
                pool: k,
                gate_open: q,
                blocked_before: b_old,
                blocked_after: b,
                relax_time_s: if rate > 0.0 {
                    1e-3 / rate
                } else {
                    f64::INFINITY
                },
            });
        }
    }
    (report, pools)
}

/// One population in one window.
#[derive(Debug, Clone, Serialize)]
pub struct PopWindow {
    /// Rate (Hz).
    pub rate_hz: f64,
    /// Mean NMDA open fraction (pool-weighted O).
    pub nmda_open: f64,
    /// Mean NMDA blocked fraction (B + T).
    pub nmda_blocked: f64,
    /// Mean NMDA current per neuron (pA; positive depolarising): the charge rate,
    /// pC/s.
    pub i_nmda_pa: f64,
    /// Mean AMPA current per neuron (pA).
    pub i_ampa_pa: f64,
    /// Mean GABA_A current per neuron (pA).
    pub i_gaba_pa: f64,
    /// Mean extracellular glutamate (µM; NaN if the population releases none).
    pub glutamate_um: f64,
    /// `glutamate_um` as % of the baseline windows' mean (NaN without a baseline).
    pub glutamate_pct_baseline: f64,
    /// Released vesicles per neuron per second (NaN if none released).
    pub release_hz: f64,
    /// Mean CV of ISI of recorded neurons with >= 3 spikes in the window (NaN if the
    /// population's spikes are not recorded or none qualifies).
    pub cv_isi: f64,
    /// Spike-count synchrony chi of the recorded neurons (NaN if not recorded).
    pub synchrony: f64,
    /// Gamma (30-80 Hz) power of this population's own LFP proxy (pA^2).
    pub gamma_power: f64,
    /// `gamma_power` / its mean over the baseline windows (NaN without a baseline).
    pub gamma_power_ratio: f64,
    /// Slow signalling state at the end of the window (populations with
    /// `[signalling]` only).
    pub slow: Option<crate::signalling::SlowReadout>,
}

/// One row of `timecourse.csv`: a measured window.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Simulation time span (ms).
    pub sim_ms: (f64, f64),
    /// Protocol time span (min).
    pub protocol_min: (f64, f64),
    /// Whether the window is part of the pre-drug baseline.
    pub baseline: bool,
    /// Mean free concentration at the receptors (µM).
    pub conc_um: f64,
    /// Per population.
    pub pops: Vec<PopWindow>,
    /// Gamma (30-80 Hz) power of the LFP proxy (pA^2).
    pub gamma_power: f64,
    /// `gamma_power` / mean of the baseline windows (NaN without a baseline).
    pub gamma_power_ratio: f64,
}

/// Per-step data the runner folds into windows.
#[derive(Debug, Clone, Default)]
pub struct WindowAcc {
    /// First and end step.
    pub steps: (u64, u64),
    /// Spikes per population.
    pub spikes: Vec<u64>,
    /// Sum of glutamate (µM) over steps, per population.
    pub glu_sum: Vec<f64>,
    /// Released vesicles per population.
    pub released: Vec<f64>,
    /// Sum of the concentration at each step (µM).
    pub conc_sum: f64,
}

/// The windows of a run in simulation steps: tiles of `timecourse_ms` over a
/// continuous run; the measured part of every segment in multiscale mode.
pub fn window_spans(net: &Network) -> Vec<(u64, u64)> {
    use crate::scenario::ProtocolMode;
    let p = &net.scenario.protocol;
    match p.mode {
        ProtocolMode::Continuous => {
            let w = crate::scenario::steps_of(p.timecourse_ms, net.scenario.dt_ms).max(1) as u64;
            (0..net.steps.div_ceil(w))
                .map(|k| (k * w, ((k + 1) * w).min(net.steps)))
                .collect()
        }
        ProtocolMode::Multiscale => net
            .segments
            .iter()
            .map(|s| {
                let end = s.first_step + s.steps;
                (end - s.measured_steps, end)
            })
            .collect(),
    }
}

/// The window whose end the slow signalling state takes its reference from (and the
/// interventions act after by default): the last baseline window, else the first.
pub fn reference_window(net: &Network, spans: &[(u64, u64)]) -> usize {
    baseline_flags(net, spans)
        .iter()
        .rposition(|&b| b)
        .unwrap_or(0)
}

/// Which windows form the pre-drug baseline: in continuous mode those inside
/// `record.baseline_ms`; in multiscale mode those that end before the first dose
/// (with a concentration table, before the first non-zero concentration).
pub fn baseline_flags(net: &Network, spans: &[(u64, u64)]) -> Vec<bool> {
    use crate::scenario::ProtocolMode;
    let s = &net.scenario;
    match s.protocol.mode {
        ProtocolMode::Continuous => {
            let base = crate::scenario::steps_of(s.record.baseline_ms, s.dt_ms) as u64;
            spans.iter().map(|&(_, b)| base > 0 && b <= base).collect()
        }
        ProtocolMode::Multiscale => {
            let first_dose = s
                .pharmacokinetics
                .as_ref()
                .and_then(|pk| pk.doses.iter().map(|d| d.time_min).reduce(f64::min));
            spans
                .iter()
                .map(|&(a, b)| {
                    let last = b.saturating_sub(1);
                    match first_dose {
                        Some(d) => net.protocol_min_at_step(last) < d,
                        None => net.conc_at_step(a) == 0.0 && net.conc_at_step(last) == 0.0,
                    }
                })
                .collect()
        }
    }
}

/// Mean of the values (NaN for none).
pub fn mean(x: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = x.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Welch spectrum of the LFP proxy of population `lfp_pop` from the samples in
/// `(t0_ms, t1_ms]`, with `WELCH_SEGMENT`-sample segments (at most half the window);
/// `None` with fewer than [`MIN_SPECTRUM_SAMPLES`] samples or a non-finite current.
pub fn lfp_psd(
    samples: &[(f64, Vec<[f64; STATS_PER_POP]>)],
    lfp_pop: usize,
    t0_ms: f64,
    t1_ms: f64,
) -> Option<Psd> {
    lfp_psd_segments(samples, lfp_pop, t0_ms, t1_ms, |n| {
        WELCH_SEGMENT.min(n / 2).max(8)
    })
}

/// [`lfp_psd`] with the Welch segment length chosen by `segment(samples in window)`
/// (50% overlap).
pub fn lfp_psd_segments(
    samples: &[(f64, Vec<[f64; STATS_PER_POP]>)],
    lfp_pop: usize,
    t0_ms: f64,
    t1_ms: f64,
    segment: impl Fn(usize) -> usize,
) -> Option<Psd> {
    let win: Vec<_> = samples
        .iter()
        .filter(|(t, _)| *t > t0_ms && *t <= t1_ms)
        .collect();
    if win.len() < MIN_SPECTRUM_SAMPLES {
        return None;
    }
    let dt_ms = (win[1].0 - win[0].0).max(1e-9);
    let fs = 1000.0 / dt_ms;
    let ampa: Vec<f64> = win.iter().map(|(_, m)| m[lfp_pop][6]).collect();
    let gaba: Vec<f64> = win.iter().map(|(_, m)| m[lfp_pop][7]).collect();
    let nmda: Vec<f64> = win.iter().map(|(_, m)| m[lfp_pop][5]).collect();
    let lfp = lfp_proxy(&ampa, &gaba, &nmda).ok()?;
    let seg = segment(lfp.len());
    welch_psd(&lfp, fs, seg, seg / 2).ok()
}

/// Gamma (30-80 Hz) power of [`lfp_psd`] (NaN without a spectrum).
pub fn gamma_power(
    samples: &[(f64, Vec<[f64; STATS_PER_POP]>)],
    lfp_pop: usize,
    t0_ms: f64,
    t1_ms: f64,
) -> f64 {
    lfp_psd(samples, lfp_pop, t0_ms, t1_ms).map_or(f64::NAN, |psd| gamma_band_power(&psd))
}

/// The longest sample interval whose spectrum reaches the top of the gamma band:
/// Nyquist, `1000 / (2 x 80 Hz)` = 6.25 ms.
pub fn max_gamma_sample_interval_ms() -> f64 {
    1000.0 / (2.0 * GAMMA_BAND_HZ.1)
}

/// Why a scenario's gamma power will be NaN, where its samples are too slow for the
/// band ([`max_gamma_sample_interval_ms`]); `None` where they are fast enough.
pub fn gamma_sampling_note(s: &crate::scenario::Scenario) -> Option<String> {
    let sample_ms = s.sample_interval_run_ms();
    (sample_ms > max_gamma_sample_interval_ms()).then(|| {
        format!(
            "record.sample_interval_ms = {sample_ms} ms samples below twice the gamma band's top (sample every {} ms or less for it), so gamma power is NaN",
            max_gamma_sample_interval_ms()
        )
    })
}

/// Power of `psd` in [`GAMMA_BAND_HZ`]; NaN where the spectrum stops below the band's
/// top (samples slower than [`max_gamma_sample_interval_ms`]), since `band_power`
/// would clip the band to the part below Nyquist and report that part as the whole.
pub fn gamma_band_power(psd: &Psd) -> f64 {
    let top_hz = psd.freqs_hz.last().copied().unwrap_or(0.0);
    if top_hz < GAMMA_BAND_HZ.1 * (1.0 - 1e-12) {
        return f64::NAN;
    }
    band_power(psd, GAMMA_BAND_HZ.0, GAMMA_BAND_HZ.1)
}

/// Spike trains (ms) of the neurons `[offset, offset + size)` within `[t0, t1)`.
fn trains(spikes: &[(f64, u32)], offset: u32, size: u32, t0: f64, t1: f64) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::new(); size as usize];
    for &(t, i) in spikes {
        if t >= t0 && t < t1 && i >= offset && i < offset + size {
            out[(i - offset) as usize].push(t);
        }
    }
    out
}

/// Fold the accumulators and the run's samples and recorded spikes into windows.
#[allow(clippy::too_many_arguments)]
pub fn finish_windows(
    net: &Network,
    accs: &[WindowAcc],
    baseline: &[bool],
    samples: &[(f64, Vec<[f64; STATS_PER_POP]>)],
    spikes: &[(f64, u32)],
    lfp_pop: usize,
) -> Vec<Window> {
    let dt = net.scenario.dt_ms;
    let mut out: Vec<Window> = accs
        .iter()
        .zip(baseline)
        .map(|(a, &base)| {
            let (t0, t1) = (a.steps.0 as f64 * dt, a.steps.1 as f64 * dt);
            let width_s = (t1 - t0) * 1e-3;
            let n_steps = (a.steps.1 - a.steps.0).max(1) as f64;
            // Samples (time of the step's end) in (t0, t1] and spikes in [t0, t1): both
            // lists are in time order, so each window takes its slice once.
            let samples = {
                let lo = samples.partition_point(|(t, _)| *t <= t0);
                let hi = samples.partition_point(|(t, _)| *t <= t1);
                &samples[lo..hi]
            };
            let spikes = {
                let lo = spikes.partition_point(|(t, _)| *t < t0);
                let hi = spikes.partition_point(|(t, _)| *t < t1);
                &spikes[lo..hi]
            };
            let pops = net
                .pops()
                .iter()
                .enumerate()
                .map(|(p, pp)| {
                    let k = |q: usize| mean(samples.iter().map(|(_, m)| m[p][q]));
                    let (cv, chi) = if pp.record_spikes != 0 {
                        let tr = trains(spikes, pp.offset, pp.size, t0, t1);
                        (
                            mean_cv(&tr, CV_MIN_SPIKES).unwrap_or(f64::NAN),
                            bin_spike_counts(&tr, t0, t1, SYNCHRONY_BIN_MS)
                                .ok()
                                .and_then(|c| spike_count_synchrony(&c))
                                .unwrap_or(f64::NAN),
                        )
                    } else {
                        (f64::NAN, f64::NAN)
                    };
                    let glu = pp.glu_on != 0;
                    PopWindow {
                        rate_hz: a.spikes[p] as f64 / pp.size as f64 / width_s,
                        nmda_open: k(3),
                        nmda_blocked: k(4),
                        i_nmda_pa: k(5),
                        i_ampa_pa: k(6),
                        i_gaba_pa: k(7),
                        glutamate_um: if glu {
                            a.glu_sum[p] / n_steps
                        } else {
                            f64::NAN
                        },
                        glutamate_pct_baseline: f64::NAN,
                        release_hz: if glu {
                            a.released[p] / pp.size as f64 / width_s
                        } else {
                            f64::NAN
                        },
                        cv_isi: cv,
                        synchrony: chi,
                        gamma_power: gamma_power(samples, p, t0, t1),
                        gamma_power_ratio: f64::NAN,
                        slow: None,
                    }
                })
                .collect();
            Window {
                sim_ms: (t0, t1),
                protocol_min: (
                    net.protocol_min_at_step(a.steps.0),
                    net.protocol_min_at_step(a.steps.1.saturating_sub(1)) + dt / 60_000.0,
                ),
                baseline: base,
                conc_um: a.conc_sum / n_steps,
                pops,
                gamma_power: f64::NAN,
                gamma_power_ratio: f64::NAN,
            }
        })
        .collect();
    for w in &mut out {
        w.gamma_power = w.pops[lfp_pop].gamma_power;
    }
    let base: Vec<&Window> = out.iter().filter(|w| w.baseline).collect();
    if !base.is_empty() {
        let glu0: Vec<f64> = (0..net.pops().len())
            .map(|p| mean(base.iter().map(|w| w.pops[p].glutamate_um)))
            .collect();
        let g0: Vec<f64> = (0..net.pops().len())
            .map(|p| mean(base.iter().map(|w| w.pops[p].gamma_power)))
            .collect();
        for w in &mut out {
            for (p, pw) in w.pops.iter_mut().enumerate() {
                pw.glutamate_pct_baseline = 100.0 * pw.glutamate_um / glu0[p];
                pw.gamma_power_ratio = pw.gamma_power / g0[p];
            }
            w.gamma_power_ratio = w.pops[lfp_pop].gamma_power_ratio;
        }
    }
    out
}

/// The window outside the baseline with the highest glutamate (% of baseline) of
/// population `p`, if any.
pub fn glutamate_peak(windows: &[Window], p: usize) -> Option<&Window> {
    windows
        .iter()
        .filter(|w| !w.baseline && w.pops[p].glutamate_pct_baseline.is_finite())
        .max_by(|a, b| {
            a.pops[p]
                .glutamate_pct_baseline
                .total_cmp(&b.pops[p].glutamate_pct_baseline)
        })
}

/// `timecourse.csv`: one row per window.
/// Slow signalling columns of `timecourse.csv` (per signalling population; BDNF and
/// mTOR relative to their resting level).
pub const SLOW_COLUMNS: [&str; 6] = [
    "ampa_activation",
    "ampa_activation_rel",
    "bdnf",
    "mtor",
    "protein",
    "synapse_density",
];

/// `timecourse.csv`: one row per window. With slow signalling, `t_mid_h` and the
/// [`SLOW_COLUMNS`] of each signalling population follow the other columns.
pub fn timecourse_csv(windows: &[Window], pop_names: &[String]) -> String {
    let mut s = String::from(
        "t_start_min,t_end_min,t_mid_min,sim_start_ms,sim_end_ms,baseline,conc_um,gamma_power,gamma_power_ratio",
    );
    // Populations with slow state (in any window: those before the reference window
    // have none yet).
    let slow_pops: Vec<usize> = windows
        .iter()
        .find(|w| w.pops.iter().any(|p| p.slow.is_some()))
        .map(|w| {
            (0..w.pops.len())
                .filter(|&p| w.pops[p].slow.is_some())
                .collect()
        })
        .unwrap_or_default();
    for n in pop_names {
        for c in [
            "rate_hz",
            "nmda_open",
            "nmda_blocked",
            "i_nmda_pA",
            "i_ampa_pA",
            "i_gaba_pA",
            "glutamate_um",
            "glutamate_pct_baseline",
            "release_hz",
            "cv_isi",
            "synchrony",
        ] {
            s.push_str(&format!(",{c}_{n}"));
        }
    }
    if !slow_pops.is_empty() {
        s.push_str(",t_mid_h");
        for &p in &slow_pops {
            for c in SLOW_COLUMNS {
                s.push_str(&format!(",{c}_{}", pop_names[p]));
            }
        }
    }
    s.push('\n');
    let f = |x: f64| {
        if x.is_finite() {
            format!("{x:.6}")
        } else {
            String::new()
        }
    };
    for w in windows {
        s.push_str(&format!(
            "{:.6},{:.6},{:.6},{:.3},{:.3},{},{},{},{}",
            w.protocol_min.0,
            w.protocol_min.1,
            0.5 * (w.protocol_min.0 + w.protocol_min.1),
            w.sim_ms.0,
            w.sim_ms.1,
            w.baseline as u8,
            f(w.conc_um),
            f(w.gamma_power),
            f(w.gamma_power_ratio)
        ));
        for p in &w.pops {
            for x in [
                p.rate_hz,
                p.nmda_open,
                p.nmda_blocked,
                p.i_nmda_pa,
                p.i_ampa_pa,
                p.i_gaba_pa,
                p.glutamate_um,
                p.glutamate_pct_baseline,
                p.release_hz,
                p.cv_isi,
                p.synchrony,
            ] {
                s.push(',');
                s.push_str(&f(x));
            }
        }
        if !slow_pops.is_empty() {
            s.push(',');
            s.push_str(&f(0.5 * (w.protocol_min.0 + w.protocol_min.1) / 60.0));
            for &p in &slow_pops {
                let r = w.pops[p].slow;
                let vals = match r {
                    Some(r) => [
                        r.activation_ns_per_s,
                        r.activation_rel,
                        r.bdnf / r.m_rest,
                        r.mtor / r.m_rest,
                        r.protein,
                        r.density,
                    ],
                    None => [f64::NAN; 6],
                };
                for x in vals {
                    s.push(',');
                    s.push_str(&f(x));
                }
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat spectrum up to Nyquist: the band's power where the spectrum reaches
    /// 80 Hz, NaN where it stops below (samples every 10 ms: 50 Hz), not the 20 Hz of
    /// the band that `band_power` would integrate there.
    #[test]
    fn gamma_power_needs_the_whole_band_below_nyquist() {
        let flat = |top_hz: f64| Psd {
            freqs_hz: (0..=10).map(|k| k as f64 * top_hz / 10.0).collect(),
            power: vec![1.0; 11],
        };
        let width = GAMMA_BAND_HZ.1 - GAMMA_BAND_HZ.0;
        assert!((gamma_band_power(&flat(500.0)) - width).abs() < 1e-9);
        assert!((gamma_band_power(&flat(80.0)) - width).abs() < 1e-9);
        assert!(gamma_band_power(&flat(50.0)).is_nan());
        assert!((band_power(&flat(50.0), GAMMA_BAND_HZ.0, GAMMA_BAND_HZ.1) - 20.0).abs() < 1e-9);
        assert_eq!(max_gamma_sample_interval_ms(), 6.25);
    }
}
