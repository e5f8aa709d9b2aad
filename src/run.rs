//! The simulation driver shared by every command: build the network, pick a backend,
//! advance it batch by batch, and fold the small per-batch read-backs into summaries.

use std::time::Instant;

use serde::Serialize;

use crate::backend::{check_stable, Backend, BatchOutput};
use crate::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::gpu::{GpuBackend, GpuContext};
use crate::model::layout::{IsiStat, GLU_SCALE};
use crate::model::limits::{STATS_PER_POP, STAT_CLAMP, STAT_SCALES};
use crate::model::memory;
use crate::model::Network;
use crate::protocol::{self, BridgeEntry, Window, WindowAcc};
use crate::scenario::{ProtocolMode, Scenario};
use crate::signalling::{SlowDriver, SlowReadout};

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// A hardware GPU adapter; otherwise the CPU backend (with a note for a software
    /// adapter such as llvmpipe, which is slower than the CPU backend; a warning if
    /// there is no adapter).
    Auto,
    /// A GPU adapter, or fail.
    Gpu,
    /// The CPU reference backend.
    Cpu,
}

/// Steps per read-back batch (and per submit on the GPU).
pub const DEFAULT_BATCH_STEPS: u32 = 1000;

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Backend.
    pub backend: BackendChoice,
    /// Steps per batch.
    pub batch_steps: u32,
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
    /// The adapter a GPU backend takes, by its index in `ketasim devices`; `None`:
    /// the one `KETASIM_ADAPTER` names, else wgpu's preferred one
    /// ([`GpuContext::open`]). The benchmark suite sets it to bench each GPU.
    pub adapter: Option<usize>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            backend: BackendChoice::Auto,
            batch_steps: DEFAULT_BATCH_STEPS,
            progress: false,
            adapter: None,
        }
    }
}

/// One population's results.
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case)]
pub struct PopulationSummary {
    /// Name.
    pub name: String,
    /// Neurons.
    pub size: u32,
    /// Spikes in the whole run.
    pub spikes: u64,
    /// Mean rate (Hz).
    pub rate_hz: f64,
    /// Mean CV of inter-spike intervals over neurons with at least 3 spikes (null if none).
    pub cv_isi: Option<f64>,
    /// Neurons that entered the CV mean.
    pub cv_isi_neurons: u64,
    /// Time-averaged mean V (mV) over the samples.
    pub mean_v_mV: Option<f64>,
    /// Time-averaged mean AMPA conductance (nS).
    pub mean_g_ampa_nS: Option<f64>,
    /// Time-averaged mean GABA_A conductance (nS).
    pub mean_g_gaba_nS: Option<f64>,
    /// Time-averaged NMDA open fraction (pool-weighted O).
    pub mean_nmda_open: Option<f64>,
    /// Time-averaged NMDA blocked fraction by ketamine (pool-weighted B + T).
    pub mean_nmda_blocked: Option<f64>,
    /// NMDA charge per neuron over the run (pC; positive = inward, depolarising), from
    /// the sampled mean current: the Ca2+-influx proxy.
    pub nmda_charge_pC: Option<f64>,
    /// AMPA charge per neuron over the run (pC).
    pub ampa_charge_pC: Option<f64>,
    /// GABA_A charge per neuron over the run (pC).
    pub gaba_charge_pC: Option<f64>,
    /// Glutamate release and extracellular level (populations that release).
    pub glutamate: Option<GlutamateSummary>,
    /// Mean spike-count synchrony chi over the windows (recorded populations only;
    /// `protocol::SYNCHRONY_BIN_MS` bins).
    pub synchrony: Option<f64>,
}

/// The protocol's time course in brief (`timecourse.csv` has every window).
#[derive(Debug, Clone, Serialize)]
pub struct ProtocolSummary {
    /// "continuous" or "multiscale".
    pub mode: String,
    /// Windows (rows of `timecourse.csv`).
    pub windows: usize,
    /// Windows in the pre-drug baseline.
    pub baseline_windows: usize,
    /// Population whose summed synaptic currents make the LFP proxy (the first that
    /// releases glutamate: the pyramidal cells).
    pub lfp_population: String,
    /// The window with the highest glutamate (% of baseline) of `lfp_population`.
    pub glutamate_peak: Option<WindowBrief>,
    /// The window with the lowest.
    pub glutamate_trough: Option<WindowBrief>,
    /// The last window.
    pub last: Option<WindowBrief>,
}

/// One window in brief.
#[derive(Debug, Clone, Serialize)]
pub struct WindowBrief {
    /// Middle of the window on the protocol clock (min).
    pub t_min: f64,
    /// Free concentration (µM).
    pub conc_um: f64,
    /// Glutamate of the LFP population, % of baseline.
    pub glutamate_pct_baseline: f64,
    /// Rate of every population (Hz), in order.
    pub rates_hz: Vec<f64>,
    /// NMDA blocked fraction of every population, in order.
    pub nmda_blocked: Vec<f64>,
    /// Gamma power / baseline.
    pub gamma_power_ratio: f64,
}

