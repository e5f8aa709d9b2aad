//! What every backend (CPU reference, wgpu/WGSL) provides to the runner.

use crate::error::Result;
use crate::model::layout::{DrugParams, IsiStat, SlowParams, SlowPop};
use crate::model::limits::{MAX_NMDA_POOLS, STATS_PER_POP};
use crate::model::NeuronState;

/// One sample of population sums of fixed-point quantities (see `STAT_SCALES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Step at whose end the sample was taken.
    pub step: u64,
    /// Per population: sums of the quantised quantities of `STATS_PER_POP`.
    pub sums: Vec<[i64; STATS_PER_POP]>,
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
