//! The CPU reference backend: the kernels of `shaders/` written loop for loop in Rust
//! (`neuron_update.rs` <-> `neuron_update.wgsl`, ...), first-class and exact: it runs
//! wherever no GPU adapter exists, and the tests compare the shaders with it.

pub mod cache;
mod neuron_update;
mod propagate;
mod reduce_stats;
pub mod simd;
pub mod slow;
pub mod stream;

pub use cache::SynapseCache;
pub use neuron_update::{
    blocks, finish_spikes, for_each_block, has_nmda_pool, neuron_update, update_block,
    update_population, Block, BlockOut, Scratch, StepInput, SEQ_BLOCK,
};
pub use propagate::{propagate, propagate_parallel};
pub use reduce_stats::{
    neuron_sample, population_sums, quantise, range_sums, sample_values, SampleSums,
};

use std::sync::Arc;

use rayon::prelude::*;

use crate::backend::{note_unstable, Backend, BackendKind, BatchOutput, Sample, Unstable};
use crate::error::{Error, Result};
use crate::model::connectivity::{has_random_synapses, synapse_draw};
use crate::model::layout::{
    Ctrl, DrugParams, IsiStat, ParamsBlock, SlowParams, SlowPop, GLU_SCALE, RULE_TABLE,
    SLOW_SUMS_PER_POP,
};
use crate::model::limits::{pop_counts_words, MAX_NMDA_POOLS};
use crate::model::{Network, NeuronState};

/// Host copies of the device buffers, same names and layout as the GPU backend's.
#[derive(Debug, Clone)]
pub struct Buffers {
    /// Membrane potential (mV).
    pub v: Vec<f32>,
    /// Refractory steps left.
    pub refrac: Vec<u32>,
    /// AMPA conductance (nS).
    pub g_ampa: Vec<f32>,
    /// GABA_A conductance (nS).
    pub g_gaba: Vec<f32>,
    /// NMDA drive.
    pub x_nmda: Vec<f32>,
    /// NMDA receptor pools `[O, B, T, 0]` per neuron.
    pub pools: [Vec<[f32; 4]>; MAX_NMDA_POOLS],
    /// ISI accumulators.
    pub isi: Vec<IsiStat>,
    /// Fixed-point input ring buffers (AMPA, GABA_A, NMDA), `slots x n`.
    pub ring: [Vec<i32>; 3],
    /// Spikes of the current step (neuron indices).
    pub spikes: Vec<u32>,
    /// CSR row pointers.
    pub table_rows: Vec<u32>,
    /// CSR postsynaptic indices.
    pub table_cols: Vec<u32>,
    /// Per-synapse fixed-point weights beside `table_cols` (empty unless some
    /// projection draws its weights or delays: `connectivity::synapse_draw`, drawn
    /// once when the table is made instead of at every spike).
    pub table_w: Vec<i32>,
    /// Per-synapse delays (steps) beside `table_cols` (empty likewise).
    pub table_d: Vec<u32>,
    /// Procedural projections generated once into packed tables (CPU only: the
    /// shader regenerates them per spike).
    pub cache: SynapseCache,
    /// Per-step population spike counts of the batch, then the unstable steps'
    /// words (`backend::Unstable::from_words`), as the shader's buffer holds them.
    pub pop_counts: Vec<u32>,
    /// Spike record: (step, neuron) pairs.
    pub rec: Vec<u32>,
    /// Releasable fraction after each neuron's last spike.
    pub glu_r: Vec<f32>,
    /// Released vesicles per step and population (fixed point), `count_capacity x n_pop`.
    pub glu_release: Vec<u64>,
    /// Extracellular glutamate per population (µM).
    pub glu_state: Vec<f32>,
    /// Extracellular glutamate per step and population (µM).
    pub glu_trace: Vec<f32>,
    /// Slow signalling per neuron: `[synapse density, accumulated local AMPA (nS)]`.
    pub sig_nrn: Vec<[f32; 2]>,
    /// Slow signalling state per neuron: `[reference, BDNF, mTOR, protein]`.
    pub slow_state: Vec<[f32; 4]>,
}

