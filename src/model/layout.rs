//! Structs shared with the shaders (`shaders/common.wgsl`). `#[repr(C)]`, 4-byte
//! scalars only, explicit padding, sizes that are multiples of 16 (so each is also
//! valid in a uniform block). `tests/layout.rs` checks every member offset against the
//! WGSL with naga.

use bytemuck::{Pod, Zeroable};

use super::limits::MAX_NMDA_POOLS;

/// Whole-simulation constants.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct SimParams {
    /// Neurons in all populations.
    pub n_total: u32,
    /// Populations in use.
    pub n_pop: u32,
    /// Projections in use.
    pub n_proj: u32,
    /// Ring-buffer slots (longest delay in steps + 1).
    pub ring_slots: u32,
    /// Low word of the seed.
    pub seed_lo: u32,
    /// High word of the seed.
    pub seed_hi: u32,
    /// Steps per read-back batch (rows of the per-step spike-count buffer).
    pub count_capacity: u32,
    /// Steps between samples of population means.
    pub sample_interval: u32,
    /// Sample slots per batch.
    pub sample_capacity: u32,
    /// Spike-record entries per batch.
    pub rec_capacity: u32,
    /// Most steps one neuron-update dispatch advances (`chunk_len`): at most the
    /// shortest synaptic delay (no spike of a chunk arrives within it) and the
    /// shortest refractory period plus one step (a neuron fires at most once per
    /// chunk, so the spike list holds `n_total` entries); 1 turns fusion off.
    pub fuse_steps: u32,
    /// Which of the GPU's two chunk-control slots (`GpuCtrl::chunks`) the kernels
    /// use: 0 or 1, alternating from one chunk of fused steps to the next (the GPU
    /// keeps two copies of this block, one per value); 0 and unused on the CPU.
    pub parity: u32,
    /// Workgroups of `PROC_SPLIT` invocations per spike in the GPU's propagation
    /// (1 to `MAX_SPIKE_GROUPS`; `Network::build`): the procedural out-degree and
    /// total-number rules and the tables spread a spike's synapses over all of them;
    /// the probability rule's `PROC_SPLIT` slices (their own random streams) stay in
    /// the first. Unused on the CPU. No result depends on it.
    pub spike_groups: u32,
    /// Padding (keeps `inv_scale` 16-byte aligned, as WGSL requires).
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
    /// nS (or drive units) per fixed-point LSB of the AMPA, GABA_A and NMDA ring
    /// buffers (powers of two); the fourth entry is unused.
    pub inv_scale: [f32; 4],
}

/// One NMDA receptor pool of a population (a GluN2 subunit and its share).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct PoolParams {
    /// Share of the population's NMDA conductance.
    pub fraction: f32,
    /// [Mg2+] / K0_Mg of this subunit.
    pub mg_over_k0: f32,
    /// alpha * dt: opening per unit drive per step.
    pub alpha_dt: f32,
    /// dt / tau_decay: closing per step.
    pub beta_dt: f32,
    /// k_on * dt (per µM per step).
    pub kon_dt: f32,
    /// Ketamine K_d at -66 mV (µM).
    pub kd_ref_um: f32,
    /// delta / 26.7 mV (per mV).
    pub kd_slope_per_mv: f32,
    /// Padding.
    pub _pad0: f32,
}

