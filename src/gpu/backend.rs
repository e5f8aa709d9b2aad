//! GPU backend: buffers one per state variable (so no binding exceeds the adapter's
//! limit), pipelines and bind groups built once, many steps encoded per submit, and
//! small read-backs per batch (spike counts, population sums, recorded spikes).

use std::borrow::Cow;
use std::sync::mpsc;

use bytemuck::Zeroable;
use wgpu::util::DeviceExt;

use super::context::GpuContext;
use super::shaders::{self, Kernel};
use super::strict;
use crate::backend::{Backend, BackendKind, BatchOutput, Sample, Unstable};
use crate::error::{Error, Result};
use crate::model::layout::{
    ChunkCtrl, DrugParams, GpuCtrl, IsiStat, SimParams, SlowParams, SlowPop,
    GPU_CTRL_SHARED_OFFSET, SLOW_SUMS_PER_POP,
};
use crate::model::limits::{
    pop_counts_words, CLIP_ENTRY, MAX_NMDA_POOLS, MAX_SPIKE_GROUPS, MAX_WORKGROUPS_PER_DIM,
    REDUCE_WORKGROUP_SIZE, SAMPLE_ENTRIES_PER_POP, STATS_PER_POP,
};
use crate::model::memory::{self, DeviceLimits};
use crate::model::{Network, NeuronState};

/// Device buffers, named as in the shaders.
struct Buffers {
    /// `SimParams` (uniform), twice: with `parity` 0 at offset 0 and with `parity` 1
    /// at `sim_stride` (see [`ChunkCtrl`]); bind group `p` of each kernel binds copy
    /// `p`.
    sim: wgpu::Buffer,
    /// Population, projection and drive parameters (storage, one entry at least).
    pops: wgpu::Buffer,
    projs: wgpu::Buffer,
    drives: wgpu::Buffer,
    v: wgpu::Buffer,
    refrac: wgpu::Buffer,
    g_ampa: wgpu::Buffer,
    g_gaba: wgpu::Buffer,
    x_nmda: wgpu::Buffer,
    pools: [wgpu::Buffer; 2],
    drug: wgpu::Buffer,
    glu_r: wgpu::Buffer,
    glu_release: wgpu::Buffer,
    glu_state: wgpu::Buffer,
    glu_trace: wgpu::Buffer,
    isi: wgpu::Buffer,
    ring: [wgpu::Buffer; 3],
    spikes: wgpu::Buffer,
    /// `GpuCtrl`; also the propagation's indirect dispatch sizes (storage and
    /// indirect).
    ctrl: wgpu::Buffer,
    pop_counts: wgpu::Buffer,
    samples: wgpu::Buffer,
    rec: wgpu::Buffer,
    table_rows: wgpu::Buffer,
    table_cols: wgpu::Buffer,
    /// Slow signalling per neuron: (density, accumulated local AMPA input); 8 bytes
    /// when the network has no signalling population.
    sig_nrn: wgpu::Buffer,
    /// Slow signalling state per neuron (reference, BDNF, mTOR, protein).
    slow_state: wgpu::Buffer,
    /// `SlowParams` of the current slow call.
    slow_params: wgpu::Buffer,
    /// Per-population entries of the current slow call (`SlowPop`, `n_pop`).
    slow_pops: wgpu::Buffer,
    /// Population sums of the slow kernels (u64 as lo/hi u32).
    slow_sums: wgpu::Buffer,
    /// Read-back copies of pop_counts, samples, ctrl, glu_release and glu_trace,
    /// mapped once per batch.
    staging: [wgpu::Buffer; 5],
}

struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    /// One per chunk-control slot: `bind_groups[p]` binds the `SimParams` copy with
    /// `parity` p.
    bind_groups: [wgpu::BindGroup; 2],
}

/// The wgpu backend.
pub struct GpuBackend {
    ctx: GpuContext,
    net_n: u32,
    n_pop: u32,
    sim: SimParams,
    /// Bytes between the two `SimParams` copies (the adapter's uniform offset
    /// alignment).
    sim_stride: u64,
    step: u64,
    /// Chunk-control slot of the next chunk (`SimParams::parity`).
    parity: usize,
    buf: Buffers,
    neuron: Pipeline,
    reduce: Pipeline,
    propagate: Pipeline,
    /// `signal_sum` and `slow_update`, when the network has signalling populations.
    slow: Option<(Pipeline, Pipeline)>,
    grid: (u32, u32),
    /// The population-sum kernel's grid (`REDUCE_WORKGROUP_SIZE` per workgroup).
    reduce_grid: (u32, u32),
    /// Threads per workgroup of the per-neuron kernels (`workgroup_size`).
    wg_size: u32,
    timing: Option<KernelTiming>,
    host: HostTimes,
    /// Chunks of fused steps per submission (`chunks_per_submit_from_env`).
    chunks_per_submit: usize,
}

/// Chunks of fused steps per submission within a batch (`GpuBackend::run_batch`):
/// the batch's commands go to the device in submissions of this many chunks, so that
/// the device starts on the first while the host records the rest; only the first
/// submission's recording leaves the device idle. At the microcircuit's one step per
/// chunk that is 32 steps: about 0.1 ms of the host's recording (3.4-4.0 µs per
/// one-step chunk of COBA, measured on this project's 2-core machine) against at least
/// 0.8 ms of device time at issue 6's target of 25 µs per step. [`SUBMIT_ENV`] sets another. No result depends on it.
pub const CHUNKS_PER_SUBMIT: usize = 32;

/// Environment variable that sets the chunks per submission in place of
/// [`CHUNKS_PER_SUBMIT`]: a positive whole number; a number at least the batch's
/// chunks (e.g. 1000000) sends each batch in one submission, as before 2026-12-04,
/// for measuring what the split saves. No result depends on it.
pub const SUBMIT_ENV: &str = "KETASIM_GPU_CHUNKS_PER_SUBMIT";

/// The chunks per submission: [`SUBMIT_ENV`] if set (an error naming it if it is not
/// a positive whole number), else [`CHUNKS_PER_SUBMIT`].
pub fn chunks_per_submit_from_env() -> Result<usize> {
    let n = u32_from_env(
        SUBMIT_ENV,
        |n| n >= 1,
        "is not a positive whole number of chunks: give e.g. 1000000 (each batch in one submission), or unset it",
    )?;
    Ok(n.map_or(CHUNKS_PER_SUBMIT, |n| n as usize))
}