/// Most memory the CPU backend spends on caching procedural connectivity as packed
/// tables (the same synapses, generated once instead of at every spike): about 64
/// million synapses at 4 bytes each.
pub const CONNECTIVITY_CACHE_BYTES: usize = 256 << 20;

/// Environment variable that raises (or lowers) the connectivity cache from
/// [`CONNECTIVITY_CACHE_BYTES`]: a whole number of MiB. A cached synapse takes 4
/// bytes (target, drawn weight and delay packed into one word, [`cache`]), so the
/// full-scale microcircuit (3.0e8 synapses) takes 1149 MiB, and a budget of 1200
/// caches all of it (each projection's size is estimated with 2% of skip words
/// before it is made); projections that do not fit are regenerated at every spike.
/// Results do not depend on it, only speed and memory.
pub const CACHE_ENV: &str = "KETASIM_CACHE_MB";

/// The connectivity cache budget: `KETASIM_CACHE_MB` MiB if set (an error naming the
/// variable if it is not a whole number), else [`CONNECTIVITY_CACHE_BYTES`].
pub fn cache_bytes_from_env() -> Result<usize> {
    let Some(value) = std::env::var_os(CACHE_ENV) else {
        return Ok(CONNECTIVITY_CACHE_BYTES);
    };
    match value.to_str().map(|v| v.trim().parse::<usize>()) {
        Some(Ok(mb)) => Ok(mb.saturating_mul(1 << 20)),
        _ => Err(Error::Capacity(format!(
            "environment variable {CACHE_ENV}={value:?} is not a number of MiB: give a whole number, or unset it for {} MiB",
            CONNECTIVITY_CACHE_BYTES >> 20
        ))),
    }
}

/// Environment variable that sets the CPU backend's thread count (a positive
/// integer; unset: all cores, rayon's default). Read when a backend is created.
pub const THREADS_ENV: &str = "KETASIM_THREADS";

/// Estimated cost (about ns of one core) of a step's neuron update below which it
/// runs on one thread even when more are available: handing work to the other
/// threads and waiting for them costs several µs per step, more than it saves on
/// small networks (COBA's 4000 neurons take about 4 µs per step; it stays on one
/// thread).
pub const PAR_UPDATE_MIN_COST: f64 = 50_000.0;
/// Neuron-update cost (about ns) per block when the update is spread over threads:
/// several blocks per thread, for balance.
pub const PAR_BLOCK_COST: f64 = 8_000.0;
/// Estimated cost (about ns) of a step's spike propagation below which it runs on one
/// thread (a table synapse costs about 1 ns, a procedural one about 10 ns).
pub const PAR_PROPAGATE_MIN_COST: f64 = 50_000.0;

/// Estimated update cost of one neuron of `p` per step (about ns on one core, AVX2):
/// COBA's about 1 ns, 5 ns more per NMDA receptor pool and 2.5 ns per Poisson drive.
fn neuron_cost(p: &crate::model::layout::PopParams) -> f64 {
    1.0 + 5.0 * p.n_pools as f64 + 2.5 * p.n_drives as f64
}

/// The thread count asked for by `KETASIM_THREADS`, if set.
pub fn threads_from_env() -> Result<Option<usize>> {
    threads_from_value(std::env::var_os(THREADS_ENV))
}

/// [`threads_from_env`] for a given value of the variable (`None`: unset): a
/// positive integer, else an error naming the variable.
pub fn threads_from_value(value: Option<std::ffi::OsString>) -> Result<Option<usize>> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.to_str().map(|v| v.trim().parse::<usize>()) {
        Some(Ok(k)) if k >= 1 => Ok(Some(k)),
        _ => Err(Error::Capacity(format!(
            "environment variable {THREADS_ENV}={value:?} is not a number of threads: \
             give a positive integer, or unset it to use all cores"
        ))),
    }
}