/// Per-population constants, derived on the host in f64 and rounded once to f32.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct PopParams {
    /// First neuron index.
    pub offset: u32,
    /// Neurons.
    pub size: u32,
    /// Refractory steps after a spike.
    pub ref_steps: u32,
    /// Index of the population's first drive in the drive array.
    pub drive_start: u32,
    /// Number of drives.
    pub n_drives: u32,
    /// 1 if individual spikes are recorded.
    pub record_spikes: u32,
    /// NMDA receptor pools in use (0 without NMDA receptors).
    pub n_pools: u32,
    /// 1 if the population releases glutamate into its extracellular pool.
    pub glu_on: u32,
    /// dt / C (mV per pA per step).
    pub dt_over_c: f32,
    /// Leak conductance (nS).
    pub g_l: f32,
    /// Leak reversal (mV).
    pub e_l: f32,
    /// Threshold (mV).
    pub v_th: f32,
    /// Reset (mV).
    pub v_reset: f32,
    /// External current (pA).
    pub i_ext: f32,
    /// AMPA reversal (mV).
    pub e_ampa: f32,
    /// GABA_A reversal (mV).
    pub e_gaba: f32,
    /// NMDA reversal (mV).
    pub e_nmda: f32,
    /// NMDA conductance with every receptor open and unblocked (nS).
    pub g_nmda_max: f32,
    /// Per-step decay factor of g_AMPA.
    pub decay_ampa: f32,
    /// Per-step decay factor of g_GABA.
    pub decay_gaba: f32,
    /// Per-step decay factor of the NMDA drive x.
    pub decay_nmda_rise: f32,
    /// Vesicle release probability per release site and spike.
    pub glu_p_release: f32,
    /// Release sites per neuron.
    pub glu_sites: f32,
    /// dt / tau_recovery: recovery of the releasable pool per step.
    pub glu_rec_rate: f32,
    /// Rise of the extracellular pool (µM) per released vesicle: the per-vesicle
    /// increment divided by the population size.
    pub glu_um_per_vesicle: f32,
    /// Michaelis-Menten uptake Vmax * dt (µM per step).
    pub glu_vmax_dt: f32,
    /// Michaelis-Menten uptake K_m (µM).
    pub glu_km_um: f32,
    /// 1 if the population carries the slow signalling state (`[signalling]`): its
    /// recurrent AMPA and NMDA input is scaled by each neuron's synapse density and
    /// its local AMPA input is accumulated for the AMPA-activation signal.
    pub sig_on: u32,
    /// 1 if the population has current-based exponential synapses and exact
    /// integration (NEST's `iaf_psc_exp`): `g_ampa`/`g_gaba` then hold the excitatory
    /// and inhibitory synaptic currents (pA), `decay_ampa`/`decay_gaba` are
    /// `exp(-dt/tau_syn_ex)`/`exp(-dt/tau_syn_in)`, and V takes the propagator step
    /// below instead of forward Euler.
    pub syn_current: u32,
    /// Current-based: `exp(-dt/tau_m)`, the membrane's propagator.
    pub cur_p22: f32,
    /// Current-based: V change per pA of excitatory current at the step's start,
    /// `tau_s tau_m / (C (tau_s - tau_m)) (exp(-dt/tau_s) - exp(-dt/tau_m))` (mV/pA).
    pub cur_p21ex: f32,
    /// Current-based: the same for the inhibitory current (mV/pA).
    pub cur_p21in: f32,
    /// Current-based: V change per pA of constant current, `tau_m/C (1 - exp(-dt/tau_m))`.
    pub cur_p20: f32,
    /// First projection `propagate` scans for a spike of this population: the first
    /// of its network's projections (a batch holds many networks side by side, and a
    /// spike can only leave through its own network's projections).
    pub proj_first: u32,
    /// Projections scanned from `proj_first` (its network's projection count).
    pub proj_count: u32,
    /// Padding.
    pub _pad_cur2: f32,
    /// NMDA receptor pools (the first `n_pools` are used).
    pub pools: [PoolParams; MAX_NMDA_POOLS],
}

/// Free ketamine at the receptors during a batch: `conc(step) = max(0, conc0_um +
/// slope_um_per_step * (step - step0))`, uploaded by the host before each batch (the
/// pharmacokinetics is evaluated on the host, never in the kernels).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct DrugParams {
    /// Concentration at `step0` (µM).
    pub conc0_um: f32,
    /// Change per step (µM).
    pub slope_um_per_step: f32,
    /// Step of `conc0_um`.
    pub step0: u32,
    /// Fraction of every AMPA conductance removed (`interventions.ampa_block`, NBQX)
    /// during the batch: synaptic and drive increments are scaled by `1 - ampa_block`.
    /// 0 (the default) leaves the conductances bit for bit unchanged.
    pub ampa_block: f32,
}

impl DrugParams {
    /// The concentration the kernels use at `step` (same f32 operations as WGSL).
    pub fn conc_at(&self, step: u32) -> f32 {
        (self.conc0_um + self.slope_um_per_step * step.wrapping_sub(self.step0) as f32).max(0.0)
    }
}

/// Connectivity rule codes.
pub const RULE_PROBABILITY: u32 = 0;
/// Fixed out-degree, procedural.
pub const RULE_OUTDEGREE: u32 = 1;
/// Explicit CSR table.
pub const RULE_TABLE: u32 = 2;
/// Fixed total number, procedural: the targets are drawn as for fixed out-degree,
/// each presynaptic neuron's out-degree kept as the span of its table row pointers
/// (`connectivity::out_degree`).
pub const RULE_TOTAL: u32 = 3;