/// Host (CPU) time spent recording and submitting batches
/// ([`GpuBackend::host_times`]): the part of a run the device may spend idle.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct HostTimes {
    /// Batches run.
    pub batches: u64,
    /// Steps those batches advanced.
    pub steps: u64,
    /// Submissions (`GpuBackend::chunks_per_submit` chunks each, the last of a batch
    /// fewer; timed chunks go with the first).
    pub submits: u64,
    /// Recording every command of each batch, summed (ns): from the start of the
    /// batch to its last submission, less the time inside `Queue::submit`. All but
    /// the first submission's share overlaps the device's work on the batch's
    /// earlier submissions.
    pub record_ns: f64,
    /// Inside `Queue::submit`, summed (ns). Drivers differ: lavapipe's (Mesa 22.3)
    /// blocks while an earlier submission still runs, so there this is most of the
    /// device's time (measured on this project's machine); where a driver queues the
    /// work and returns, it is short.
    pub submit_ns: f64,
    /// From the start of each batch to its first submission, summed (ns): recording
    /// the device cannot overlap with the batch's own work, as it has none yet.
    pub exposed_ns: f64,
}

/// The kernels a step dispatches, in the order of [`GpuBackend::kernel_times`].
pub const KERNEL_NAMES: [&str; 3] = [
    shaders::NEURON_UPDATE.name,
    shaders::REDUCE_STATS.name,
    shaders::PROPAGATE.name,
];
const K_NEURON: usize = 0;
const K_REDUCE: usize = 1;
const K_PROPAGATE: usize = 2;
const N_KERNELS: usize = KERNEL_NAMES.len();

/// Timestamp pairs one step can need (one per kernel).
const PAIRS_PER_STEP: u32 = KERNEL_NAMES.len() as u32;

/// Most steps per batch whose kernels are timed: two timestamps per kernel dispatch
/// must fit one query set (`wgpu::QUERY_SET_MAX_QUERIES`, 4096).
pub const MAX_TIMED_STEPS_PER_BATCH: u32 = wgpu::QUERY_SET_MAX_QUERIES / (2 * PAIRS_PER_STEP);

/// Accumulated GPU time of one kernel (from timestamp queries).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KernelTime {
    /// Kernel name (`neuron_update`, `reduce_stats`, `propagate`).
    pub name: String,
    /// Timed dispatches.
    pub dispatches: u64,
    /// Steps the timed chunks advanced (the same for every kernel): a dispatch of
    /// the neuron update and of `propagate` covers a chunk of up to
    /// `SimParams::fuse_steps` steps; `reduce_stats` runs once after each chunk that
    /// ends at a sample step.
    pub steps: u64,
    /// GPU time of those dispatches (ns): end minus beginning timestamp of each
    /// kernel's own compute pass, summed.
    pub total_ns: f64,
    /// `total_ns / dispatches` (0 without dispatches): time per dispatch. Every
    /// kernel but `reduce_stats` runs once per chunk of fused steps; `reduce_stats`
    /// on sample steps only.
    pub mean_ns: f64,
    /// `total_ns / steps` (0 without steps): time per simulated step (for
    /// `reduce_stats`, spread over all steps, sample steps or not).
    pub ns_per_step: f64,
}

/// Per-kernel timing state: a query set for the first `steps_per_batch` chunks of
/// fused steps of every batch, resolved and read back with the batch's other
/// read-backs.
struct KernelTiming {
    query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
    steps_per_batch: u32,
    total_ns: [f64; N_KERNELS],
    dispatches: [u64; N_KERNELS],
    /// Steps of the timed chunks.
    steps: u64,
}

pub(super) const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

pub(super) fn init_buffer(
    device: &wgpu::Device,
    label: &str,
    data: &[u8],
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: data,
        usage,
    })
}

fn zero_buffer(device: &wgpu::Device, label: &str, bytes: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4).next_multiple_of(4),
        usage: STORAGE,
        mapped_at_creation: false,
    })
}

