//! Compile-time limits and kernel shapes shared by Rust and WGSL. The shader header
//! (`gpu::shaders::header`) is generated from these constants, so they are written once.

/// Most populations in one simulation (a scenario, or a batch of networks side by
/// side). The parameters live in storage buffers, so this is not a uniform-block
/// limit: it keeps `pops` (208 B each, 13.6 MiB) within WebGPU's guaranteed 128 MiB
/// storage binding, and a population lookup (`find_pop`, a binary search) within 16
/// probes.
pub const MAX_POPULATIONS: usize = 65_536;
/// Most neurons in one simulation: indices are `u32`, and `u32::MAX` is kept free
/// (`NO_SPIKE` and the kernels' `i < n_total` test).
pub const MAX_NEURONS: u64 = u32::MAX as u64 - 1;
/// Most projections in one simulation: 80 B each, 80 MiB within the 128 MiB binding.
/// (A projection's random streams take `PROC_SPLIT` consecutive stream numbers below
/// 2^28, `rng::STREAM_CONN`, so a single scenario could hold 2^22.)
pub const MAX_PROJECTIONS: usize = 1 << 20;
/// Most Poisson drives in one simulation: 32 B each, 32 MiB.
pub const MAX_DRIVES: usize = 1 << 20;
/// Largest buffer a batch of networks may need before it is split into several
/// simulations: WebGPU's guaranteed storage-binding size (128 MiB), which every
/// adapter offers. A single network may use whatever its adapter allows.
pub const BATCH_BINDING_BYTES: u64 = 128 << 20;
/// Most steps one neuron-update dispatch advances (`SimParams::fuse_steps`; the
/// network's shortest delay and refractory period may allow fewer). A chunk also ends
/// at every sample step, so with the usual 1 ms sample interval at dt 0.1 ms at most
/// 10 are used; 16 leaves room for coarser sampling.
pub const MAX_FUSED_STEPS: u32 = 16;
/// Longest synaptic delay in steps (ring-buffer slots = longest delay + 1).
pub const MAX_DELAY_STEPS: u32 = 4096;
/// Attempts of a per-synapse normal weight or delay draw before it is clamped
/// (`connectivity::synapse_draw`; a delay of mean 1.5 ms and SD 0.75 ms falls below
/// half a step 2.7% of the time, so 8 attempts all fail with probability 3e-13).
pub const SYN_REDRAWS: u32 = 8;
/// Threads per workgroup of the per-neuron kernels (the default of
/// `GpuContext::workgroup_size`; `KETASIM_WG_SIZE` chooses another). No result depends
/// on it.
pub const WORKGROUP_SIZE: u32 = 64;
/// Threads that share one presynaptic spike in the propagation kernel; procedural
/// connectivity splits the postsynaptic range (or the out-degree) into this many
/// slices, each with its own random stream, so the connectivity itself depends on this
/// number (and is identical on every backend).
pub const PROC_SPLIT: u32 = 64;
/// Most workgroups of `PROC_SPLIT` invocations that share one spike in the
/// propagation kernel (`SimParams::spike_groups`): enough for 16,384 synapses per
/// spike at one per invocation (the full-scale microcircuit's largest out-degree is
/// 6,778, in L4I: 106 workgroups); a spike with more takes several per invocation.
/// It was 64 until 2026-12-04, when four of the microcircuit's eight populations
/// had spikes of more than 4,096 synapses.
pub const MAX_SPIKE_GROUPS: u32 = 256;
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
/// Magnitude limit of one neuron's quantised sample (keeps a workgroup's sum in i32):
/// +-16,384 mV, nS and +-65,536 pA at the scales above. A value at or past it is
/// clamped and flagged in the sample's clip mask ([`SAMPLE_ENTRIES_PER_POP`]), so
/// that its population mean is reported as unknown rather than biased.
pub const STAT_CLAMP: f32 = 16_777_216.0;
/// 64-bit entries per population in each sample slot: the `STATS_PER_POP` sums, then
/// the clip mask (entry [`CLIP_ENTRY`]: bit k set when some neuron's quantity k
/// reached +-`STAT_CLAMP`, OR-ed over the population in its low word).
pub const SAMPLE_ENTRIES_PER_POP: usize = STATS_PER_POP + 1;
/// Index of the clip mask among a population's sample entries.
pub const CLIP_ENTRY: usize = STATS_PER_POP;
const _: () = assert!(
    STATS_PER_POP <= 31,
    "the clip mask is one bit per quantity in an i32"
);
/// Threads per workgroup of the population-sum kernel (`shaders/reduce_stats.wgsl`),
/// whatever the other per-neuron kernels use: its workgroup adds up to this many
/// quantised values, each at most `STAT_CLAMP` (2^24) in size, in an `i32` before
/// the 64-bit sum, so it must stay below 2^31 / 2^24 = 128. With 128 threads a
/// population held at the clamp wrapped by 2^32 (found with `KETASIM_WG_SIZE=128`).
pub const REDUCE_WORKGROUP_SIZE: u32 = 64;
const _: () = assert!((REDUCE_WORKGROUP_SIZE as u64) * (STAT_CLAMP as u64) < (1u64 << 31));
/// Marks "no spike yet" in the per-neuron last-spike step.
pub const NO_SPIKE: u32 = u32::MAX;
/// Largest stable forward-Euler step factor `h = dt_ms * g_total_nS / c_pF` of a
/// conductance-based membrane step. In a step V relaxes towards the instantaneous
/// equilibrium `V_inf = (sum_k g_k E_k + I_ext) / g_total` as
/// `V' - V_inf = (1 - h) (V - V_inf)`, where the exact solution has `e^-h`: for
/// `h > 2`, `|1 - h| > 1` and the error grows every step (forward Euler's stability
/// region `|1 + dt lambda| <= 1` with `lambda = -g_total / C`; Hairer & Wanner,
/// *Solving Ordinary Differential Equations II*, 2nd ed., section IV.2). V then
/// oscillates with growing amplitude until a positive swing crosses threshold: the
/// neuron fires at the refractory limit (or V becomes infinite) and the result is an
/// artefact of the step. `h` counts the leak, AMPA, GABA_A and Mg2+-unblocked NMDA
/// conductances (negative conductances, as COBA's initial draws keep, make `h`
/// smaller, never unstable). Scenario validation bounds the leak's part
/// (`dt_ms <= tau_m / 10`); the synaptic part is known only as the run goes, so the
/// kernels count the neuron-steps past this bound (or with a non-finite V, in any
/// population) and the run stops with an error naming the population.
pub const MAX_EULER_STEP_FACTOR: f32 = 2.0;
/// Words per population after the batch's per-step spike counts in `pop_counts`
/// (both backends): unstable neuron-steps (`MAX_EULER_STEP_FACTOR`), `u32::MAX` minus
/// the first such step (so that an `atomicMax` from zero keeps the earliest), and the
/// bits of the largest step factor seen in them (`+inf` for a non-finite V).
pub const UNSTABLE_WORDS_PER_POP: u32 = 3;
/// Words of the `pop_counts` buffer (both backends): `count_capacity` rows of
/// `n_pop` spike counts, then `UNSTABLE_WORDS_PER_POP` words per population.
pub const fn pop_counts_words(count_capacity: u64, n_pop: u64) -> u64 {
    (count_capacity + UNSTABLE_WORDS_PER_POP as u64) * n_pop
}