/// Per-projection constants.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct ProjParams {
    /// First presynaptic neuron.
    pub pre_offset: u32,
    /// Presynaptic neurons.
    pub pre_size: u32,
    /// First postsynaptic neuron.
    pub post_offset: u32,
    /// Postsynaptic neurons.
    pub post_size: u32,
    /// Rule code (`RULE_*`).
    pub rule: u32,
    /// Receptor channel (0 AMPA, 1 GABA_A, 2 NMDA).
    pub receptor: u32,
    /// Delay in steps (>= 1).
    pub delay_steps: u32,
    /// Out-degree for `RULE_OUTDEGREE`.
    pub k: u32,
    /// Fixed-point weight added to the ring buffer per synaptic event.
    pub weight_fixed: i32,
    /// Random stream base (`STREAM_CONN | index * PROC_SPLIT`).
    pub stream: u32,
    /// 1 if a neuron may target itself (only matters when pre == post).
    pub autapses: u32,
    /// Index of the projection's first row pointer in the table-row buffer
    /// (`RULE_TABLE`, and `RULE_TOTAL`, whose rows hold only the out-degrees).
    pub table_base: u32,
    /// 1 / ln(1 - p) for geometric skipping (0 when p = 1).
    pub inv_ln_1mp: f32,
    /// 1 if pre and post are the same population.
    pub same_pop: u32,
    /// Low word of the seed of this projection's network (its random key is
    /// `(seed_lo, seed_hi ^ stream)`); per projection so that networks with different
    /// seeds can run side by side in one simulation (batched sweeps).
    pub seed_lo: u32,
    /// High word of the seed.
    pub seed_hi: u32,
    /// Mean weight in fixed-point units (LSB) for per-synapse normal weights.
    pub w_mean_fixed: f32,
    /// Standard deviation of the weight in fixed-point units; 0: every synapse has
    /// `weight_fixed`.
    pub w_sd_fixed: f32,
    /// Mean delay in steps for per-synapse normal delays.
    pub d_mean_steps: f32,
    /// Standard deviation of the delay in steps; 0: every synapse has `delay_steps`.
    pub d_sd_steps: f32,
}

/// Per-drive constants (Poisson background).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct DriveParams {
    /// Receptor channel.
    pub receptor: u32,
    /// Index of the drive in its network (its random stream).
    pub index: u32,
    /// Random key, low word: `key(seed, STREAM_POISSON | index)` of the drive's
    /// network.
    pub key_lo: u32,
    /// Random key, high word.
    pub key_hi: u32,
    /// Mean events per neuron per step.
    pub mean: f32,
    /// e^-mean.
    pub exp_neg_mean: f32,
    /// Jump per event (nS, or drive units for NMDA).
    pub weight: f32,
    /// First neuron of the drive's network: the Poisson counter is
    /// `(neuron - neuron_base, step)`, the neuron's index in its own network.
    pub neuron_base: u32,
}

/// Every parameter of a simulation. The kernels bind `sim` as a uniform block
/// (`sim: SimParams` in WGSL) and the three arrays as read-only storage buffers
/// (`pops`, `projs`, `drives`), so a simulation can hold as many populations,
/// projections and drives as `limits.rs` allows (thousands of small networks side by
/// side in a batch), not only what fits a 64 KiB uniform block.
#[derive(Debug, Clone)]
pub struct ParamsBlock {
    /// Whole-simulation constants (`n_pop`, `n_proj` give the lengths in use).
    pub sim: SimParams,
    /// Populations, ordered by `offset` (`n_pop` of them).
    pub pops: Vec<PopParams>,
    /// Projections (`n_proj`).
    pub projs: Vec<ProjParams>,
    /// Poisson drives, grouped by population (`drive_start`, `n_drives`).
    pub drives: Vec<DriveParams>,
}

impl ParamsBlock {
    /// All zero, with `n_pop` populations, `n_proj` projections and `n_drives` drives.
    pub fn zeroed(n_pop: usize, n_proj: usize, n_drives: usize) -> ParamsBlock {
        let mut sim = SimParams::zeroed();
        sim.n_pop = n_pop as u32;
        sim.n_proj = n_proj as u32;
        ParamsBlock {
            sim,
            pops: vec![PopParams::zeroed(); n_pop],
            projs: vec![ProjParams::zeroed(); n_proj],
            drives: vec![DriveParams::zeroed(); n_drives],
        }
    }