pub(super) fn staging(device: &wgpu::Device, label: &str, bytes: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4).next_multiple_of(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Environment variable that caps the steps one neuron-update dispatch advances
/// (`SimParams::fuse_steps`; a positive whole number, 1 turns fusion off). Read when
/// a GPU backend is created. Results do not depend on it.
pub const FUSE_ENV: &str = "KETASIM_FUSE_STEPS";

/// The whole number in environment variable `name`, if set; an error naming it and
/// saying `wanted` unless it parses and passes `valid`.
fn u32_from_env(name: &str, valid: impl Fn(u32) -> bool, wanted: &str) -> Result<Option<u32>> {
    let Some(value) = std::env::var_os(name) else {
        return Ok(None);
    };
    match value.to_str().map(|v| v.trim().parse::<u32>()) {
        Some(Ok(n)) if valid(n) => Ok(Some(n)),
        _ => Err(Error::Capacity(format!(
            "environment variable {name}={value:?} {wanted}"
        ))),
    }
}

/// The cap asked for by [`FUSE_ENV`], if set (an error naming it if it is not a
/// positive whole number).
pub fn fuse_steps_from_env() -> Result<Option<u32>> {
    u32_from_env(
        FUSE_ENV,
        |n| n >= 1,
        "is not a positive whole number of steps: give e.g. 1 (no fusion), or unset it",
    )
}

/// `fuse_steps` (what a network allows) capped by [`FUSE_ENV`] where it is set.
pub fn capped_fuse_steps(fuse_steps: u32) -> Result<u32> {
    Ok(fuse_steps.min(fuse_steps_from_env()?.unwrap_or(u32::MAX)))
}

/// Environment variable that sets `SimParams::spike_groups` (1 to
/// `MAX_SPIKE_GROUPS`) in place of the network's own choice: for measuring the
/// propagation's split on a GPU (`KETASIM_SPIKE_GROUPS=1` is one workgroup per
/// spike). No result depends on it.
pub const SPIKE_GROUPS_ENV: &str = "KETASIM_SPIKE_GROUPS";

/// The workgroups per spike asked for by [`SPIKE_GROUPS_ENV`], if set (an error
/// naming it if it is not a whole number from 1 to `MAX_SPIKE_GROUPS`).
pub fn spike_groups_from_env() -> Result<Option<u32>> {
    u32_from_env(
        SPIKE_GROUPS_ENV,
        |n| (1..=MAX_SPIKE_GROUPS).contains(&n),
        &format!("is not a whole number from 1 to {MAX_SPIKE_GROUPS}: give e.g. 1 (one workgroup per spike), or unset it"),
    )
}

/// Environment variable that compiles the kernels with every code path
/// (`GpuContext::all_paths`): `1`, or `0` for the default (only the network's paths).
pub const ALL_PATHS_ENV: &str = "KETASIM_GPU_ALL_PATHS";

/// Whether the 0-or-1 environment variable `name` is 1 (unset: no); an error naming
/// it for any other value, saying that 1 means `what`.
fn flag_from_env(name: &str, what: &str) -> Result<bool> {
    let wanted = format!("is neither 0 nor 1: give 1 ({what}) or unset it");
    Ok(u32_from_env(name, |n| n <= 1, &wanted)? == Some(1))
}

/// Whether [`ALL_PATHS_ENV`] asks for every code path (an error naming it unless it
/// is 0 or 1).
pub fn all_paths_from_env() -> Result<bool> {
    flag_from_env(ALL_PATHS_ENV, "compile every code path")
}

/// Environment variable that chooses where the neuron update keeps its population's
/// parameters across a chunk of fused steps (`GpuContext::hold_params`): `1` held in
/// registers, `0` for the default (read again in every step).
pub const HOLD_PARAMS_ENV: &str = "KETASIM_GPU_HOLD_PARAMS";

/// Whether [`HOLD_PARAMS_ENV`] asks to hold the parameters (an error naming it
/// unless it is 0 or 1).
pub fn hold_params_from_env() -> Result<bool> {
    flag_from_env(HOLD_PARAMS_ENV, "hold the parameters across a chunk")
}

/// Environment variable that sets the per-neuron kernels' workgroup size in place of
/// `GpuContext::workgroup_size`: for measuring it on a GPU. No result depends on it.
pub const WG_SIZE_ENV: &str = "KETASIM_WG_SIZE";

/// The workgroup size for the per-neuron kernels: [`WG_SIZE_ENV`] if set, else
/// `default`; an error naming its source unless it is a power of two from 32 to
/// `max_invocations` (the adapter's invocations per workgroup) and to 1024
/// (WebGPU's most).
pub fn workgroup_size(default: u32, max_invocations: u32) -> Result<u32> {
    let most = max_invocations.min(1024);
    let valid = |n: u32| n.is_power_of_two() && (32..=most).contains(&n);
    let wanted = format!(
        "is not a power of two from 32 to {most} (this adapter's limit): give e.g. 64 or 256, or unset it"
    );
    match u32_from_env(WG_SIZE_ENV, valid, &wanted)? {
        Some(n) => Ok(n),
        None if valid(default) => Ok(default),
        None => Err(Error::Capacity(format!(
            "workgroup size {default} {wanted}"
        ))),
    }
}

/// Workgroups per spike (`SimParams::spike_groups`, `wanted` or fewer) that keep the
/// propagation's indirect dispatch within the device's limits for `n_total` neurons.
///
/// A chunk holds at most `n_total` spikes (each neuron fires at most once per chunk),
/// and the neuron update sizes the dispatch to `spikes x spike_groups` workgroups,
/// `x = min(groups, MAX_WG_DIM)` and `y = ceil(groups / MAX_WG_DIM)`, each clamped to
/// `MAX_WG_DIM` (`on_spike` in shaders/neuron_update.wgsl). So
/// `n_total x spike_groups <= MAX_WG_DIM x min(MAX_WG_DIM, max_dim)` (which also keeps
/// the shader's u32 product from wrapping) means the clamp never cuts a spike off.
/// wgpu no longer checks indirect dispatches (`context::instance_descriptor`); where
/// it did, a dispatch past the limit was zeroed and the chunk's spikes silently
/// dropped. Fewer workgroups per spike change no result, only how many invocations
/// share a spike's synapses. Errors if the device is below WebGPU's minimum of
/// `MAX_WG_DIM` workgroups per dimension, or if even one workgroup per spike would not
/// fit (over 4.29e9 neurons).
pub fn dispatch_bounded_spike_groups(wanted: u32, n_total: u32, max_dim: u32) -> Result<u32> {
    if max_dim < MAX_WORKGROUPS_PER_DIM {
        return Err(Error::Capacity(format!(
            "the device dispatches at most {max_dim} workgroups per dimension; ketasim needs WebGPU's minimum, {MAX_WORKGROUPS_PER_DIM}"
        )));
    }
    let most = u64::from(MAX_WORKGROUPS_PER_DIM) * u64::from(MAX_WORKGROUPS_PER_DIM);
    let fit = most / u64::from(n_total.max(1));
    if fit == 0 {
        return Err(Error::Capacity(format!(
            "{n_total} neurons: one propagation workgroup per spike of a chunk in which every neuron fired would exceed {MAX_WORKGROUPS_PER_DIM} x {MAX_WORKGROUPS_PER_DIM} workgroups; simulate at most {most} neurons per device"
        )));
    }
    Ok(u64::from(wanted).min(fit) as u32)
}

/// Finish `enc` and submit it; returns when the submission began (after recording)
/// and the ns spent inside `Queue::submit` (`HostTimes`).
fn submit_timed(queue: &wgpu::Queue, enc: wgpu::CommandEncoder) -> (std::time::Instant, f64) {
    let commands = enc.finish();
    let at = std::time::Instant::now();
    queue.submit([commands]);
    (at, at.elapsed().as_nanos() as f64)
}

/// Workgroup grid covering `n` invocations of `wg_size`, spilling into y.
pub(super) fn grid_for(n: u32, wg_size: u32) -> (u32, u32) {
    let groups = n.div_ceil(wg_size).max(1);
    let x = groups.min(MAX_WORKGROUPS_PER_DIM);
    (x, groups.div_ceil(x))
}

impl GpuBackend {
    /// Threads per workgroup of the per-neuron kernels, as chosen at creation
    /// (`GpuContext::workgroup_size`, or `KETASIM_WG_SIZE`).
    pub fn workgroup_size(&self) -> u32 {
        self.wg_size
    }

    /// Check the memory plan against the adapter, allocate, upload and build the
    /// pipelines. Fails (never panics) on too little memory or any wgpu error.
    pub fn new(ctx: GpuContext, net: &Network) -> Result<GpuBackend> {
        let lim = DeviceLimits {
            max_binding: ctx.limits.max_storage_buffer_binding_size,
            max_buffer: ctx.limits.max_buffer_size,
            memory_budget: None,
        };
        let plan = memory::check(&net.scenario, net.params.sim.count_capacity, &lim)?;
        let device = &ctx.device;
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let valid = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let st = net.initial_state();
        let n = net.n as u64;
        let slots = net.params.sim.ring_slots as u64;
        let mut sim = net.params.sim;
        sim.fuse_steps = capped_fuse_steps(sim.fuse_steps)?;
        if !ctx.split_spikes {
            sim.spike_groups = 1;
        }
        let env_groups = spike_groups_from_env()?;
        if let Some(groups) = env_groups {
            sim.spike_groups = groups;
        }
        let bounded = dispatch_bounded_spike_groups(
            sim.spike_groups,
            sim.n_total,
            ctx.limits.max_compute_workgroups_per_dimension,
        )?;
        if let Some(groups) = env_groups.filter(|&g| g != bounded) {
            return Err(Error::Capacity(format!(
                "{SPIKE_GROUPS_ENV}={groups} would size the propagation's dispatch beyond the device's limit for {} neurons: give at most {bounded}, or unset it",
                sim.n_total
            )));
        }
        sim.spike_groups = bounded;
        let wg_size = workgroup_size(
            ctx.workgroup_size,
            ctx.limits.max_compute_invocations_per_workgroup,
        )?;
        let division = shaders::division_from_env()?;
        let chunks_per_submit = chunks_per_submit_from_env()?;
        let sim_stride = sim_stride(&ctx.limits);
        let f32s =
            |label: &str, v: &[f32]| init_buffer(device, label, bytemuck::cast_slice(v), STORAGE);
        // Storage arrays are never empty (a zeroed entry stands in).
        fn non_empty<T: bytemuck::Pod + bytemuck::Zeroable>(v: &[T]) -> Cow<'_, [T]> {
            if v.is_empty() {
                Cow::Owned(vec![T::zeroed()])
            } else {
                Cow::Borrowed(v)
            }
        }
        let rows = non_empty(&net.tables.rows);
        let cols = non_empty(&net.tables.cols);
        let prm = &net.params;
        let buf = Buffers {
            sim: init_buffer(
                device,
                "sim",
                &sim_copies(&sim, sim_stride),
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            pops: init_buffer(
                device,
                "pops",
                bytemuck::cast_slice(&non_empty(&prm.pops[..sim.n_pop as usize])),
                STORAGE,
            ),
            projs: init_buffer(
                device,
                "projs",
                bytemuck::cast_slice(&non_empty(&prm.projs[..sim.n_proj as usize])),
                STORAGE,
            ),
            drives: init_buffer(
                device,
                "drives",
                bytemuck::cast_slice(&non_empty(&prm.drives)),
                STORAGE,
            ),
            v: f32s("v", &st.v),
            refrac: init_buffer(device, "refrac", bytemuck::cast_slice(&st.refrac), STORAGE),
            g_ampa: f32s("g_ampa", &st.g_ampa),
            g_gaba: f32s("g_gaba", &st.g_gaba),
            x_nmda: f32s("x_nmda", &st.x_nmda),
            pools: [
                init_buffer(
                    device,
                    "nmda_pool0",
                    bytemuck::cast_slice(&st.pools[0]),
                    STORAGE,
                ),
                init_buffer(
                    device,
                    "nmda_pool1",
                    bytemuck::cast_slice(&st.pools[1]),
                    STORAGE,
                ),
            ],
            drug: init_buffer(
                device,
                "drug",
                bytemuck::bytes_of(&net.drug_at(0, 1)),
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            glu_r: f32s("glu_r", &st.glu_r),
            glu_release: zero_buffer(
                device,
                "glu_release",
                8 * (sim.count_capacity * sim.n_pop) as u64,
            ),
            glu_state: {
                let mut g = net.initial_glutamate();
                g.resize(sim.n_pop.max(1) as usize, 0.0);
                f32s("glu_state", &g)
            },
            glu_trace: zero_buffer(
                device,
                "glu_trace",
                4 * (sim.count_capacity * sim.n_pop) as u64,
            ),
            isi: init_buffer(device, "isi", bytemuck::cast_slice(&st.isi), STORAGE),
            ring: [
                zero_buffer(device, "ring_ampa", 4 * n * slots),
                zero_buffer(device, "ring_gaba", 4 * n * slots),
                zero_buffer(device, "ring_nmda", 4 * n * slots),
            ],
            spikes: zero_buffer(device, "spikes", 8 * n),
            ctrl: init_buffer(
                device,
                "ctrl",
                bytemuck::bytes_of(&GpuCtrl {
                    chunks: [ChunkCtrl::starting_at(0); 2],
                    ..GpuCtrl::default()
                }),
                STORAGE | wgpu::BufferUsages::INDIRECT,
            ),
            pop_counts: zero_buffer(
                device,
                "pop_counts",
                4 * pop_counts_words(sim.count_capacity as u64, sim.n_pop as u64),
            ),
            samples: zero_buffer(
                device,
                "samples",
                8 * (sim.sample_capacity as usize * sim.n_pop as usize * SAMPLE_ENTRIES_PER_POP)
                    as u64,
            ),
            rec: zero_buffer(device, "spike_record", 8 * sim.rec_capacity as u64),
            table_rows: init_buffer(device, "table_rows", bytemuck::cast_slice(&rows), STORAGE),
            table_cols: init_buffer(device, "table_cols", bytemuck::cast_slice(&cols), STORAGE),
            sig_nrn: if net.has_signalling() {
                init_buffer(
                    device,
                    "sig_nrn",
                    bytemuck::cast_slice(&st.sig_nrn),
                    STORAGE,
                )
            } else {
                zero_buffer(device, "sig_nrn", 8)
            },
            slow_state: zero_buffer(
                device,
                "slow_state",
                if net.has_signalling() { 16 * n } else { 16 },
            ),
            slow_params: init_buffer(
                device,
                "slow_params",
                bytemuck::bytes_of(&SlowParams::zeroed()),
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            slow_pops: zero_buffer(
                device,
                "slow_pops",
                (std::mem::size_of::<SlowPop>() * sim.n_pop as usize) as u64,
            ),
            slow_sums: zero_buffer(device, "slow_sums", slow_sums_bytes(sim.n_pop)),
            staging: [
                staging(
                    device,
                    "pop_counts_staging",
                    4 * pop_counts_words(sim.count_capacity as u64, sim.n_pop as u64),
                ),
                staging(
                    device,
                    "samples_staging",
                    8 * (sim.sample_capacity as usize * sim.n_pop as usize * SAMPLE_ENTRIES_PER_POP)
                        as u64,
                ),
                staging(
                    device,
                    "ctrl_staging",
                    std::mem::size_of::<GpuCtrl>() as u64,
                ),
                staging(
                    device,
                    "glu_release_staging",
                    8 * (sim.count_capacity * sim.n_pop) as u64,
                ),
                staging(
                    device,
                    "glu_trace_staging",
                    4 * (sim.count_capacity * sim.n_pop) as u64,
                ),
            ],
        };
        let b = &buf;
        let config = shaders::KernelConfig {
            wg_size,
            features: if ctx.all_paths || all_paths_from_env()? {
                shaders::Features::ALL
            } else {
                shaders::Features::of(&net.params)
            },
            reread_params: !(ctx.hold_params || hold_params_from_env()?),
        };
        let pipeline = |kernel: &Kernel, buffers: &[&wgpu::Buffer]| {
            make_pipeline(
                device,
                kernel,
                ctx.strict_float,
                division,
                &config,
                sim_stride,
                buffers,
            )
        };
        let neuron = pipeline(
            &shaders::NEURON_UPDATE,
            &[
                &b.sim,
                &b.pops,
                &b.v,
                &b.refrac,
                &b.g_ampa,
                &b.g_gaba,
                &b.x_nmda,
                &b.pools[0],
                &b.pools[1],
                &b.isi,
                &b.ring[0],
                &b.ring[1],
                &b.ring[2],
                &b.spikes,
                &b.ctrl,
                &b.pop_counts,
                &b.rec,
                &b.drug,
                &b.glu_r,
                &b.glu_release,
                &b.sig_nrn,
                &b.drives,
            ],
        )?;
        let slow = if net.has_signalling() {
            Some((
                pipeline(
                    &shaders::SIGNAL_SUM,
                    &[&b.sim, &b.pops, &b.slow_params, &b.sig_nrn, &b.slow_sums],
                )?,
                pipeline(
                    &shaders::SLOW_UPDATE,
                    &[
                        &b.sim,
                        &b.pops,
                        &b.slow_params,
                        &b.sig_nrn,
                        &b.slow_state,
                        &b.slow_sums,
                        &b.slow_pops,
                    ],
                )?,
            ))
        } else {
            None
        };
        let reduce = pipeline(
            &shaders::REDUCE_STATS,
            &[
                &b.sim,
                &b.pops,
                &b.v,
                &b.g_ampa,
                &b.g_gaba,
                &b.pools[0],
                &b.pools[1],
                &b.ctrl,
                &b.samples,
            ],
        )?;
        let propagate = pipeline(
            &shaders::PROPAGATE,
            &[
                &b.sim,
                &b.pops,
                &b.spikes,
                &b.ctrl,
                &b.ring[0],
                &b.ring[1],
                &b.ring[2],
                &b.table_rows,
                &b.table_cols,
                &b.projs,
                &b.glu_release,
                &b.glu_state,
                &b.glu_trace,
            ],
        )?;
        let valid_err = pollster::block_on(valid.pop());
        let oom_err = pollster::block_on(oom.pop());
        if let Some(e) = oom_err {
            return Err(Error::Capacity(format!(
                "the device ran out of memory allocating the network ({:.1} MiB planned, {} bytes per neuron): {e}. Shrink the populations or the longest delay",
                plan.total_bytes as f64 / (1024.0 * 1024.0),
                plan.bytes_per_neuron
            )));
        }
        if let Some(e) = valid_err {
            return Err(Error::Gpu(format!("setting up the kernels failed: {e}")));
        }
        ctx.check_uncaptured()?;
        Ok(GpuBackend {
            grid: grid_for(net.n, wg_size),
            reduce_grid: grid_for(net.n, REDUCE_WORKGROUP_SIZE),
            wg_size,
            net_n: net.n,
            n_pop: sim.n_pop,
            sim,
            sim_stride,
            step: 0,
            parity: 0,
            buf,
            neuron,
            reduce,
            propagate,
            slow,
            ctx,
            timing: None,
            host: HostTimes::default(),
            chunks_per_submit,
        })
    }

    /// Host time spent recording and submitting the batches run so far.
    pub fn host_times(&self) -> HostTimes {
        self.host
    }

    /// Time every kernel dispatch of the first [`MAX_TIMED_STEPS_PER_BATCH`] steps of
    /// each following batch with GPU timestamps. See
    /// [`GpuBackend::enable_kernel_timing_for`].
    pub fn enable_kernel_timing(&mut self) -> Result<bool> {
        self.enable_kernel_timing_for(MAX_TIMED_STEPS_PER_BATCH)
    }

    /// Time every kernel dispatch of the first `steps_per_batch` chunks of fused
    /// steps (one step each without fusion; at most [`MAX_TIMED_STEPS_PER_BATCH`]) of
    /// each following batch. Those chunks run each kernel in a compute pass of its own
    /// with a timestamp at its beginning and end (the other chunks share one pass, as
    /// without timing); the timestamps are
    /// resolved in the batch's submission and read back with its other read-backs,
    /// once per batch. The results are unchanged (only pass boundaries move).
    ///
    /// Returns `false`, and changes nothing, when the device lacks
    /// `TIMESTAMP_QUERY` (the context must come from `GpuContext::with_timestamps`
    /// on an adapter that has it). Calling it again resets the accumulated times.
    pub fn enable_kernel_timing_for(&mut self, steps_per_batch: u32) -> Result<bool> {
        if !self
            .ctx
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return Ok(false);
        }
        let steps_per_batch = steps_per_batch.clamp(1, MAX_TIMED_STEPS_PER_BATCH);
        let queries = 2 * PAIRS_PER_STEP * steps_per_batch;
        let bytes = queries as u64 * wgpu::QUERY_SIZE as u64;
        let device = &self.ctx.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let query_set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("kernel_timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: queries,
        });
        let resolve = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel_timestamps_resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = staging(device, "kernel_timestamps_staging", bytes);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!(
                "setting up timestamp queries failed: {e}"
            )));
        }
        self.timing = Some(KernelTiming {
            query_set,
            resolve,
            staging,
            period_ns: self.ctx.queue.get_timestamp_period() as f64,
            steps_per_batch,
            total_ns: [0.0; N_KERNELS],
            dispatches: [0; N_KERNELS],
            steps: 0,
        });
        Ok(true)
    }

    /// Chunks of fused steps per submission within a batch ([`CHUNKS_PER_SUBMIT`]
    /// unless [`SUBMIT_ENV`] says otherwise).
    pub fn chunks_per_submit(&self) -> usize {
        self.chunks_per_submit
    }

    /// Steps one neuron-update dispatch advances at most (`SimParams::fuse_steps`).
    pub fn fuse_steps(&self) -> u32 {
        self.sim.fuse_steps
    }

    /// Cap the steps one neuron-update dispatch advances (1: one step per dispatch);
    /// never above what the network allows. Results do not change, only the number
    /// of dispatches and the memory traffic.
    pub fn limit_fuse_steps(&mut self, limit: u32) {
        self.sim.fuse_steps = self.sim.fuse_steps.min(limit.max(1));
        self.ctx
            .queue
            .write_buffer(&self.buf.sim, 0, &sim_copies(&self.sim, self.sim_stride));
    }

    /// Whether kernel timing is on.
    pub fn kernel_timing_enabled(&self) -> bool {
        self.timing.is_some()
    }

    /// Accumulated GPU time per kernel since timing was enabled, one entry per
    /// kernel in [`KERNEL_NAMES`] order (also those not dispatched yet); empty when
    /// timing is off.
    pub fn kernel_times(&self) -> Vec<KernelTime> {
        let Some(t) = &self.timing else {
            return Vec::new();
        };
        KERNEL_NAMES
            .iter()
            .enumerate()
            .map(|(k, name)| KernelTime {
                name: name.to_string(),
                dispatches: t.dispatches[k],
                steps: t.steps,
                total_ns: t.total_ns[k],
                ns_per_step: if t.steps > 0 {
                    t.total_ns[k] / t.steps as f64
                } else {
                    0.0
                },
                mean_ns: if t.dispatches[k] > 0 {
                    t.total_ns[k] / t.dispatches[k] as f64
                } else {
                    0.0
                },
            })
            .collect()
    }

    /// Record one dispatch of kernel `k` (an index into [`KERNEL_NAMES`]) for a
    /// chunk that uses chunk-control slot `parity`.
    fn encode_kernel(&self, pass: &mut wgpu::ComputePass<'_>, k: usize, parity: usize) {
        let p = match k {
            K_NEURON => &self.neuron,
            K_REDUCE => &self.reduce,
            _ => &self.propagate,
        };
        pass.set_pipeline(&p.pipeline);
        pass.set_bind_group(0, &p.bind_groups[parity], &[]);
        if k == K_PROPAGATE {
            // The size the chunk's neuron update wrote into its slot.
            let offset = (parity * std::mem::size_of::<ChunkCtrl>()
                + std::mem::offset_of!(ChunkCtrl, dispatch_x)) as u64;
            pass.dispatch_workgroups_indirect(&self.buf.ctrl, offset);
        } else if k == K_REDUCE {
            pass.dispatch_workgroups(self.reduce_grid.0, self.reduce_grid.1, 1);
        } else {
            pass.dispatch_workgroups(self.grid.0, self.grid.1, 1);
        }
    }

    /// Copy `bytes` of `src` into a fresh staging buffer and read it.
    fn read(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let device = &self.ctx.device;
        let size = bytes.max(4).next_multiple_of(4);
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("staging"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("read"),
        });
        enc.copy_buffer_to_buffer(src, 0, &staging, 0, size);
        self.ctx.queue.submit([enc.finish()]);
        map_read(device, &staging)
    }
}

