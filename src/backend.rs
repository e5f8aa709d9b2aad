//! What every backend (CPU reference, wgpu/WGSL) provides to the runner.

use crate::error::{Error, Result};
use crate::model::layout::{DrugParams, IsiStat, SlowParams, SlowPop};
use crate::model::limits::{
    MAX_EULER_STEP_FACTOR, MAX_NMDA_POOLS, STATS_PER_POP, UNSTABLE_WORDS_PER_POP,
};
use crate::model::NeuronState;

/// One sample of population sums of fixed-point quantities (see `STAT_SCALES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Step at whose end the sample was taken.
    pub step: u64,
    /// Per population: sums of the quantised quantities of `STATS_PER_POP`.
    pub sums: Vec<[i64; STATS_PER_POP]>,
    /// Per population: the clip mask, bit k set when some neuron's quantity k reached
    /// the fixed-point limit `STAT_CLAMP` (its sum then holds the clamped value, so
    /// the mean is unknown).
    pub clipped: Vec<u32>,
}

/// What one batch of steps returns: small summaries, never the full state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutput {
    /// First step of the batch.
    pub first_step: u64,
    /// Steps in the batch.
    pub steps: u32,
    /// Spike counts, `steps x n_pop`, row-major by step.
    pub pop_counts: Vec<u32>,
    /// Samples of population means taken in the batch.
    pub samples: Vec<Sample>,
    /// Recorded spikes `(step, neuron)`, sorted.
    pub spikes: Vec<(u32, u32)>,
    /// Spikes that did not fit the record buffer.
    pub spikes_dropped: u64,
    /// Released vesicles per step and population, fixed point (`GLU_SCALE` per
    /// vesicle), `steps x n_pop`.
    pub release_fixed: Vec<u64>,
    /// Extracellular glutamate (µM) at the end of each step, `steps x n_pop`.
    pub glutamate_um: Vec<f32>,
    /// Per population: the batch's unstable membrane steps (all zero in a sound
    /// run; [`check_stable`] turns any into an error).
    pub unstable: Vec<Unstable>,
}

/// A population's unstable membrane steps in one batch: neuron-steps whose forward
/// Euler step factor `dt g_total / C` exceeded `MAX_EULER_STEP_FACTOR`, or whose V
/// came out non-finite. Both backends count them in the words after the batch's
/// spike counts (`UNSTABLE_WORDS_PER_POP` per population, [`Unstable::from_words`]),
/// so they agree bit for bit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unstable {
    /// Unstable neuron-steps (modulo 2^32, as the kernels' atomic counter wraps).
    pub neuron_steps: u32,
    /// The first step with one (`None` if there was none).
    pub first_step: Option<u32>,
    /// Bits of the largest step factor among them (`f32::INFINITY`'s where only V
    /// was non-finite).
    pub worst_factor_bits: u32,
}

impl Unstable {
    /// Per population, from the `UNSTABLE_WORDS_PER_POP` words each that follow the
    /// spike counts: count, `u32::MAX - first step` (0: none), largest factor's bits.
    pub fn from_words(words: &[u32]) -> Vec<Unstable> {
        words
            .chunks_exact(UNSTABLE_WORDS_PER_POP as usize)
            .map(|w| Unstable {
                neuron_steps: w[0],
                first_step: (w[1] != 0).then(|| u32::MAX - w[1]),
                worst_factor_bits: w[2],
            })
            .collect()
    }

    /// The largest step factor (`inf` where only V was non-finite).
    pub fn worst_factor(&self) -> f32 {
        f32::from_bits(self.worst_factor_bits)
    }
}

/// Record `count` unstable neuron-steps of population `pop` at `step` with largest
/// factor bits `worst` into the words after the spike counts, as the shader's
/// `check_step` does with atomics (`words` is the whole per-population tail).
pub fn note_unstable(words: &mut [u32], pop: u32, step: u32, count: u32, worst: u32) {
    if count == 0 {
        return;
    }
    let base = (UNSTABLE_WORDS_PER_POP * pop) as usize;
    words[base] = words[base].wrapping_add(count);
    words[base + 1] = words[base + 1].max(u32::MAX - step);
    words[base + 2] = words[base + 2].max(worst);
}