    /// Population of neuron `i`: the last population whose first neuron is at or
    /// before `i`, by binary search over the offsets (twin of `find_pop` in
    /// `shaders/common.wgsl`; populations are contiguous and ordered).
    pub fn find_pop(&self, i: u32) -> u32 {
        let (mut lo, mut hi) = (0u32, self.sim.n_pop);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if i >= self.pops[mid as usize].offset {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The projections a spike of population `pop` may leave through: its network's
    /// (`proj_first`, `proj_count`).
    pub fn proj_range(&self, pop: u32) -> std::ops::Range<usize> {
        let p = &self.pops[pop as usize];
        p.proj_first as usize..(p.proj_first + p.proj_count) as usize
    }
}

/// Fixed-point scale of the per-neuron local AMPA activation (LSB per nS/s) in the
/// population sums of the signalling readout; each neuron's value is rounded once.
pub const SIG_SCALE: f32 = 4096.0;
/// Fixed-point scale of the slow signalling state (LSB per unit) in its population
/// sums.
pub const SLOW_SCALE: f32 = 1_048_576.0;
/// Sums per population in the signalling read-back buffer (u64 each, as lo/hi u32):
/// [`SLOW_SIGNAL`] (local AMPA activation, nS/s, scale [`SIG_SCALE`]) and the slow
/// state (reference, BDNF, mTOR, protein, density; scale [`SLOW_SCALE`]).
pub const SLOW_SUMS_PER_POP: usize = 8;
/// Index of the local AMPA activation in a population's sums.
pub const SLOW_SIGNAL: usize = 0;
/// Index of the first slow-state sum (reference, BDNF, mTOR, protein, density follow).
pub const SLOW_STATE: usize = 1;

/// One population's entry of a slow call (`slow_pops`, a storage array beside the
/// [`SlowParams`] uniform).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct SlowPop {
    /// 1 if the population carries the slow state.
    pub on: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
    /// Mean local AMPA activation per neuron at the start of the interval (nS/s).
    pub a_start: f32,
    /// Mean local AMPA activation per neuron at its end (nS/s); the drive is
    /// interpolated linearly between the two, at each substep's midpoint.
    pub a_end: f32,
    /// Chronic set point of the synapse density (1 healthy; `stress_density` under
    /// chronic stress).
    pub s_set: f32,
    /// Padding.
    pub _pad3: f32,
}

/// Constants of one call of the slow signalling kernels (`shaders/slow_update.wgsl`,
/// `shaders/signal_sum.wgsl`), derived on the host in f64 and rounded once.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct SlowParams {
    /// 0: advance the state over `n_sub` substeps; 1: capture the baseline (the
    /// reference becomes `a_end`, BDNF and mTOR their resting level, protein 1).
    pub mode: u32,
    /// Substeps.
    pub n_sub: u32,
    /// Hill coefficient n of the AMPA-activation drive.
    pub hill_n: u32,
    /// Padding.
    pub _pad0: u32,
    /// `signal_sum`: 1 / (interval over which the accumulators were filled, s).
    pub inv_interval_s: f32,
    /// 1 - exp(-h / tau_adapt): adaptation of the reference per substep.
    pub adapt_rate: f32,
    /// 1 - exp(-h / tau_bdnf).
    pub bdnf_rate: f32,
    /// 1 - exp(-h / tau_mtor).
    pub mtor_rate: f32,
    /// 1 - exp(-h / tau_protein).
    pub protein_rate: f32,
    /// K^n of the Hill drive.
    pub hill_k_pow: f32,
    /// Resting mTOR (and BDNF) level: D(1) = 1 / (1 + K^n).
    pub m_rest: f32,
    /// 1 - mtor_block (rapamycin) in this interval.
    pub mtor_gain: f32,
    /// 1 - bdnf_block in this interval.
    pub bdnf_gain: f32,
    /// Growth rate constant (per hour per unit of protein above threshold).
    pub growth_per_h: f32,
    /// Protein excess over basal (P - 1) below which no synapses form.
    pub threshold: f32,
    /// Highest synapse density growth approaches.
    pub max_density: f32,
    /// 1 / tau_loss (per hour): return of the density to its set point.
    pub loss_per_h: f32,
    /// Substep length (h).
    pub h_hours: f32,
    /// Padding.
    pub _pad1: f32,
    /// Padding.
    pub _pad2: f32,
}