/// Bytes of the slow kernels' population sums.
fn slow_sums_bytes(n_pop: u32) -> u64 {
    8 * (n_pop as usize * SLOW_SUMS_PER_POP) as u64
}

impl GpuBackend {
    /// Run one of the slow kernels (0 `signal_sum`, 1 `slow_update`) over every
    /// neuron with `slow`, and read back the population sums it wrote.
    fn run_slow(&mut self, which: usize, slow: &SlowParams, pops: &[SlowPop]) -> Result<Vec<u64>> {
        let Some(pipes) = &self.slow else {
            return Err(Error::Internal(
                "the slow signalling kernels were called on a network without [signalling]".into(),
            ));
        };
        let p = if which == 0 { &pipes.0 } else { &pipes.1 };
        let device = &self.ctx.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.ctx
            .queue
            .write_buffer(&self.buf.slow_params, 0, bytemuck::bytes_of(slow));
        if !pops.is_empty() {
            let n = pops.len().min(self.n_pop as usize);
            self.ctx
                .queue
                .write_buffer(&self.buf.slow_pops, 0, bytemuck::cast_slice(&pops[..n]));
        }
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("slow"),
        });
        enc.clear_buffer(&self.buf.slow_sums, 0, None);
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("slow"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&p.pipeline);
            pass.set_bind_group(0, &p.bind_groups[0], &[]);
            pass.dispatch_workgroups(self.grid.0, self.grid.1, 1);
        }
        self.ctx.queue.submit([enc.finish()]);
        let bytes = self.read(&self.buf.slow_sums, slow_sums_bytes(self.n_pop))?;
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("slow signalling kernel failed: {e}")));
        }
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(words
            .chunks_exact(2)
            .map(|w| w[0] as u64 | ((w[1] as u64) << 32))
            .collect())
    }
}