/// A pool of `threads` threads for the CPU backend, or none (rayon's current pool)
/// when `threads` is `None`.
pub fn thread_pool(threads: Option<usize>) -> Result<Option<Arc<rayon::ThreadPool>>> {
    let Some(k) = threads else {
        return Ok(None);
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(k)
        .thread_name(|i| format!("ketasim-cpu-{i}"))
        .build()
        .map(|p| Some(Arc::new(p)))
        .map_err(|e| Error::Capacity(format!("cannot start {k} CPU threads: {e}")))
}

/// When the CPU backend spreads a step over threads (estimated costs in about ns of
/// one core; see the `PAR_*` constants for the defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParallelThresholds {
    /// Neuron update: least cost per step.
    pub update_min_cost: f64,
    /// Neuron update: cost per block of neurons (blocks hold 64 to `SEQ_BLOCK`).
    pub block_cost: f64,
    /// Spike propagation: least cost per step.
    pub propagate_min_cost: f64,
}

impl Default for ParallelThresholds {
    fn default() -> Self {
        ParallelThresholds {
            update_min_cost: PAR_UPDATE_MIN_COST,
            block_cost: PAR_BLOCK_COST,
            propagate_min_cost: PAR_PROPAGATE_MIN_COST,
        }
    }
}

/// The CPU backend.
pub struct CpuBackend {
    params: ParamsBlock,
    recips: Vec<f32>,
    buf: Buffers,
    ctrl: Ctrl,
    scratch: Scratch,
    /// Per population: a step's unstable membrane steps and largest factor bits.
    unstable_scratch: Vec<(u32, u32)>,
    reference: bool,
    drug: DrugParams,
    /// Its own thread pool (`KETASIM_THREADS` or `with_threads`); none: rayon's
    /// current pool (the global one, all cores, unless the caller installs another).
    pool: Option<Arc<rayon::ThreadPool>>,
    /// Threads it runs on (for the adapter string).
    threads: usize,
    /// When a step is spread over threads.
    par: ParallelThresholds,
    /// Estimated update cost per step of all neurons (about ns on one core).
    update_cost: f64,
    /// Estimated propagation cost per spike of each population (about ns).
    spike_cost: Vec<f64>,
}

impl CpuBackend {
    /// Allocate and initialise the state of `net`, on `KETASIM_THREADS` threads if
    /// that is set, else on rayon's current pool (all cores by default).
    pub fn new(net: &Network) -> Result<CpuBackend> {
        let threads = threads_from_env()?;
        Self::build(net, threads, None)
    }

    /// [`CpuBackend::new`] on its own pool of `threads` threads (at least 1),
    /// whatever `KETASIM_THREADS` says. Results do not depend on the thread count.
    pub fn with_threads(net: &Network, threads: usize) -> Result<CpuBackend> {
        if threads == 0 {
            return Err(Error::Internal("CpuBackend::with_threads(0)".into()));
        }
        Self::build(net, Some(threads), None)
    }

    /// [`CpuBackend::with_threads`] with a connectivity cache of at most
    /// `cache_bytes` (instead of [`cache_bytes_from_env`]'s). Results do not depend
    /// on it: the tests compare a cached network with a regenerated one.
    pub fn with_cache_bytes(
        net: &Network,
        threads: usize,
        cache_bytes: usize,
    ) -> Result<CpuBackend> {
        if threads == 0 {
            return Err(Error::Internal(
                "CpuBackend::with_cache_bytes(0 threads)".into(),
            ));
        }
        Self::build(net, Some(threads), Some(cache_bytes))
    }

    /// Memory held by the connectivity cache (bytes): its packed tables.
    pub fn cache_bytes(&self) -> usize {
        self.buf.cache.bytes()
    }

    /// Change when steps are spread over threads (the tests force every step onto
    /// all threads with zeros; results never depend on it).
    pub fn with_parallel_thresholds(mut self, par: ParallelThresholds) -> CpuBackend {
        self.par = par;
        self
    }