impl WindowBrief {
    fn of(w: &Window, p: usize) -> WindowBrief {
        WindowBrief {
            t_min: 0.5 * (w.protocol_min.0 + w.protocol_min.1),
            conc_um: w.conc_um,
            glutamate_pct_baseline: w.pops[p].glutamate_pct_baseline,
            rates_hz: w.pops.iter().map(|q| q.rate_hz).collect(),
            nmda_blocked: w.pops.iter().map(|q| q.nmda_blocked).collect(),
            gamma_power_ratio: w.pops[p].gamma_power_ratio,
        }
    }
}

impl ProtocolSummary {
    /// The summary of `windows` with population `p` as the LFP (and glutamate)
    /// population.
    pub fn new(net: &Network, windows: &[Window], p: usize) -> ProtocolSummary {
        let pick = |better: fn(f64, f64) -> bool| {
            windows
                .iter()
                .filter(|w| !w.baseline && w.pops[p].glutamate_pct_baseline.is_finite())
                .fold(None::<&Window>, |best, w| match best {
                    Some(b)
                        if !better(
                            w.pops[p].glutamate_pct_baseline,
                            b.pops[p].glutamate_pct_baseline,
                        ) =>
                    {
                        Some(b)
                    }
                    _ => Some(w),
                })
                .map(|w| WindowBrief::of(w, p))
        };
        ProtocolSummary {
            mode: match net.scenario.protocol.mode {
                ProtocolMode::Continuous => "continuous".into(),
                ProtocolMode::Multiscale => "multiscale".into(),
            },
            windows: windows.len(),
            baseline_windows: windows.iter().filter(|w| w.baseline).count(),
            lfp_population: net.pop_names[p].clone(),
            glutamate_peak: pick(|a, b| a > b),
            glutamate_trough: pick(|a, b| a < b),
            last: windows.last().map(|w| WindowBrief::of(w, p)),
        }
    }
}

/// Glutamate of one releasing population.
#[derive(Debug, Clone, Serialize)]
pub struct GlutamateSummary {
    /// Vesicles released per neuron per second, over the run.
    pub release_rate_hz: f64,
    /// Mean extracellular glutamate over the run (µM).
    pub mean_um: f64,
    /// Mean over the last `record.glutamate_window_ms` (µM).
    pub window_um: f64,
    /// Mean over the baseline (`record.baseline_ms`), if one is set (µM).
    pub baseline_um: Option<f64>,
    /// `window_um` as % of `baseline_um`.
    pub pct_baseline: Option<f64>,
}

fn mean_f32(x: &[f32]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64
}

fn glutamate_summaries(
    net: &Network,
    glu_steps: &[Vec<f32>],
    bin_release: &[Vec<f64>],
    scenario: &Scenario,
) -> Vec<Option<GlutamateSummary>> {
    let dt = scenario.dt_ms;
    let duration_s = net.steps as f64 * dt * 1e-3;
    let window = (crate::scenario::steps_of(scenario.record.glutamate_window_ms, dt).max(1)
        as usize)
        .min(net.steps as usize);
    let base = crate::scenario::steps_of(scenario.record.baseline_ms, dt) as usize;
    net.pops()
        .iter()
        .enumerate()
        .map(|(p, pp)| {
            if pp.glu_on == 0 {
                return None;
            }
            let g = &glu_steps[p];
            let released: f64 = bin_release.iter().map(|r| r[p]).sum();
            let window_um = mean_f32(&g[g.len().saturating_sub(window)..]);
            let baseline_um = (base > 0).then(|| mean_f32(&g[..base.min(g.len())]));
            Some(GlutamateSummary {
                release_rate_hz: released / pp.size as f64 / duration_s,
                mean_um: mean_f32(g),
                window_um,
                baseline_um,
                pct_baseline: baseline_um.map(|b| 100.0 * window_um / b),
            })
        })
        .collect()
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// "gpu" or "cpu".
    pub backend: String,
    /// Adapter description.
    pub adapter: String,
    /// Scenario name.
    pub scenario: String,
    /// Neurons.
    pub neurons: u64,
    /// Synapses (expected count for procedural fixed-probability projections).
    pub synapses: f64,
    /// Whether `synapses` is an exact count.
    pub synapses_exact: bool,
    /// Time step (ms).
    pub dt_ms: f64,
    /// Simulated time (ms).
    pub duration_ms: f64,
    /// Steps simulated.
    pub steps: u64,
    /// Seed.
    pub seed: u64,
    /// Network construction, upload and pipeline build (s).
    pub build_s: f64,
    /// Simulation loop (s).
    pub wall_s: f64,
    /// Real-time factor: wall_s / simulated seconds.
    pub rtf: f64,
    /// neurons x steps / wall_s.
    pub neuron_updates_per_s: f64,
    /// Synaptic events delivered (spikes x expected out-degree).
    pub synaptic_events: f64,
    /// synaptic_events / wall_s.
    pub synaptic_events_per_s: f64,
    /// Device bytes per neuron of the O(N) buffers.
    pub device_bytes_per_neuron: u64,
    /// Device bytes planned in all.
    pub device_bytes: u64,
    /// Recorded spikes dropped because the record buffer was full.
    pub spikes_dropped: u64,
    /// Population means of sampled quantities reported as NaN because some neuron's
    /// value reached the sampler's fixed-point limit (`STAT_CLAMP`); counted per
    /// sample, population and quantity.
    pub samples_clipped: u64,
    /// Per population.
    pub populations: Vec<PopulationSummary>,
    /// The protocol's time course in brief.
    pub protocol: ProtocolSummary,
}