/// The bits a neuron-step contributes to `Unstable::worst_factor_bits`: its step
/// factor `h` where that exceeds the bound, else `+inf` (a non-finite V). Only
/// called for unstable steps, so the value is positive and its bits order as it does.
/// (The CPU's vectorised membrane loops call it per lane.)
#[inline(always)]
pub fn unstable_factor_bits(h: f32) -> u32 {
    if h > MAX_EULER_STEP_FACTOR {
        h.to_bits()
    } else {
        f32::INFINITY.to_bits()
    }
}

/// An error for the first population of a batch with unstable membrane steps, naming
/// it, the first step (and its time), how many, the worst step factor and the fix.
/// `names` are the populations' names, `dt_ms` the step.
pub fn check_stable(out: &BatchOutput, names: &[String], sizes: &[u32], dt_ms: f64) -> Result<()> {
    for (p, u) in out.unstable.iter().enumerate() {
        let Some(step) = u.first_step else {
            continue;
        };
        let name = names.get(p).map_or("?", String::as_str);
        // The count is exact unless the batch could hold 2^32 neuron-steps.
        let size = sizes.get(p).copied().unwrap_or(u32::MAX) as u64;
        let count = if size * out.steps as u64 <= u32::MAX as u64 {
            format!("{} neuron-steps", u.neuron_steps)
        } else {
            "neuron-steps".to_string()
        };
        // To the nanosecond: 25 x 0.1 prints as 2.5, not 2.5000000000000004.
        let t_ms = (step as f64 * dt_ms * 1e6).round() / 1e6;
        let worst = u.worst_factor();
        let what = if worst.is_finite() {
            let shown = if worst < 1e4 {
                format!("{worst:.3}")
            } else {
                format!("{worst:.3e}")
            };
            format!(
                "the forward-Euler membrane step factor dt_ms * g_total / c_pF reached {shown}, beyond the {MAX_EULER_STEP_FACTOR} at which the step diverges (g_total: leak + AMPA + GABA_A + unblocked NMDA conductance)"
            )
        } else {
            "the membrane potential became infinite or NaN".to_string()
        };
        return Err(Error::Unstable {
            pop: p,
            message: format!(
            "population `{name}`: the integration is unstable from step {step} (t = {t_ms} ms; {count} in the batch): {what}. \
             Spikes and rates from here on would be artefacts of the time step. \
             Lower dt_ms, or the conductances that reach `{name}`: the weights of projections and [[drives]] onto it, its initial conductances ([populations.init]) or its neuron.i_ext_pA"
            ),
        });
    }
    Ok(())
}

/// Per-neuron slow signalling state: `[density, accumulated local AMPA input (nS)]`
/// and `[reference, BDNF, mTOR, protein]`.
pub type SlowState = (Vec<[f32; 2]>, Vec<[f32; 4]>);

/// Which backend ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// The CPU reference backend.
    Cpu,
    /// wgpu compute shaders.
    Gpu,
}

impl BackendKind {
    /// "cpu" or "gpu".
    pub fn label(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Gpu => "gpu",
        }
    }
}

