//! `[protocol]`: how a dosing protocol that lasts minutes to hours is simulated
//! (SCIENCE.md section 8).
//!
//! - `continuous`: every step of `duration_ms` at `dt_ms` (spans of seconds to
//!   minutes); `timecourse.csv` tiles the run with rows `timecourse_ms` wide.
//! - `multiscale`: network windows at chosen protocol times. Before the first window
//!   the network runs `warmup_ms + settle_ms` to reach its stationary state; every
//!   window then has `settle_ms` that are simulated but not measured and `window_ms`
//!   that are measured (one `timecourse.csv` row each), ending `window_ms` after the
//!   window's protocol time. The whole network state is carried from the end of one
//!   window to the start of the next; across the gap, only the ketamine block of the
//!   NMDA receptor pools is advanced (see `crate::protocol::bridge_block`): it is the
//!   state that follows the concentration on a time scale between the network's
//!   (ms) and the pharmacokinetics' (min). The approximation and its test against
//!   the continuous mode are in docs/protocol.md.

use serde::{Deserialize, Serialize};

use super::checks::{finite, positive, Check};

/// How the protocol is simulated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolMode {
    /// Every step of `duration_ms`.
    #[default]
    Continuous,
    /// Network windows at `window_times_min`, bridged by the block kinetics.
    Multiscale,
}

/// The `[protocol]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// `continuous` (default) or `multiscale`.
    #[serde(default)]
    pub mode: ProtocolMode,
    /// Multiscale: protocol times (min, on the `[pharmacokinetics]` clock) at which
    /// each window's measurement starts; strictly increasing, windows must not
    /// overlap. Windows that end before the first dose form the pre-drug baseline.
    #[serde(default)]
    pub window_times_min: Vec<f64>,
    /// Multiscale: simulated before the first window's settle, from protocol time
    /// `window_times_min[0] - (warmup_ms + settle_ms)`, so that slow state (the
    /// glutamate pool, K_m/Vmax = 2 s by default) is stationary (ms).
    #[serde(default = "d_warmup")]
    pub warmup_ms: f64,
    /// Multiscale: simulated but not measured at the start of every window, so that
    /// the network and the block relax after the gap (ms).
    #[serde(default = "d_settle")]
    pub settle_ms: f64,
    /// Multiscale: measured part of every window (ms).
    #[serde(default = "d_window")]
    pub window_ms: f64,
    /// Multiscale: coarse step (s) with which the block kinetics are advanced across
    /// a gap; the concentration is taken at each step's midpoint.
    #[serde(default = "d_bridge")]
    pub bridge_step_s: f64,
    /// Continuous: width of the `timecourse.csv` rows (ms).
    #[serde(default = "d_timecourse")]
    pub timecourse_ms: f64,
}

/// 5 s: 2.5 clearance times of the default glutamate pool (K_m/Vmax = 2 s).
fn d_warmup() -> f64 {
    5000.0
}
/// 2 s: the block relaxation time at 0.5-1 µM with the NMDA open probabilities of
/// the default circuit is about 1-3 s (docs/protocol.md).
fn d_settle() -> f64 {
    2000.0
}
/// 2 s: long enough for a Welch spectrum with 4 Hz resolution and rates with a few
/// % sampling error in a 4000-neuron network.
fn d_window() -> f64 {
    2000.0
}
/// 1 s: against block relaxation times of seconds and PK time scales of minutes.
fn d_bridge() -> f64 {
    1.0
}
/// 1 s rows.
fn d_timecourse() -> f64 {
    1000.0
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            mode: ProtocolMode::Continuous,
            window_times_min: Vec::new(),
            warmup_ms: d_warmup(),
            settle_ms: d_settle(),
            window_ms: d_window(),
            bridge_step_s: d_bridge(),
            timecourse_ms: d_timecourse(),
        }
    }
}

/// One contiguous stretch of simulation: `steps` steps from simulation step
/// `first_step`, starting at protocol time `protocol_min`; its measured part is the
/// last `measured_steps`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// First simulation step.
    pub first_step: u64,
    /// Steps.
    pub steps: u64,
    /// Protocol time (min) at `first_step`.
    pub protocol_min: f64,
    /// Steps at the end that are measured (a `timecourse.csv` row).
    pub measured_steps: u64,
}