    fn build(
        net: &Network,
        threads: Option<usize>,
        cache_bytes: Option<usize>,
    ) -> Result<CpuBackend> {
        let n = net.n as usize;
        let sim = &net.params.sim;
        let ring_len = n
            .checked_mul(sim.ring_slots as usize)
            .ok_or_else(|| Error::Capacity("ring buffer size overflows".into()))?;
        let st = net.initial_state();
        let params = net.params.clone();
        let table_rows = net.tables.rows.clone();
        let table_cols = net.tables.cols.clone();
        let mut table_w = Vec::new();
        let mut table_d = Vec::new();
        let projs = &params.projs[..sim.n_proj as usize];
        if projs.iter().any(has_random_synapses) {
            table_w = vec![0; table_cols.len()];
            table_d = vec![0; table_cols.len()];
            for pr in projs.iter().filter(|pr| pr.rule == RULE_TABLE) {
                for pre in 0..pr.pre_size {
                    let row = (pr.table_base + pre) as usize;
                    let (start, end) = (table_rows[row] as usize, table_rows[row + 1] as usize);
                    for idx in start..end {
                        let (w, d) = synapse_draw(pr, pre, (idx - start) as u32, sim.ring_slots);
                        table_w[idx] = w;
                        table_d[idx] = d;
                    }
                }
            }
        }
        let pool = thread_pool(threads)?;
        let tables_bytes =
            4 * (table_rows.len() + table_cols.len() + table_w.len() + table_d.len());
        let budget = cache_bytes
            .unwrap_or(cache_bytes_from_env()?)
            .saturating_sub(tables_bytes);
        let make_cache = || cache_procedural(budget, &params, net);
        let cache = match &pool {
            Some(pool) => pool.install(make_cache),
            None => make_cache(),
        };
        let buf = Buffers {
            v: st.v,
            refrac: st.refrac,
            g_ampa: st.g_ampa,
            g_gaba: st.g_gaba,
            x_nmda: st.x_nmda,
            pools: st.pools,
            isi: st.isi,
            ring: [vec![0; ring_len], vec![0; ring_len], vec![0; ring_len]],
            spikes: vec![0; n],
            table_rows,
            table_cols,
            table_w,
            table_d,
            cache,
            pop_counts: vec![
                0;
                pop_counts_words(sim.count_capacity as u64, sim.n_pop as u64) as usize
            ],
            rec: vec![0; 2 * sim.rec_capacity as usize],
            glu_r: st.glu_r,
            glu_release: vec![0; (sim.count_capacity * sim.n_pop) as usize],
            glu_state: net.initial_glutamate(),
            glu_trace: vec![0.0; (sim.count_capacity * sim.n_pop) as usize],
            sig_nrn: st.sig_nrn,
            slow_state: vec![[0.0; 4]; n],
        };
        let threads = pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
        let pops = &params.pops[..sim.n_pop as usize];
        let update_cost = pops.iter().map(|p| p.size as f64 * neuron_cost(p)).sum();
        // Per presynaptic spike: expected targets, 1 ns each from a table, about 10 ns
        // each generated procedurally.
        let spike_cost = pops
            .iter()
            .map(|p| {
                params.projs[..sim.n_proj as usize]
                    .iter()
                    .zip(&net.projections)
                    .enumerate()
                    .filter(|(_, (pr, _))| {
                        p.offset >= pr.pre_offset && p.offset < pr.pre_offset + pr.pre_size
                    })
                    .map(|(pj, (pr, info))| {
                        let per_spike = info.synapses / pr.pre_size.max(1) as f64;
                        let table = pr.rule == RULE_TABLE || buf.cache.get(pj).is_some();
                        per_spike * if table { 1.0 } else { 10.0 }
                    })
                    .sum()
            })
            .collect();
        Ok(CpuBackend {
            params,
            recips: net.poisson_recips.to_vec(),
            buf,
            ctrl: Ctrl::default(),
            scratch: Scratch::default(),
            unstable_scratch: Vec::new(),
            reference: false,
            drug: net.drug_at(0, 1),
            pool,
            threads,
            par: ParallelThresholds::default(),
            update_cost,
            spike_cost,
        })
    }

    /// The backend with the shader-shaped per-neuron path (`neuron_update`, one call
    /// per neuron, exactly the shader's loop) instead of the vectorised
    /// population-at-a-time path; slower, used by the tests to check the fast path.
    pub fn new_reference(net: &Network) -> Result<CpuBackend> {
        let mut b = CpuBackend::new(net)?;
        b.reference = true;
        b.threads = 1;
        Ok(b)
    }