pub(super) fn map_read(device: &wgpu::Device, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
    let mut v = map_read_all(device, &[staging])?;
    v.pop()
        .ok_or_else(|| Error::Gpu("read-back returned nothing".into()))
}

/// Map several staging buffers with one wait, copy their bytes out, unmap them.
fn map_read_all(device: &wgpu::Device, staging: &[&wgpu::Buffer]) -> Result<Vec<Vec<u8>>> {
    let (tx, rx) = mpsc::channel();
    for b in staging {
        let tx = tx.clone();
        b.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
    }
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu(format!("waiting for the device failed: {e}")))?;
    for _ in staging {
        rx.recv()
            .map_err(|e| Error::Gpu(format!("read-back callback lost: {e}")))?
            .map_err(|e| Error::Gpu(format!("mapping a read-back buffer failed: {e}")))?;
    }
    let mut out = Vec::with_capacity(staging.len());
    for b in staging {
        out.push(
            b.get_mapped_range(..)
                .map_err(|e| Error::Gpu(format!("mapped range: {e}")))?
                .to_vec(),
        );
        b.unmap();
    }
    Ok(out)
}

/// Bytes between the two `SimParams` copies in the `sim` buffer: the struct's size
/// rounded up to the adapter's alignment for uniform binding offsets (256 on most),
/// so that the second copy's offset is a valid binding offset.
fn sim_stride(limits: &wgpu::Limits) -> u64 {
    (std::mem::size_of::<SimParams>() as u64)
        .next_multiple_of((limits.min_uniform_buffer_offset_alignment as u64).max(1))
}