/// A simulation engine holding one network's state.
pub trait Backend {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// Adapter description ("cpu (N threads)" or the GPU's name and API).
    fn adapter(&self) -> String;
    /// Advance `steps` steps (at most the batch size the network was built with).
    fn run_batch(&mut self, steps: u32) -> Result<BatchOutput>;
    /// Free ketamine at the receptors for the next batch (the host evaluates the
    /// pharmacokinetics; the kernels only interpolate linearly within a batch).
    fn set_drug(&mut self, drug: DrugParams) -> Result<()>;
    /// Per-neuron ISI accumulators (read once, at the end of a run).
    fn isi(&mut self) -> Result<Vec<IsiStat>>;
    /// The full neuron state (tests and checkpoints; not used per step).
    fn state(&mut self) -> Result<NeuronState>;
    /// Replace the NMDA receptor pool states (`[O, B, T, 0]` per neuron and pool,
    /// `n` entries each): the multiscale bridge sets the block it advanced across a
    /// gap between windows. Never per step.
    fn set_nmda_pools(&mut self, pools: &[Vec<[f32; 4]>; MAX_NMDA_POOLS]) -> Result<()>;
    /// Slow signalling (`shaders/signal_sum.wgsl`): per population
    /// `SLOW_SUMS_PER_POP` sums (`n_pop` x that, row-major), of which `SLOW_SIGNAL`
    /// holds the sum over its neurons of the accumulated local AMPA input times
    /// `slow.inv_interval_s` (fixed point, `SIG_SCALE`); the accumulators are reset.
    /// Once per readout, never per step.
    fn signal_sum(&mut self, slow: &SlowParams) -> Result<Vec<u64>>;
    /// Slow signalling (`shaders/slow_update.wgsl`): advance (or capture the baseline
    /// of) the slow state; returns the sums as [`Backend::signal_sum`] does, with the
    /// slow state's from `SLOW_STATE` on. `pops` has one entry per population.
    fn slow_update(&mut self, slow: &SlowParams, pops: &[SlowPop]) -> Result<Vec<u64>>;
    /// The per-neuron slow state: `[density, accumulated AMPA input]` and
    /// `[reference, BDNF, mTOR, protein]` (tests; never per step).
    fn slow_state(&mut self) -> Result<SlowState>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words round-trip: counts add (wrapping, as the shader's atomic counter),
    /// the earliest step and the largest factor win, whatever the order of the notes.
    #[test]
    fn unstable_words_keep_the_count_the_first_step_and_the_worst_factor() {
        let n = UNSTABLE_WORDS_PER_POP as usize;
        let mut words = vec![0u32; 2 * n];
        note_unstable(&mut words, 1, 70, 3, unstable_factor_bits(2.5));
        note_unstable(&mut words, 1, 12, 2, unstable_factor_bits(2.25));
        note_unstable(&mut words, 1, 90, 0, unstable_factor_bits(9.0));
        note_unstable(&mut words, 1, 40, u32::MAX, unstable_factor_bits(1.0));
        let u = Unstable::from_words(&words);
        assert_eq!(u[0], Unstable::default());
        assert_eq!(u[1].neuron_steps, 4, "3 + 2 + (2^32 - 1), modulo 2^32");
        assert_eq!(u[1].first_step, Some(12));
        // A factor within the bound is only noted for a non-finite V: +inf.
        assert_eq!(u[1].worst_factor(), f32::INFINITY);
        assert_eq!(unstable_factor_bits(2.0), f32::INFINITY.to_bits());
        assert_eq!(unstable_factor_bits(3.0), 3.0f32.to_bits());
    }

    /// The error names the population, the step and its time, the count where it is
    /// exact, the factor (or a non-finite V) and the fix; sound batches pass.
    #[test]
    fn check_stable_names_the_population_and_the_fix() {
        let names = vec!["E".to_string(), "I".to_string()];
        let mut out = BatchOutput {
            steps: 10,
            unstable: vec![Unstable::default(); 2],
            ..Default::default()
        };
        assert!(check_stable(&out, &names, &[100, 10], 0.1).is_ok());
        out.unstable[1] = Unstable {
            neuron_steps: 7,
            first_step: Some(25),
            worst_factor_bits: 3.5f32.to_bits(),
        };
        let e = check_stable(&out, &names, &[100, 10], 0.1)
            .expect_err("unstable")
            .to_string();
        for needle in [
            "`I`",
            "step 25",
            "t = 2.5",
            "7 neuron-steps",
            "3.500",
            "Lower dt_ms",
        ] {
            assert!(e.contains(needle), "no {needle:?} in {e}");
        }
        out.unstable[1].worst_factor_bits = f32::INFINITY.to_bits();
        let e = check_stable(&out, &names, &[100, u32::MAX], 0.1)
            .expect_err("unstable")
            .to_string();
        assert!(
            e.contains("infinite or NaN") && !e.contains("7 neuron-steps"),
            "{e}"
        );
    }
}