    /// One step: neuron update, sample (on sample steps), end of step, propagate.
    /// `threads`: of the rayon pool it runs in; with more than one, the update and
    /// the propagation are spread over them where that pays.
    fn step(&mut self, samples: &mut Vec<Sample>, threads: usize) {
        if self.reference {
            return self.step_reference(samples);
        }
        let prm = &self.params;
        let sim = &prm.sim;
        let step = self.ctrl.step;
        let sample = (step + 1).is_multiple_of(sim.sample_interval);
        let si = StepInput {
            prm,
            recips: &self.recips,
            step,
            conc_um: self.drug.conc_at(step),
            ampa_block: self.drug.ampa_block,
            sample,
        };
        let n_pop = sim.n_pop as usize;
        // Sums only on sample steps (no allocation otherwise).
        let mut sums = if sample {
            vec![SampleSums::default(); n_pop]
        } else {
            Vec::new()
        };
        // Per population: unstable membrane steps and the largest bits they give (a
        // buffer kept between steps, so that a step allocates nothing).
        let mut unstable = std::mem::take(&mut self.unstable_scratch);
        unstable.clear();
        unstable.resize(n_pop, (0, 0));
        let par = threads > 1 && self.update_cost >= self.par.update_min_cost;
        if par {
            let per_neuron = self.update_cost / sim.n_total.max(1) as f64;
            let max_len = ((self.par.block_cost / per_neuron) as usize).clamp(64, SEQ_BLOCK);
            let blks = blocks(prm, &mut self.buf, &mut self.scratch, step, max_len);
            let parts: Vec<(u32, BlockOut)> = blks
                .into_par_iter()
                .with_max_len(1)
                .map(|blk| (blk.pop(), update_block(&si, blk)))
                .collect();
            for (pop, q) in parts {
                if sample {
                    sums[pop as usize].add(&q.sums);
                }
                q.add_unstable_to(&mut unstable[pop as usize]);
            }
        } else {
            for_each_block(
                prm,
                &mut self.buf,
                &mut self.scratch,
                step,
                SEQ_BLOCK,
                |blk| {
                    let pop = blk.pop() as usize;
                    let q = update_block(&si, blk);
                    if sample {
                        sums[pop].add(&q.sums);
                    }
                    q.add_unstable_to(&mut unstable[pop]);
                },
            );
        }
        let tail = (sim.count_capacity * sim.n_pop) as usize;
        for (pop, &(count, worst)) in unstable.iter().enumerate() {
            note_unstable(
                &mut self.buf.pop_counts[tail..],
                pop as u32,
                step,
                count,
                worst,
            );
        }
        self.unstable_scratch = unstable;
        for pop in 0..sim.n_pop {
            finish_spikes(pop, prm, &mut self.buf, &mut self.ctrl, &self.scratch);
        }
        if sample {
            samples.push(sample_of(step as u64, &sums));
        }
        self.prepare_and_propagate(threads);
    }

    /// [`CpuBackend::step`] on the shader-shaped per-neuron path, one thread.
    fn step_reference(&mut self, samples: &mut Vec<Sample>) {
        let prm = &self.params;
        let sim = &prm.sim;
        let step = self.ctrl.step;
        let conc = self.drug.conc_at(step);
        for pop in 0..sim.n_pop {
            let p = &prm.pops[pop as usize];
            for i in p.offset..p.offset + p.size {
                neuron_update(
                    i,
                    pop,
                    prm,
                    &self.recips,
                    &mut self.buf,
                    &mut self.ctrl,
                    conc,
                    self.drug.ampa_block,
                );
            }
        }
        if (step + 1).is_multiple_of(sim.sample_interval) {
            let sums: Vec<SampleSums> = prm.pops[..sim.n_pop as usize]
                .iter()
                .map(|p| {
                    let mut sum = SampleSums::default();
                    for i in p.offset..p.offset + p.size {
                        sum.add_neuron(&neuron_sample(p, i as usize, &self.buf));
                    }
                    sum
                })
                .collect();
            samples.push(sample_of(step as u64, &sums));
        }
        self.prepare_and_propagate(1);
    }