/// The contents of the `sim` buffer: `sim` with `parity` 0 at offset 0 and with
/// `parity` 1 at `stride`.
fn sim_copies(sim: &SimParams, stride: u64) -> Vec<u8> {
    let size = std::mem::size_of::<SimParams>();
    let mut bytes = vec![0u8; stride as usize + size];
    for parity in 0..2u32 {
        let at = parity as usize * stride as usize;
        let copy = SimParams { parity, ..*sim };
        bytes[at..at + size].copy_from_slice(bytemuck::bytes_of(&copy));
    }
    bytes
}

/// A kernel's pipeline, compiled with `config` (the network's code paths), and its
/// two bind groups. `buffers[i]` goes to binding `i`; binding 0 is the `SimParams`
/// uniform of every kernel (tests/layout.rs), bound at the copy of each group's
/// parity. A switched-off code path still names its bindings (naga keeps the code
/// under a constant-false condition; the driver drops it), so every kernel binds
/// every buffer whatever its `config`. `strict`: the kernel runs as SPIR-V without
/// float contraction and with the exact `division` (`strict.rs`).
fn make_pipeline(
    device: &wgpu::Device,
    kernel: &Kernel,
    strict: bool,
    division: shaders::Division,
    config: &shaders::KernelConfig,
    sim_stride: u64,
    buffers: &[&wgpu::Buffer],
) -> Result<Pipeline> {
    let pipeline = strict::compute_pipeline(device, kernel.name, strict, division, |d| {
        shaders::source_for(kernel, d, config)
    })?;
    let layout = pipeline.get_bind_group_layout(0);
    let sim_size = std::num::NonZeroU64::new(std::mem::size_of::<SimParams>() as u64);
    let bind_group = |parity: u64| {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: if i == 0 {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: b,
                        offset: parity * sim_stride,
                        size: sim_size,
                    })
                } else {
                    b.as_entire_binding()
                },
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.name),
            layout: &layout,
            entries: &entries,
        })
    };
    Ok(Pipeline {
        pipeline,
        bind_groups: [bind_group(0), bind_group(1)],
    })
}