/// Column stems and unit suffixes of the sampled quantities in `samples.csv`, in the
/// order of `STAT_SCALES`.
pub const SAMPLE_COLUMNS: [(&str, &str); STATS_PER_POP] = [
    ("v", "_mV"),
    ("g_ampa", "_nS"),
    ("g_gaba", "_nS"),
    ("nmda_open", ""),
    ("nmda_blocked", ""),
    ("i_nmda", "_pA"),
    ("i_ampa", "_pA"),
    ("i_gaba", "_pA"),
];

/// The `samples.csv` column of a quantity of population `pop` (`v_E_mV`).
pub fn sample_column(stem: &str, pop: &str, unit: &str) -> String {
    format!("{stem}_{pop}{unit}")
}

/// How many samples of one quantity of one population were clipped, and when first.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClipCount {
    /// Samples whose mean is NaN because a neuron's value was clamped.
    pub samples: u64,
    /// Time of the first (ms).
    pub first_ms: Option<f64>,
}

impl ClipCount {
    /// Count a clipped sample at `t_ms`.
    pub fn note(&mut self, t_ms: f64) {
        self.samples += 1;
        self.first_ms.get_or_insert(t_ms);
    }
}

/// One line per clipped quantity of population `pop`: which column is NaN, in how
/// many of `n_samples` samples, from when, and the limit that was reached.
pub fn clip_warnings(
    pop: &str,
    clip: &[ClipCount; STATS_PER_POP],
    n_samples: usize,
) -> Vec<String> {
    clip.iter()
        .zip(SAMPLE_COLUMNS)
        .enumerate()
        .filter_map(|(k, (c, (stem, unit)))| {
            let first = c.first_ms?;
            let limit = STAT_CLAMP as f64 / STAT_SCALES[k] as f64;
            Some(format!(
                "population `{pop}`: {} of {n_samples} samples of {} are NaN (first at t = {first} ms): \
                 a neuron's value reached the sampler's fixed-point limit of +-{limit}{} per neuron, \
                 so the population mean is unknown there, as is what is computed from it (its charge; \
                 for a current, the LFP proxy and its gamma power); spikes and rates are unaffected",
                c.samples,
                sample_column(stem, pop, unit),
                unit.replace('_', " "),
            ))
        })
        .collect()
}

/// A finished run: summary plus the time series behind the files.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Summary.
    pub summary: Summary,
    /// Population spike counts per rate bin: `bins x n_pop`.
    pub bin_counts: Vec<Vec<u64>>,
    /// Steps per rate bin.
    pub rate_bin_steps: u32,
    /// Free ketamine at the receptors at the start of each rate bin (µM).
    pub bin_conc_um: Vec<f64>,
    /// Per bin and population: mean extracellular glutamate (µM; NaN where the
    /// population releases none).
    pub bin_glutamate_um: Vec<Vec<f64>>,
    /// Per bin and population: released vesicles per neuron per second.
    pub bin_release_hz: Vec<Vec<f64>>,
    /// Which populations release glutamate.
    pub glu_pops: Vec<bool>,
    /// Samples: (time in ms, per population means of the `STATS_PER_POP` quantities).
    pub samples: Vec<(f64, Vec<[f64; STATS_PER_POP]>)>,
    /// Recorded spikes (time ms, neuron).
    pub spikes: Vec<(f64, u32)>,
    /// Population names.
    pub pop_names: Vec<String>,
    /// Population sizes.
    pub pop_sizes: Vec<u32>,
    /// The measured windows (`timecourse.csv`).
    pub windows: Vec<Window>,
    /// Multiscale: what the bridge did across each gap.
    pub bridges: Vec<Vec<BridgeEntry>>,
    /// Per population and sampled quantity: the samples whose mean is NaN because a
    /// neuron's value reached the fixed-point limit.
    pub clips: Vec<[ClipCount; STATS_PER_POP]>,
}

impl RunResult {
    /// The warnings of [`clip_warnings`] for populations `first_pop..` of this run,
    /// named `names` (a batched sweep's copy names its populations as its scenario
    /// does); empty where nothing was clipped.
    pub fn clip_warnings_for(&self, first_pop: usize, names: &[String]) -> Vec<String> {
        self.clips[first_pop..first_pop + names.len()]
            .iter()
            .zip(names)
            .flat_map(|(clip, name)| clip_warnings(name, clip, self.samples.len()))
            .collect()
    }
}