    /// End of step (the glutamate pools, which the shaders advance in `propagate`'s
    /// first workgroup; the spike count and the step, which the shaders keep in
    /// alternate `ChunkCtrl` slots), then the propagation of the step's spikes.
    fn prepare_and_propagate(&mut self, threads: usize) {
        let prm = &self.params;
        let sim = &prm.sim;
        let step = self.ctrl.step;
        glutamate_step(prm, &mut self.buf, step);
        self.ctrl.prop_n = self.ctrl.n_spikes;
        self.ctrl.prop_step = step;
        self.ctrl.n_spikes = 0;
        self.ctrl.step += 1;
        let par = threads > 1 && self.ctrl.prop_n > 1 && {
            let row = ((step % sim.count_capacity) * sim.n_pop) as usize;
            let counts = &self.buf.pop_counts[row..row + sim.n_pop as usize];
            let cost: f64 = counts
                .iter()
                .zip(&self.spike_cost)
                .map(|(&c, &k)| c as f64 * k)
                .sum();
            cost >= self.par.propagate_min_cost
        };
        if par {
            propagate_parallel(prm, &mut self.buf, &self.ctrl);
        } else {
            for s in 0..self.ctrl.prop_n {
                propagate(s, prm, &mut self.buf, &self.ctrl);
            }
        }
    }

    /// The steps of a batch, in the thread pool the batch runs in.
    fn run_steps(&mut self, steps: u32, samples: &mut Vec<Sample>) {
        let threads = rayon::current_num_threads();
        for _ in 0..steps {
            self.step(samples, threads);
        }
    }
}

/// The [`Sample`] of a step from its per-population sums.
fn sample_of(step: u64, sums: &[SampleSums]) -> Sample {
    Sample {
        step,
        sums: sums.iter().map(|s| s.sums).collect(),
        clipped: sums.iter().map(|s| s.clipped).collect(),
    }
}

/// Twin of `advance_glutamate` in `shaders/propagate.wgsl`: each releasing population's
/// extracellular pool takes this step's release, then Michaelis-Menten uptake,
/// `G <- G - Vmax dt G / (K_m + G)` (forward Euler, stable since Vmax dt < K_m).
pub fn glutamate_step(prm: &ParamsBlock, b: &mut Buffers, step: u32) {
    let sim = &prm.sim;
    for pop in 0..sim.n_pop as usize {
        let p = &prm.pops[pop];
        if p.glu_on == 0 {
            continue;
        }
        let idx = ((step % sim.count_capacity) * sim.n_pop) as usize + pop;
        let v = b.glu_release[idx];
        let rel = ((v >> 32) as u32) as f32 * 4_294_967_296.0 + (v as u32) as f32;
        let mut g = b.glu_state[pop] + rel * (1.0 / GLU_SCALE) * p.glu_um_per_vesicle;
        g = g - p.glu_vmax_dt * g * (1.0 / (p.glu_km_um + g));
        b.glu_state[pop] = g;
        b.glu_trace[idx] = g;
    }
}

/// Generate procedural projections once into packed tables (as long as they fit
/// `cache_bytes`), on the current rayon pool. The synapses are exactly those the
/// shader regenerates per spike, with their drawn weights and delays (keyed as the
/// shader keys them), and integer accumulation makes their order irrelevant, so
/// results stay identical ([`cache::PackedProjection`]).
fn cache_procedural(cache_bytes: usize, params: &ParamsBlock, net: &Network) -> SynapseCache {
    let projs = &params.projs[..params.sim.n_proj as usize];
    let synapses: Vec<f64> = net.projections.iter().map(|p| p.synapses).collect();
    SynapseCache::build(
        cache_bytes,
        projs,
        &net.tables.rows,
        &synapses,
        params.sim.ring_slots,
    )
}