impl Backend for GpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Gpu
    }

    fn adapter(&self) -> String {
        self.ctx.describe()
    }

    fn run_batch(&mut self, steps: u32) -> Result<BatchOutput> {
        let sim = self.sim;
        if steps > sim.count_capacity {
            return Err(Error::Capacity(format!(
                "batch of {steps} steps exceeds the {} the network was built for",
                sim.count_capacity
            )));
        }
        let started = std::time::Instant::now();
        let device = &self.ctx.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        // Reset the record counter (GpuCtrl.n_rec) and set where this batch ends
        // (GpuCtrl.batch_end, the next word) before this batch's commands.
        let batch_end = (self.step + steps as u64) as u32;
        self.ctx.queue.write_buffer(
            &self.buf.ctrl,
            GPU_CTRL_SHARED_OFFSET,
            bytemuck::cast_slice(&[0u32, batch_end]),
        );
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("batch"),
        });
        enc.clear_buffer(&self.buf.pop_counts, 0, None);
        enc.clear_buffer(&self.buf.samples, 0, None);
        enc.clear_buffer(&self.buf.glu_release, 0, None);
        // The batch's chunks of fused steps (model::chunk_len, as the kernels compute
        // them): (first step, steps). A chunk ends at a sample step or before it.
        let mut chunks: Vec<(u64, u32)> = Vec::new();
        let first_parity = self.parity;
        let parity_of = |chunk: usize| (first_parity + chunk) % 2;
        let mut t = self.step;
        while t < self.step + steps as u64 {
            let len = crate::model::chunk_len(&self.sim, t as u32, batch_end);
            chunks.push((t, len));
            t += len as u64;
        }
        let is_sample = |step: u64| (step + 1).is_multiple_of(sim.sample_interval as u64);
        let mut sample_steps = Vec::new();
        // Chunks whose kernels are timed, and the kernel of each timestamp pair.
        let timed = self
            .timing
            .as_ref()
            .map_or(0, |t| (t.steps_per_batch as usize).min(chunks.len()));
        let mut timed_kernels: Vec<usize> = Vec::new();
        let timed_steps: u64 = chunks[..timed].iter().map(|&(_, len)| len as u64).sum();
        if let Some(timing) = &self.timing {
            for (c, &(first, len)) in chunks[..timed].iter().enumerate() {
                let last = first + len as u64 - 1;
                let mut kernels = vec![K_NEURON];
                if is_sample(last) {
                    kernels.push(K_REDUCE);
                    sample_steps.push(last);
                }
                kernels.push(K_PROPAGATE);
                for k in kernels {
                    let pair = timed_kernels.len() as u32;
                    timed_kernels.push(k);
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(KERNEL_NAMES[k]),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: &timing.query_set,
                            beginning_of_pass_write_index: Some(2 * pair),
                            end_of_pass_write_index: Some(2 * pair + 1),
                        }),
                    });
                    self.encode_kernel(&mut pass, k, parity_of(c));
                }
            }
        }
        // The untimed chunks, chunks_per_submit per submission: the device starts on
        // the first while the host records the rest. Submissions run in order, so
        // the results are those of one submission.
        let mut exposed_ns = None;
        let mut submits = 0u64;
        let mut submit_ns = 0.0;
        let mut c = timed;
        while c < chunks.len() {
            let end = c.saturating_add(self.chunks_per_submit).min(chunks.len());
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("steps"),
                    timestamp_writes: None,
                });
                for (k, &(first, len)) in chunks.iter().enumerate().take(end).skip(c) {
                    let last = first + len as u64 - 1;
                    let parity = parity_of(k);
                    self.encode_kernel(&mut pass, K_NEURON, parity);
                    if is_sample(last) {
                        self.encode_kernel(&mut pass, K_REDUCE, parity);
                        sample_steps.push(last);
                    }
                    self.encode_kernel(&mut pass, K_PROPAGATE, parity);
                }
            }
            c = end;
            if c < chunks.len() {
                let next = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("batch"),
                });
                let (at, ns) = submit_timed(&self.ctx.queue, std::mem::replace(&mut enc, next));
                exposed_ns.get_or_insert((at - started).as_nanos() as f64);
                submit_ns += ns;
                submits += 1;
            }
        }
        // The batch's read-backs travel in the same submission.
        let srcs = [
            &self.buf.pop_counts,
            &self.buf.samples,
            &self.buf.ctrl,
            &self.buf.glu_release,
            &self.buf.glu_trace,
        ];
        for (src, dst) in srcs.iter().zip(&self.buf.staging) {
            enc.copy_buffer_to_buffer(src, 0, dst, 0, dst.size());
        }
        let mut to_map: Vec<&wgpu::Buffer> = self.buf.staging.iter().collect();
        if let (Some(timing), false) = (&self.timing, timed_kernels.is_empty()) {
            let queries = 2 * timed_kernels.len() as u32;
            let bytes = queries as u64 * wgpu::QUERY_SIZE as u64;
            enc.resolve_query_set(&timing.query_set, 0..queries, &timing.resolve, 0);
            enc.copy_buffer_to_buffer(&timing.resolve, 0, &timing.staging, 0, bytes);
            to_map.push(&timing.staging);
        }
        let (at, ns) = submit_timed(&self.ctx.queue, enc);
        let record_ns = (at - started).as_nanos() as f64 - submit_ns;
        submit_ns += ns;
        self.host.batches += 1;
        self.host.steps += steps as u64;
        self.host.submits += submits + 1;
        self.host.record_ns += record_ns;
        self.host.submit_ns += submit_ns;
        self.host.exposed_ns += exposed_ns.unwrap_or(record_ns);
        let next_parity = parity_of(chunks.len());
        self.parity = next_parity;
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("encoding steps failed: {e}")));
        }
        let mut data = map_read_all(device, &to_map)?.into_iter();
        let mut next = move || {
            data.next()
                .ok_or_else(|| Error::Gpu("read-back returned too few buffers".into()))
        };
        let (counts_raw, samples_raw, ctrl_raw) = (next()?, next()?, next()?);
        let (release_raw, trace_raw) = (next()?, next()?);
        let stamps_raw = if timed_kernels.is_empty() {
            None
        } else {
            Some(next()?)
        };
        drop(next);
        if let (Some(raw), Some(timing)) = (stamps_raw, self.timing.as_mut()) {
            let stamps: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
            timing.steps += timed_steps;
            for (pair, &k) in timed_kernels.iter().enumerate() {
                let (begin, end) = (stamps[2 * pair], stamps[2 * pair + 1]);
                // A counter that wrapped or went backwards counts as zero time.
                let ticks = end.saturating_sub(begin);
                timing.total_ns[k] += ticks as f64 * timing.period_ns;
                timing.dispatches[k] += 1;
            }
        }
        let release_all: Vec<u32> = bytemuck::pod_collect_to_vec(&release_raw);
        let trace_all: Vec<f32> = bytemuck::pod_collect_to_vec(&trace_raw);
        let counts_all: Vec<u32> = bytemuck::pod_collect_to_vec(&counts_raw);
        let samples_all: Vec<u32> = bytemuck::pod_collect_to_vec(&samples_raw);
        let ctrl: GpuCtrl = bytemuck::pod_read_unaligned(&ctrl_raw);
        // The last chunk's neuron update set up the next chunk's slot: it must start
        // where the host's own count of steps does.
        let gpu_next = ctrl.chunks[next_parity].step;
        if gpu_next != batch_end {
            return Err(Error::Internal(format!(
                "the GPU's step count ({gpu_next}) lost step with the host's ({batch_end}) after a batch of {steps} steps in {} chunks",
                chunks.len()
            )));
        }
        let kept = ctrl.n_rec.min(sim.rec_capacity);
        let mut spikes: Vec<(u32, u32)> = if kept > 0 {
            let raw: Vec<u32> =
                bytemuck::pod_collect_to_vec(&self.read(&self.buf.rec, 8 * kept as u64)?);
            raw.chunks_exact(2)
                .take(kept as usize)
                .map(|c| (c[0], c[1]))
                .collect()
        } else {
            Vec::new()
        };
        spikes.sort_unstable();
        self.ctx.check_uncaptured()?;
        let n_pop = self.n_pop as usize;
        let first = self.step;
        let mut pop_counts = Vec::with_capacity(steps as usize * n_pop);
        let mut release_fixed = Vec::with_capacity(steps as usize * n_pop);
        let mut glutamate_um = Vec::with_capacity(steps as usize * n_pop);
        for t in first..first + steps as u64 {
            let row = (t % sim.count_capacity as u64) as usize * n_pop;
            pop_counts.extend_from_slice(&counts_all[row..row + n_pop]);
            glutamate_um.extend_from_slice(&trace_all[row..row + n_pop]);
            for k in row..row + n_pop {
                release_fixed
                    .push(release_all[2 * k] as u64 | ((release_all[2 * k + 1] as u64) << 32));
            }
        }
        let samples = sample_steps
            .into_iter()
            .map(|step| {
                let slot =
                    ((step / sim.sample_interval as u64) % sim.sample_capacity as u64) as usize;
                let base = slot * n_pop * SAMPLE_ENTRIES_PER_POP;
                let word = |p: usize, k: usize| 2 * (base + p * SAMPLE_ENTRIES_PER_POP + k);
                let sums = (0..n_pop)
                    .map(|p| {
                        let mut s = [0i64; STATS_PER_POP];
                        for (k, v) in s.iter_mut().enumerate() {
                            let w = word(p, k);
                            *v = (samples_all[w] as u64 | ((samples_all[w + 1] as u64) << 32))
                                as i64;
                        }
                        s
                    })
                    .collect();
                let clipped = (0..n_pop)
                    .map(|p| samples_all[word(p, CLIP_ENTRY)])
                    .collect();
                Sample {
                    step,
                    sums,
                    clipped,
                }
            })
            .collect();
        self.step += steps as u64;
        let unstable =
            Unstable::from_words(&counts_all[(sim.count_capacity * sim.n_pop) as usize..]);
        Ok(BatchOutput {
            first_step: first,
            steps,
            pop_counts,
            samples,
            spikes,
            spikes_dropped: (ctrl.n_rec - kept) as u64,
            release_fixed,
            glutamate_um,
            unstable,
        })
    }

    fn set_drug(&mut self, drug: DrugParams) -> Result<()> {
        self.ctx
            .queue
            .write_buffer(&self.buf.drug, 0, bytemuck::bytes_of(&drug));
        Ok(())
    }

    fn isi(&mut self) -> Result<Vec<IsiStat>> {
        Ok(bytemuck::pod_collect_to_vec(
            &self.read(&self.buf.isi, 16 * self.net_n as u64)?,
        ))
    }

    fn state(&mut self) -> Result<NeuronState> {
        let n = 4 * self.net_n as u64;
        let f = |b: &wgpu::Buffer| -> Result<Vec<f32>> {
            Ok(bytemuck::pod_collect_to_vec(&self.read(b, n)?))
        };
        Ok(NeuronState {
            v: f(&self.buf.v)?,
            refrac: bytemuck::pod_collect_to_vec(&self.read(&self.buf.refrac, n)?),
            g_ampa: f(&self.buf.g_ampa)?,
            g_gaba: f(&self.buf.g_gaba)?,
            x_nmda: f(&self.buf.x_nmda)?,
            pools: [
                bytemuck::pod_collect_to_vec(&self.read(&self.buf.pools[0], 4 * n)?),
                bytemuck::pod_collect_to_vec(&self.read(&self.buf.pools[1], 4 * n)?),
            ],
            isi: bytemuck::pod_collect_to_vec(&self.read(&self.buf.isi, 16 * self.net_n as u64)?),
            glu_r: f(&self.buf.glu_r)?,
            sig_nrn: if self.slow.is_some() {
                bytemuck::pod_collect_to_vec(&self.read(&self.buf.sig_nrn, 2 * n)?)
            } else {
                vec![[1.0, 0.0]; self.net_n as usize]
            },
        })
    }

    fn set_nmda_pools(&mut self, pools: &[Vec<[f32; 4]>; MAX_NMDA_POOLS]) -> Result<()> {
        for (k, (buf, src)) in self.buf.pools.iter().zip(pools).enumerate() {
            if src.len() != self.net_n as usize {
                return Err(crate::error::Error::Internal(format!(
                    "set_nmda_pools: pool {k} has {} entries, the network {}",
                    src.len(),
                    self.net_n
                )));
            }
            self.ctx
                .queue
                .write_buffer(buf, 0, bytemuck::cast_slice(src));
        }
        Ok(())
    }

    fn signal_sum(&mut self, slow: &SlowParams) -> Result<Vec<u64>> {
        self.run_slow(0, slow, &[])
    }

    fn slow_update(&mut self, slow: &SlowParams, pops: &[SlowPop]) -> Result<Vec<u64>> {
        self.run_slow(1, slow, pops)
    }

    fn slow_state(&mut self) -> Result<crate::backend::SlowState> {
        if self.slow.is_none() {
            let n = self.net_n as usize;
            return Ok((vec![[1.0, 0.0]; n], vec![[0.0; 4]; n]));
        }
        let n = self.net_n as u64;
        Ok((
            bytemuck::pod_collect_to_vec(&self.read(&self.buf.sig_nrn, 8 * n)?),
            bytemuck::pod_collect_to_vec(&self.read(&self.buf.slow_state, 16 * n)?),
        ))
    }
}