/// Build the backend for a network, honouring `choice` (auto falls back to the CPU
/// with a warning on stderr where there is no GPU, but not where `KETASIM_ADAPTER`
/// names an adapter it cannot take: that stops the run).
pub fn make_backend(net: &Network, choice: BackendChoice) -> Result<Box<dyn Backend>> {
    make_backend_on(net, choice, None)
}

/// [`make_backend`] on the adapter numbered `adapter` in `ketasim devices` where a GPU
/// backend is made (`None`: as [`GpuContext::new`] chooses).
pub fn make_backend_on(
    net: &Network,
    choice: BackendChoice,
    adapter: Option<usize>,
) -> Result<Box<dyn Backend>> {
    match choice {
        BackendChoice::Cpu => Ok(Box::new(CpuBackend::new(net)?)),
        BackendChoice::Gpu => Ok(Box::new(GpuBackend::new(
            GpuContext::open(adapter, false)?,
            net,
        )?)),
        BackendChoice::Auto => match GpuContext::open(adapter, false) {
            Ok(ctx) if ctx.info.device_type == wgpu::DeviceType::Cpu => {
                // A software adapter (llvmpipe) runs the kernels slower than the CPU
                // backend runs its twin: auto picks the faster one.
                eprintln!(
                    "note: the GPU adapter is a software one ({}); using the faster CPU backend (--backend gpu forces the adapter)",
                    ctx.info.name
                );
                Ok(Box::new(CpuBackend::new(net)?))
            }
            Ok(ctx) => Ok(Box::new(GpuBackend::new(ctx, net)?)),
            Err(e @ crate::error::Error::NoGpu(_)) => {
                eprintln!("warning: {e}\nwarning: falling back to the CPU reference backend");
                Ok(Box::new(CpuBackend::new(net)?))
            }
            Err(e) => Err(e),
        },
    }
}