impl Backend for CpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn adapter(&self) -> String {
        let t = self.threads;
        format!(
            "cpu reference backend ({t} thread{})",
            if t == 1 { "" } else { "s" }
        )
    }

    fn run_batch(&mut self, steps: u32) -> Result<BatchOutput> {
        let sim = self.params.sim;
        if steps > sim.count_capacity {
            return Err(Error::Capacity(format!(
                "batch of {steps} steps exceeds the {} the network was built for",
                sim.count_capacity
            )));
        }
        self.buf.pop_counts.fill(0);
        self.buf.glu_release.fill(0);
        self.ctrl.n_rec = 0;
        let first = self.ctrl.step;
        let mut samples = Vec::new();
        match self.pool.clone() {
            Some(pool) => pool.install(|| self.run_steps(steps, &mut samples)),
            None => self.run_steps(steps, &mut samples),
        }
        let n_pop = sim.n_pop as usize;
        let mut pop_counts = Vec::with_capacity(steps as usize * n_pop);
        for t in first..first + steps {
            let row = ((t % sim.count_capacity) as usize) * n_pop;
            pop_counts.extend_from_slice(&self.buf.pop_counts[row..row + n_pop]);
        }
        let mut release_fixed = Vec::with_capacity(steps as usize * n_pop);
        let mut glutamate_um = Vec::with_capacity(steps as usize * n_pop);
        for t in first..first + steps {
            let row = ((t % sim.count_capacity) as usize) * n_pop;
            release_fixed.extend_from_slice(&self.buf.glu_release[row..row + n_pop]);
            glutamate_um.extend_from_slice(&self.buf.glu_trace[row..row + n_pop]);
        }
        let kept = self.ctrl.n_rec.min(sim.rec_capacity) as usize;
        let mut spikes: Vec<(u32, u32)> = (0..kept)
            .map(|r| (self.buf.rec[2 * r], self.buf.rec[2 * r + 1]))
            .collect();
        spikes.sort_unstable();
        let unstable =
            Unstable::from_words(&self.buf.pop_counts[(sim.count_capacity * sim.n_pop) as usize..]);
        Ok(BatchOutput {
            first_step: first as u64,
            steps,
            pop_counts,
            samples,
            spikes,
            spikes_dropped: (self.ctrl.n_rec - kept as u32) as u64,
            release_fixed,
            glutamate_um,
            unstable,
        })
    }

    fn set_drug(&mut self, drug: DrugParams) -> Result<()> {
        self.drug = drug;
        Ok(())
    }

    fn isi(&mut self) -> Result<Vec<IsiStat>> {
        Ok(self.buf.isi.clone())
    }

    fn state(&mut self) -> Result<NeuronState> {
        Ok(NeuronState {
            v: self.buf.v.clone(),
            refrac: self.buf.refrac.clone(),
            g_ampa: self.buf.g_ampa.clone(),
            g_gaba: self.buf.g_gaba.clone(),
            x_nmda: self.buf.x_nmda.clone(),
            pools: self.buf.pools.clone(),
            isi: self.buf.isi.clone(),
            glu_r: self.buf.glu_r.clone(),
            sig_nrn: self.buf.sig_nrn.clone(),
        })
    }

    fn set_nmda_pools(&mut self, pools: &[Vec<[f32; 4]>; MAX_NMDA_POOLS]) -> Result<()> {
        for (k, (dst, src)) in self.buf.pools.iter_mut().zip(pools).enumerate() {
            if dst.len() != src.len() {
                return Err(crate::error::Error::Internal(format!(
                    "set_nmda_pools: pool {k} has {} entries, the network {}",
                    src.len(),
                    dst.len()
                )));
            }
            dst.copy_from_slice(src);
        }
        Ok(())
    }

    fn signal_sum(&mut self, slow: &SlowParams) -> Result<Vec<u64>> {
        let mut sums = vec![0; self.params.sim.n_pop as usize * SLOW_SUMS_PER_POP];
        let (prm, sig) = (&self.params, &mut self.buf.sig_nrn);
        match &self.pool {
            Some(pool) => pool.install(|| slow::signal_sum(prm, slow, sig, &mut sums)),
            None => slow::signal_sum(prm, slow, sig, &mut sums),
        }
        Ok(sums)
    }

    fn slow_update(&mut self, slow: &SlowParams, pops: &[SlowPop]) -> Result<Vec<u64>> {
        let mut sums = vec![0; self.params.sim.n_pop as usize * SLOW_SUMS_PER_POP];
        let (prm, b) = (&self.params, &mut self.buf);
        let (sig, st) = (&mut b.sig_nrn, &mut b.slow_state);
        match &self.pool {
            Some(pool) => pool.install(|| slow::slow_update(prm, slow, pops, sig, st, &mut sums)),
            None => slow::slow_update(prm, slow, pops, sig, st, &mut sums),
        }
        Ok(sums)
    }

    fn slow_state(&mut self) -> Result<crate::backend::SlowState> {
        Ok((self.buf.sig_nrn.clone(), self.buf.slow_state.clone()))
    }
}
