//! Compile-time limits and kernel shapes shared by Rust and WGSL. The shader header
//! (`gpu::shaders::header`) is generated from these constants, so they are written once.

/// Most populations a scenario may have (size of the parameter array in the uniform
/// block).
pub const MAX_POPULATIONS: usize = 64;
/// Most projections.
pub const MAX_PROJECTIONS: usize = 256;
/// Most Poisson drives.
pub const MAX_DRIVES: usize = 256;
/// Longest synaptic delay in steps (ring-buffer slots = longest delay + 1).
pub const MAX_DELAY_STEPS: u32 = 4096;
/// Attempts of a per-synapse normal weight or delay draw before it is clamped
/// (`connectivity::synapse_draw`; a delay of mean 1.5 ms and SD 0.75 ms falls below
/// half a step 2.7% of the time, so 8 attempts all fail with probability 3e-13).
pub const SYN_REDRAWS: u32 = 8;
/// Threads per workgroup of the per-neuron kernels.
pub const WORKGROUP_SIZE: u32 = 64;
/// Threads that share one presynaptic spike in the propagation kernel; procedural
/// connectivity splits the postsynaptic range (or the out-degree) into this many
/// slices, each with its own random stream, so the connectivity itself depends on this
/// number (and is identical on every backend).
pub const PROC_SPLIT: u32 = 64;
/// Most workgroups per dispatch dimension (WebGPU's guaranteed minimum).
pub const MAX_WORKGROUPS_PER_DIM: u32 = 65_535;
/// NMDA receptor pools (subunits) per population.
pub const MAX_NMDA_POOLS: usize = 2;
/// Quantities reduced per population at each sample: V (mV), g_AMPA (nS), g_GABA
/// (nS), NMDA open fraction (pool-weighted O), NMDA blocked fraction (pool-weighted
/// B + T), NMDA current (pA, inward negative), AMPA current (pA), GABA_A current (pA).
pub const STATS_PER_POP: usize = 8;
/// Fixed-point scales of the sampled quantities (LSB = 1/scale of the unit). Each
/// neuron's value is rounded once, so the integer sums do not depend on summation
/// order.
pub const STAT_SCALES: [f32; STATS_PER_POP] = [
    1024.0,
    1024.0,
    1024.0,
    1_048_576.0,
    1_048_576.0,
    256.0,
    256.0,
    256.0,
];
/// Magnitude limit of one neuron's quantised sample (keeps a workgroup's sum in i32).
pub const STAT_CLAMP: f32 = 16_777_216.0;
/// Marks "no spike yet" in the per-neuron last-spike step.
pub const NO_SPIKE: u32 = u32::MAX;