/// Run the jobs that `feed` hands over (simulations, as a sweep or a dose-response
/// builds them) on one thread per entry of `workers`, `work(job, worker)` on the
/// first free thread, and give each result to `record` on this thread as it
/// finishes. A job is taken from `feed` only when a thread is free, so at most one
/// per thread is held. The first failure stops the feeding; jobs under way finish,
/// and the error returned is that of the earliest failed job in feed order (the one
/// a single thread would have met). With one worker the jobs run on this thread, in
/// order. Used by `sweep --adapters` and `dose-response --adapters`, each worker an
/// adapter.
pub fn on_workers<W: Sync, J: Send, R: Send, E: Send + From<crate::error::Error>>(
    workers: &[W],
    feed: impl FnOnce(&mut dyn FnMut(J) -> std::result::Result<(), E>) -> std::result::Result<(), E>,
    work: impl Fn(J, &W) -> std::result::Result<R, E> + Sync,
    record: &mut dyn FnMut(R),
) -> std::result::Result<(), E> {
    use std::sync::mpsc;
    let internal = |m: &str| E::from(crate::error::Error::Internal(m.to_string()));
    match workers {
        [] => return Err(internal("on_workers: no worker")),
        [one] => {
            return feed(&mut |job| {
                record(work(job, one)?);
                Ok(())
            })
        }
        _ => {}
    }
    // A rendezvous channel: a job is built only when a thread is free to take it.
    let (job_tx, job_rx) = mpsc::sync_channel::<(usize, J)>(0);
    let job_rx = std::sync::Mutex::new(job_rx);
    // Each finished job with its position in the feed.
    let (done_tx, done_rx) = mpsc::channel::<(usize, std::result::Result<R, E>)>();
    let work = &work;
    std::thread::scope(|scope| {
        for worker in workers {
            let (job_rx, done_tx) = (&job_rx, done_tx.clone());
            scope.spawn(move || loop {
                let job = match job_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok((order, job)) = job else { return };
                if done_tx.send((order, work(job, worker))).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut failed: Option<(usize, E)> = None;
        let mut take = |(order, d): (usize, std::result::Result<R, E>),
                        failed: &mut Option<(usize, E)>| match d {
            Ok(r) => record(r),
            Err(e) => {
                if failed.as_ref().is_none_or(|(o, _)| order < *o) {
                    *failed = Some((order, e));
                }
            }
        };
        let mut order = 0usize;
        let fed = feed(&mut |job| {
            while let Ok(d) = done_rx.try_recv() {
                take(d, &mut failed);
            }
            if failed.is_some() {
                return Err(internal("a job failed"));
            }
            order += 1;
            job_tx
                .send((order, job))
                .map_err(|_| internal("every worker thread has stopped"))
        });
        drop(job_tx);
        for d in done_rx {
            take(d, &mut failed);
        }
        match (failed, fed) {
            (Some((_, e)), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(()),
        }
    })
}

/// CV of the inter-spike intervals of one neuron's accumulators (needs >= 2 intervals).
pub fn cv_of(s: &IsiStat) -> Option<f64> {
    if s.count < 2 {
        return None;
    }
    let n = s.count as f64;
    let mean = s.sum_steps as f64 / n;
    let var = (s.sum_sq as f64 / n - mean * mean).max(0.0);
    Some(var.sqrt() / mean)
}

/// Run a scenario to the end.
pub fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunResult> {
    let t0 = Instant::now();
    let net = Network::build(scenario, opts.batch_steps)?;
    run_network(net, opts, t0)
}

/// Run a built network (one scenario, or a batch joined by `Network::merge`) to the
/// end; `t0` is when its construction started (for `build_s`).
pub fn run_network(net: Network, opts: &RunOptions, t0: Instant) -> Result<RunResult> {
    let scenario = &net.scenario.clone();
    let plan = memory::plan(scenario, 1.0, opts.batch_steps);
    let mut backend = make_backend_on(&net, opts.backend, opts.adapter)?;
    let build_s = t0.elapsed().as_secs_f64();
    let n_pop = net.pop_names.len();
    let bin = net.rate_bin_steps as u64;
    let n_bins = net.steps.div_ceil(bin) as usize;
    let mut bin_counts = vec![vec![0u64; n_pop]; n_bins];
    let mut totals = vec![0u64; n_pop];
    // Glutamate per step (µM) and release (vesicles) per population.
    let mut glu_steps: Vec<Vec<f32>> = vec![Vec::with_capacity(net.steps as usize); n_pop];
    let mut bin_release = vec![vec![0.0f64; n_pop]; n_bins];
    let mut samples = Vec::new();
    let mut clips = vec![[ClipCount::default(); STATS_PER_POP]; net.pop_names.len()];
    let mut spikes = Vec::new();
    let mut dropped = 0u64;
    let dt = scenario.dt_ms;
    let pop_sizes: Vec<u32> = net.pops().iter().map(|p| p.size).collect();
    let spans = protocol::window_spans(&net);
    let baseline = protocol::baseline_flags(&net, &spans);
    let mut accs: Vec<WindowAcc> = spans
        .iter()
        .map(|&steps| WindowAcc {
            steps,
            spikes: vec![0; n_pop],
            glu_sum: vec![0.0; n_pop],
            released: vec![0.0; n_pop],
            conc_sum: 0.0,
        })
        .collect();
    let mut win = 0usize;
    let mut bridges = Vec::new();
    let multiscale = scenario.protocol.mode == ProtocolMode::Multiscale;
    // Slow signalling: readouts at every window's end (batches are cut there).
    let mut slow = SlowDriver::new(&net);
    let mut slow_rows: Vec<Vec<Option<SlowReadout>>> = vec![Vec::new(); spans.len()];
    let mut slow_win = 0usize;
    // Readouts start at the reference window (the last baseline one).
    let slow_first = protocol::reference_window(&net, &spans);
    let mut slow_last_end: Option<u64> = None;
    let bar = progress_bar(opts.progress, net.steps);
    let t1 = Instant::now();
    let mut done = 0u64;
    while done < net.steps {
        if multiscale && done > 0 && net.segment_of(done).first_step == done {
            // A gap between windows: advance the block across it.
            let prev = net.segment_of(done - 1);
            let t_from = prev.protocol_min + prev.steps as f64 * dt / 60_000.0;
            let t_to = net.segment_of(done).protocol_min;
            let state = backend.state()?;
            let (report, pools) =
                protocol::bridge_block(&net, &state, t_from, t_to, scenario.protocol.bridge_step_s);
            backend.set_nmda_pools(&pools)?;
            bridges.push(report);
        }
        let mut steps = net.batch_len(done, opts.batch_steps as u64);
        if let Some(sd) = slow.as_mut() {
            if let Some(&(a, b)) = spans.get(slow_win) {
                // A readout interval starts empty unless the last one ended here.
                if done == a && slow_last_end != Some(a) {
                    sd.start_interval(backend.as_mut())?;
                }
                let next = if done < a { a } else { b };
                steps = steps.min((next - done) as u32);
            }
        }
        let drug = net.drug_at(done, steps);
        backend.set_drug(drug)?;
        let out: BatchOutput = backend.run_batch(steps)?;
        check_stable(&out, &net.pop_names, &pop_sizes, dt)?;
        for t in 0..steps as usize {
            let step = out.first_step + t as u64;
            let b = (step / bin) as usize;
            while win < accs.len() && accs[win].steps.1 <= step {
                win += 1;
            }
            let acc = accs
                .get_mut(win)
                .filter(|a| a.steps.0 <= step && step < a.steps.1);
            let in_win = acc.is_some();
            if let Some(a) = acc {
                a.conc_sum += drug.conc0_um as f64 + drug.slope_um_per_step as f64 * t as f64;
            }
            for p in 0..n_pop {
                let c = out.pop_counts[t * n_pop + p] as u64;
                bin_counts[b][p] += c;
                totals[p] += c;
                let glu_on = net.pops()[p].glu_on != 0;
                if glu_on {
                    glu_steps[p].push(out.glutamate_um[t * n_pop + p]);
                    bin_release[b][p] += out.release_fixed[t * n_pop + p] as f64 / GLU_SCALE as f64;
                }
                if in_win {
                    let a = &mut accs[win];
                    a.spikes[p] += c;
                    if glu_on {
                        a.glu_sum[p] += out.glutamate_um[t * n_pop + p] as f64;
                        a.released[p] += out.release_fixed[t * n_pop + p] as f64 / GLU_SCALE as f64;
                    }
                }
            }
        }
        for s in &out.samples {
            let t_ms = (s.step + 1) as f64 * dt;
            let means: Vec<[f64; STATS_PER_POP]> = s
                .sums
                .iter()
                .zip(&s.clipped)
                .zip(net.pops())
                .zip(clips.iter_mut())
                .map(|(((sum, &clipped), pp), clip)| {
                    let mut m = [0.0; STATS_PER_POP];
                    for k in 0..STATS_PER_POP {
                        m[k] = if clipped & (1 << k) != 0 {
                            // Some neuron's value was clamped: the mean is unknown.
                            clip[k].note(t_ms);
                            f64::NAN
                        } else {
                            sum[k] as f64 / STAT_SCALES[k] as f64 / pp.size as f64
                        };
                    }
                    if pp.syn_current != 0 {
                        // No conductances: the currents are in I_AMPA and I_GABA.
                        m[1] = f64::NAN;
                        m[2] = f64::NAN;
                    }
                    m
                })
                .collect();
            samples.push((t_ms, means));
        }
        spikes.extend(out.spikes.iter().map(|&(st, i)| (st as f64 * dt, i)));
        dropped += out.spikes_dropped;
        done += steps as u64;
        if let Some(sd) = slow.as_mut() {
            if let Some(&(a, b)) = spans.get(slow_win) {
                if done == b {
                    if slow_win >= slow_first {
                        let interval_s = (b - a) as f64 * dt * 1e-3;
                        let t_end = net.protocol_min_at_step(b - 1) + dt / 60_000.0;
                        let conc = |t: f64| net.conc_at_min(t);
                        slow_rows[slow_win] =
                            sd.finish_interval(backend.as_mut(), interval_s, t_end, &conc)?;
                        slow_last_end = Some(b);
                    }
                    slow_win += 1;
                }
            }
        }
        if let Some(b) = &bar {
            b.set_position(done);
        }
    }
    let wall_s = t1.elapsed().as_secs_f64();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if dropped > 0 {
        eprintln!(
            "warning: {dropped} spikes were not recorded (record buffer full); raise record.max_spikes_per_batch"
        );
    }
    let samples_clipped = clips.iter().flatten().map(|c| c.samples).sum();
    let isi = backend.isi()?;
    let lfp_pop = net.pops().iter().position(|p| p.glu_on != 0).unwrap_or(0);
    let mut windows = protocol::finish_windows(&net, &accs, &baseline, &samples, &spikes, lfp_pop);
    for (w, rows) in windows.iter_mut().zip(&slow_rows) {
        for (pw, r) in w.pops.iter_mut().zip(rows) {
            pw.slow = *r;
        }
    }
    let glutamate = glutamate_summaries(&net, &glu_steps, &bin_release, scenario);
    let duration_s = net.steps as f64 * dt * 1e-3;
    let mut populations = Vec::new();
    let mut events = 0.0;
    for (p, pp) in net.pops().iter().enumerate() {
        let cvs: Vec<f64> = isi[pp.offset as usize..(pp.offset + pp.size) as usize]
            .iter()
            .filter_map(cv_of)
            .collect();
        let mean_k = |k: usize| -> Option<f64> {
            (!samples.is_empty())
                .then(|| samples.iter().map(|(_, m)| m[p][k]).sum::<f64>() / samples.len() as f64)
        };
        // Expected out-degree of this population, for the event count.
        let out_degree: f64 = net
            .projs()
            .iter()
            .zip(&net.projections)
            .filter(|(pr, _)| pr.pre_offset == pp.offset)
            .map(|(_, info)| info.synapses / pp.size as f64)
            .sum();
        events += totals[p] as f64 * out_degree;
        let glu = glutamate[p].clone();
        populations.push(PopulationSummary {
            name: net.pop_names[p].clone(),
            size: pp.size,
            spikes: totals[p],
            rate_hz: totals[p] as f64 / pp.size as f64 / duration_s,
            cv_isi: (!cvs.is_empty()).then(|| cvs.iter().sum::<f64>() / cvs.len() as f64),
            cv_isi_neurons: cvs.len() as u64,
            mean_v_mV: mean_k(0),
            mean_g_ampa_nS: mean_k(1),
            mean_g_gaba_nS: mean_k(2),
            mean_nmda_open: mean_k(3),
            mean_nmda_blocked: mean_k(4),
            // Mean current (pA) x duration (s) = charge (pC); the sampled currents are
            // g (E - V): positive when depolarising (inward for NMDA and AMPA).
            nmda_charge_pC: mean_k(5).map(|i| i * duration_s),
            ampa_charge_pC: mean_k(6).map(|i| i * duration_s),
            gaba_charge_pC: mean_k(7).map(|i| i * duration_s),
            glutamate: glu,
            synchrony: {
                let chi: Vec<f64> = windows
                    .iter()
                    .map(|w| w.pops[p].synchrony)
                    .filter(|x| x.is_finite())
                    .collect();
                (!chi.is_empty()).then(|| chi.iter().sum::<f64>() / chi.len() as f64)
            },
        });
    }
    let summary = Summary {
        backend: backend.kind().label().to_string(),
        adapter: backend.adapter(),
        scenario: scenario.name.clone(),
        neurons: net.n as u64,
        synapses: net.synapse_count(),
        synapses_exact: net.projections.iter().all(|p| p.exact),
        dt_ms: dt,
        duration_ms: net.steps as f64 * dt,
        steps: net.steps,
        seed: scenario.seed,
        build_s,
        wall_s,
        rtf: wall_s / duration_s,
        neuron_updates_per_s: net.n as f64 * net.steps as f64 / wall_s,
        synaptic_events: events,
        synaptic_events_per_s: events / wall_s,
        device_bytes_per_neuron: plan.bytes_per_neuron,
        device_bytes: plan.total_bytes,
        spikes_dropped: dropped,
        samples_clipped,
        populations,
        protocol: ProtocolSummary::new(&net, &windows, lfp_pop),
    };
    let bin_conc_um = (0..bin_counts.len() as u64)
        .map(|b| net.conc_at_step(b * bin))
        .collect();
    let glu_pops: Vec<bool> = net.pops().iter().map(|p| p.glu_on != 0).collect();
    let bin_glutamate_um = (0..bin_counts.len())
        .map(|b| {
            (0..n_pop)
                .map(|p| {
                    let lo = (b * bin as usize).min(glu_steps[p].len());
                    let hi = ((b + 1) * bin as usize).min(glu_steps[p].len());
                    mean_f32(&glu_steps[p][lo..hi])
                })
                .collect()
        })
        .collect();
    let bin_release_hz = bin_release
        .iter()
        .enumerate()
        .map(|(b, r)| {
            let start = b as u64 * bin;
            let width_s = ((start + bin).min(net.steps) - start) as f64 * dt * 1e-3;
            r.iter()
                .zip(net.pops())
                .map(|(v, pp)| v / pp.size as f64 / width_s)
                .collect()
        })
        .collect();
    Ok(RunResult {
        summary,
        bin_glutamate_um,
        bin_release_hz,
        glu_pops,
        bin_counts,
        rate_bin_steps: net.rate_bin_steps,
        bin_conc_um,
        samples,
        spikes,
        pop_names: net.pop_names.clone(),
        pop_sizes: net.pops().iter().map(|p| p.size).collect(),
        windows,
        bridges,
        clips,
    })
}

fn progress_bar(enabled: bool, steps: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(steps);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps ({eta} left)",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

/// Write `summary.json`, `timecourse.csv`, `rates.csv`, `samples.csv`, (if spikes
/// were recorded) `spikes.csv`, and the figures of `report::write_figures` into `dir`.
/// Check, before a simulation spends its time, that the output folder `dir` could be
/// made and written, without making it: the nearest part of the path that exists
/// must be a folder in which a file can be created (a probe file, removed at once).
/// The error names the path and the reason, as writing would.
pub fn check_out_dir(dir: &std::path::Path) -> Result<()> {
    let io = |path: &std::path::Path, source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let Some(existing) = dir
        .ancestors()
        .find(|a| a.as_os_str().is_empty() || std::fs::symlink_metadata(a).is_ok())
    else {
        return Ok(());
    };
    let existing = if existing.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        existing
    };
    if !existing.is_dir() {
        // Below a file, creating the folder fails before it creates anything, with the
        // OS's reason; the path itself a file is "not a directory" too.
        let source = if existing == dir {
            None
        } else {
            std::fs::create_dir_all(dir).err()
        };
        let source =
            source.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::NotADirectory));
        return Err(io(dir, source));
    }
    let probe = existing.join(format!(".ketasim-write-probe-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(|e| io(dir, e))?;
    std::fs::remove_file(&probe).map_err(|e| io(&probe, e))?;
    Ok(())
}

pub fn write_outputs(res: &RunResult, dir: &std::path::Path) -> Result<()> {
    let io = |path: &std::path::Path| {
        let p = path.display().to_string();
        move |source| Error::Io { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join("summary.json");
    let json = serde_json::to_string_pretty(&res.summary).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&path, json + "\n").map_err(io(&path))?;

    let dt = res.summary.dt_ms;
    let bin_ms = res.rate_bin_steps as f64 * dt;
    let mut csv = String::from("t_start_ms,t_end_ms");
    for n in &res.pop_names {
        csv.push_str(&format!(",rate_{n}_hz"));
    }
    csv.push_str(",conc_um");
    for (n, on) in res.pop_names.iter().zip(&res.glu_pops) {
        if *on {
            csv.push_str(&format!(",glu_{n}_um,release_{n}_hz"));
        }
    }
    csv.push('\n');
    let total_steps = res.summary.steps;
    for (b, row) in res.bin_counts.iter().enumerate() {
        let start = b as u64 * res.rate_bin_steps as u64;
        let end = (start + res.rate_bin_steps as u64).min(total_steps);
        let width_s = (end - start) as f64 * dt * 1e-3;
        csv.push_str(&format!(
            "{:.4},{:.4}",
            start as f64 * dt,
            (start as f64 * dt + bin_ms).min(total_steps as f64 * dt)
        ));
        for (p, c) in row.iter().enumerate() {
            csv.push_str(&format!(
                ",{:.4}",
                *c as f64 / res.pop_sizes[p] as f64 / width_s
            ));
        }
        csv.push_str(&format!(",{:.6}", res.bin_conc_um[b]));
        for (p, on) in res.glu_pops.iter().enumerate() {
            if *on {
                csv.push_str(&format!(
                    ",{:.6},{:.4}",
                    res.bin_glutamate_um[b][p], res.bin_release_hz[b][p]
                ));
            }
        }
        csv.push('\n');
    }
    let path = dir.join("timecourse.csv");
    std::fs::write(
        &path,
        protocol::timecourse_csv(&res.windows, &res.pop_names),
    )
    .map_err(io(&path))?;
    crate::report::write_figures(res, dir)?;
    let path = dir.join("rates.csv");
    std::fs::write(&path, csv).map_err(io(&path))?;

    let mut csv = String::from("t_ms");
    for n in &res.pop_names {
        for (stem, unit) in SAMPLE_COLUMNS {
            csv.push_str(&format!(",{}", sample_column(stem, n, unit)));
        }
    }
    csv.push('\n');
    for (t, means) in &res.samples {
        csv.push_str(&format!("{t:.4}"));
        for m in means {
            csv.push_str(&format!(
                ",{:.4},{:.4},{:.4},{:.6},{:.6},{:.3},{:.3},{:.3}",
                m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]
            ));
        }
        csv.push('\n');
    }
    let path = dir.join("samples.csv");
    std::fs::write(&path, csv).map_err(io(&path))?;

    if !res.spikes.is_empty() {
        let mut csv = String::from("t_ms,neuron\n");
        for (t, i) in &res.spikes {
            csv.push_str(&format!("{t:.4},{i}\n"));
        }
        let path = dir.join("spikes.csv");
        std::fs::write(&path, csv).map_err(io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::on_workers;
    use crate::error::Error;

    /// Feed jobs 0..n; job j sleeps a little (0-3 ms; the first of `fails` 20 ms, so
    /// that a later failure finishes first where there are several workers) and fails
    /// where `fails` says.
    fn run(workers: usize, n: usize, fails: &[usize]) -> (Result<(), Error>, Vec<usize>, usize) {
        let mut done = Vec::new();
        let mut fed = 0usize;
        let r = on_workers(
            &vec![(); workers],
            |feed| {
                for j in 0..n {
                    fed += 1;
                    feed(j)?;
                }
                Ok(())
            },
            |j: usize, _| {
                let ms = if fails.first() == Some(&j) {
                    20
                } else {
                    (n - j) % 4
                };
                std::thread::sleep(std::time::Duration::from_millis(ms as u64));
                if fails.contains(&j) {
                    Err(Error::Internal(format!("job {j} failed")))
                } else {
                    Ok(j)
                }
            },
            &mut |j| done.push(j),
        );
        (r, done, fed)
    }

    #[test]
    fn every_job_runs_once_on_any_number_of_workers() {
        for workers in [1, 2, 3, 8] {
            let (r, mut done, fed) = run(workers, 40, &[]);
            assert!(r.is_ok(), "{workers}: {r:?}");
            assert_eq!(fed, 40);
            if workers == 1 {
                assert_eq!(
                    done,
                    (0..40).collect::<Vec<_>>(),
                    "one worker keeps the order"
                );
            }
            done.sort_unstable();
            assert_eq!(done, (0..40).collect::<Vec<_>>(), "{workers} workers");
        }
    }

    #[test]
    fn the_earliest_failure_in_feed_order_is_returned_and_feeding_stops() {
        for workers in [1, 2, 4] {
            for _ in 0..20 {
                let (r, done, fed) = run(workers, 200, &[5, 9]);
                let err = r.expect_err("jobs 5 and 9 fail").to_string();
                assert!(err.contains("job 5 failed"), "{workers}: {err}");
                assert!(!done.contains(&5) && !done.contains(&9));
                // Feeding stops within a few jobs of the failure.
                assert!(fed < 5 + 4 * workers + 8, "{workers}: fed {fed}");
            }
        }
        let (r, _, _) = run(3, 10, &[]);
        assert!(r.is_ok());
        let err = on_workers::<(), usize, usize, Error>(&[], |_| Ok(()), |j, _| Ok(j), &mut |_| {})
            .expect_err("no worker");
        assert!(err.to_string().contains("no worker"));
    }
}