const _: () = assert!(std::mem::size_of::<SlowPop>() == 32);
const _: () = assert!(std::mem::size_of::<SlowParams>().is_multiple_of(16));
const _: () = assert!(std::mem::size_of::<SimParams>() == 80);
const _: () = assert!(std::mem::size_of::<PopParams>() == 208);
const _: () = assert!(std::mem::size_of::<PoolParams>() == 32);
const _: () = assert!(std::mem::size_of::<ProjParams>() == 80);
const _: () = assert!(std::mem::size_of::<DriveParams>() == 32);

/// Per-step control words of the CPU twin (one step at a time).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct Ctrl {
    /// Current step.
    pub step: u32,
    /// Spikes emitted so far in this step.
    pub n_spikes: u32,
    /// Spikes of the step being propagated.
    pub prop_n: u32,
    /// Step being propagated.
    pub prop_step: u32,
    /// Spike-record entries written this batch.
    pub n_rec: u32,
    /// Padding.
    pub _pad: [u32; 3],
}

/// Control words of one chunk of fused steps on the GPU (`ChunkCtrl` in WGSL).
///
/// The GPU keeps two ([`GpuCtrl::chunks`]) and alternate chunks use alternate slots
/// (`SimParams::parity`), so that no kernel of its own is needed between the neuron
/// update and the propagation: the neuron update of a chunk counts its spikes and
/// sizes the propagation's dispatch in its own slot, and sets up the other slot for
/// the next chunk (its first step, no spikes, a dispatch of one workgroup), which the
/// previous chunk's propagation has finished with.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct ChunkCtrl {
    /// Indirect dispatch size of the chunk's propagation (x, y, z), raised by every
    /// spike (atomic max) to x = max(1, min(g, MAX_WG_DIM)),
    /// y = max(1, min(ceil(g / MAX_WG_DIM), MAX_WG_DIM)), z = 1 for g = n x
    /// spike_groups workgroups, n spikes: `SimParams::spike_groups` workgroups per
    /// spike, and at least one, which also advances the glutamate pools through the
    /// chunk. The host keeps g within MAX_WG_DIM^2
    /// (`gpu::backend::dispatch_bounded_spike_groups`).
    pub dispatch_x: u32,
    /// See `dispatch_x`.
    pub dispatch_y: u32,
    /// See `dispatch_x` (always 1).
    pub dispatch_z: u32,
    /// Spikes emitted in the chunk (atomic on the device).
    pub n_spikes: u32,
    /// First step of the chunk.
    pub step: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
}

impl ChunkCtrl {
    /// The slot as the neuron update leaves it for a chunk starting at `step`.
    pub fn starting_at(step: u32) -> ChunkCtrl {
        ChunkCtrl {
            dispatch_x: 1,
            dispatch_y: 1,
            dispatch_z: 1,
            step,
            ..ChunkCtrl::default()
        }
    }
}

/// Control words on the GPU (`GpuCtrl` in WGSL): the two chunk slots, then the words
/// shared by every chunk of a read-back batch.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct GpuCtrl {
    /// The slots of alternate chunks (see [`ChunkCtrl`]).
    pub chunks: [ChunkCtrl; 2],
    /// Spike-record entries written this batch (atomic on the device).
    pub n_rec: u32,
    /// Step at which the current read-back batch ends (set by the host before each
    /// batch): no chunk of fused steps crosses it.
    pub batch_end: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
}

/// Byte offset of `GpuCtrl::n_rec` (the host resets it and sets `batch_end` before
/// each batch).
pub const GPU_CTRL_SHARED_OFFSET: u64 = std::mem::offset_of!(GpuCtrl, n_rec) as u64;

const _: () = assert!(std::mem::size_of::<ChunkCtrl>() == 32);
const _: () = assert!(std::mem::size_of::<GpuCtrl>() == 80);

/// Fixed-point scale of released vesicles in the per-step release sums (LSB per
/// vesicle); each spike's release is rounded once.
pub const GLU_SCALE: f32 = 1_048_576.0;

/// Per-neuron inter-spike-interval accumulators (`IsiStat` in WGSL).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct IsiStat {
    /// Step of the last spike (`NO_SPIKE` if none).
    pub last_step: u32,
    /// Number of intervals.
    pub count: u32,
    /// Sum of intervals (steps).
    pub sum_steps: u32,
    /// Sum of squared intervals (steps^2).
    pub sum_sq: f32,
}