impl Protocol {
    /// Multiscale: the simulated time the protocol implies (ms), to the step.
    pub fn multiscale_duration_ms(&self, dt_ms: f64) -> f64 {
        let s = |ms: f64| super::steps_of(ms, dt_ms) as f64;
        let k = self.window_times_min.len() as f64;
        (s(self.warmup_ms) + k * (s(self.settle_ms) + s(self.window_ms))) * dt_ms
    }

    /// The stretches of simulation: one for a continuous run (starting at
    /// `protocol_time_min`, measured in whole), one per window for a multiscale one.
    pub fn segments(&self, dt_ms: f64, total_steps: u64, protocol_time_min: f64) -> Vec<Segment> {
        match self.mode {
            ProtocolMode::Continuous => vec![Segment {
                first_step: 0,
                steps: total_steps,
                protocol_min: protocol_time_min,
                measured_steps: total_steps,
            }],
            ProtocolMode::Multiscale => {
                let s = |ms: f64| super::steps_of(ms, dt_ms) as u64;
                let (warm, settle, win) = (s(self.warmup_ms), s(self.settle_ms), s(self.window_ms));
                let mut out = Vec::new();
                let mut first = 0;
                for (k, &t) in self.window_times_min.iter().enumerate() {
                    let lead = if k == 0 { warm + settle } else { settle };
                    out.push(Segment {
                        first_step: first,
                        steps: lead + win,
                        protocol_min: t - lead as f64 * dt_ms / 60_000.0,
                        measured_steps: win,
                    });
                    first += lead + win;
                }
                out
            }
        }
    }

    /// Check the table; `first_dose_min` is the earliest dose of the
    /// `[pharmacokinetics]` protocol (None without one).
    pub fn validate(&self, dt_ms: f64, has_pk: bool, first_dose_min: Option<f64>) -> Check {
        positive("protocol.timecourse_ms", self.timecourse_ms)?;
        if self.timecourse_ms < dt_ms {
            return Err(format!(
                "protocol.timecourse_ms: must be at least dt_ms = {dt_ms} (got {})",
                self.timecourse_ms
            ));
        }
        if self.mode == ProtocolMode::Continuous {
            // The multiscale keys are kept but not used, so that
            // `--set protocol.mode=continuous` switches a multiscale scenario over.
            return Ok(());
        }
        if !has_pk {
            return Err("protocol.mode: \"multiscale\" places windows on a dosing protocol's clock; add a [pharmacokinetics] table (or use mode = \"continuous\" with drug.conc_um)".into());
        }
        if self.window_times_min.is_empty() {
            return Err("protocol.window_times_min: multiscale needs at least one window time (min), e.g. [-5, 10, 30, 60]".into());
        }
        for (i, &t) in self.window_times_min.iter().enumerate() {
            finite(&format!("protocol.window_times_min[{i}]"), t)?;
        }
        super::checks::non_negative("protocol.warmup_ms", self.warmup_ms)?;
        super::checks::non_negative("protocol.settle_ms", self.settle_ms)?;
        positive("protocol.window_ms", self.window_ms)?;
        if self.window_ms < dt_ms {
            return Err(format!(
                "protocol.window_ms: must be at least dt_ms = {dt_ms} (got {})",
                self.window_ms
            ));
        }
        positive("protocol.bridge_step_s", self.bridge_step_s)?;
        let window_min = self.window_ms / 60_000.0;
        let settle_min = self.settle_ms / 60_000.0;
        for (i, w) in self.window_times_min.windows(2).enumerate() {
            if w[1] - settle_min < w[0] + window_min - 1e-12 {
                return Err(format!(
                    "protocol.window_times_min: window {} at {} min overlaps window {} at {} min; the next window (with its settle_ms) must start after window_ms ends: space them by at least {:.4} min",
                    i + 1,
                    w[1],
                    i,
                    w[0],
                    window_min + settle_min
                ));
            }
        }
        if let Some(d) = first_dose_min {
            if self.window_times_min[0] + window_min > d + 1e-12 {
                return Err(format!(
                    "protocol.window_times_min: the first window ({} min, {} ms long) must end before the first dose at {d} min, to give the pre-drug baseline",
                    self.window_times_min[0], self.window_ms
                ));
            }
        }
        Ok(())
    }
}
