//! `ketasim dose-response`: clamp the free brain concentration at each level after a
//! drug-free baseline, let the network settle, and measure rates, NMDA block,
//! glutamate (% of the baseline) and gamma power of an LFP proxy (relative to the
//! baseline), over replicates with different seeds (mean and 95% interval).

use crate::pk::MAX_CONC_UM;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::batch::{for_each_batch, join};
use crate::model::Network;
use crate::protocol::{
    gamma_band_power, lfp_psd_segments, max_gamma_sample_interval_ms, mean, MIN_SPECTRUM_SAMPLES,
};
use crate::run::{run_network, BackendChoice, RunOptions, RunResult};
use crate::scenario::{Scenario, Source};
use crate::stats::{mean_ci95, GAMMA_BAND_HZ};
use crate::sweep::replicate_seed;

/// Command-line arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DoseResponseArgs {
    /// Scenario file or embedded name.
    pub scenario: Option<String>,
    /// Free brain concentrations (µM), comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub conc_um: Vec<f64>,
    /// Replicates (seeds) per concentration.
    #[arg(long, default_value_t = 1)]
    pub replicates: u32,
    /// Output folder.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Drug-free time discarded before the baseline, so that slow state (the
    /// glutamate pool) is stationary (ms); default 5 K_m/Vmax of the slowest releasing
    /// population's pool (at least 500 ms).
    #[arg(long)]
    pub warmup_ms: Option<f64>,
    /// Drug-free baseline before the concentration step (ms).
    #[arg(long, default_value_t = 1000.0)]
    pub baseline_ms: f64,
    /// Time allowed to settle after the step, not measured (ms).
    #[arg(long, default_value_t = 500.0)]
    pub settle_ms: f64,
    /// Measurement window after settling (ms).
    #[arg(long, default_value_t = 1000.0)]
    pub measure_ms: f64,
    /// The pyramidal (E) population.
    #[arg(long, default_value = "E")]
    pub e_pop: String,
    /// The interneuron (I) population.
    #[arg(long, default_value = "I")]
    pub i_pop: String,
    /// Scenario overrides, dotted.path=value (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Run each replicate alone instead of the replicates of a level side by side in
    /// one simulation (the results are the same bit for bit).
    #[arg(long)]
    pub no_batch: bool,
    /// GPU adapters to run the levels' simulations on at once, one simulation per
    /// entry at a time: indices from `ketasim devices`, comma separated (an index
    /// given twice runs two simulations side by side on that GPU), or `all`, as
    /// `sweep --adapters`. The results are the same bits. Default: one simulation at
    /// a time.
    #[arg(long, value_delimiter = ',', value_name = "I,J,...|all")]
    pub adapters: Vec<String>,
}

/// The measures of one run.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize)]
pub struct Measures {
    /// Pyramidal rate in the window (Hz).
    pub rate_e_hz: f64,
    /// Interneuron rate in the window (Hz).
    pub rate_i_hz: f64,
    /// Mean NMDA blocked fraction of E in the window.
    pub nmda_block_e: f64,
    /// Mean NMDA blocked fraction of I in the window.
    pub nmda_block_i: f64,
    /// E's extracellular glutamate in the window, % of the baseline.
    pub glutamate_pct_baseline: f64,
    /// Gamma (30-80 Hz) power of the LFP proxy in the window / in the baseline.
    pub gamma_power_ratio: f64,
}

const COLUMNS: [&str; 6] = [
    "rate_E_hz",
    "rate_I_hz",
    "nmda_block_E",
    "nmda_block_I",
    "glutamate_pct_baseline",
    "gamma_power_ratio",
];

impl Measures {
    fn values(&self) -> [f64; 6] {
        [
            self.rate_e_hz,
            self.rate_i_hz,
            self.nmda_block_e,
            self.nmda_block_i,
            self.glutamate_pct_baseline,
            self.gamma_power_ratio,
        ]
    }
}

/// Welch segments of the gamma power: a quarter of the window's `n` samples, from
/// `GAMMA_SEGMENT.0` to `GAMMA_SEGMENT.1` (four segments at 50% overlap average out
/// most of a short window's variance; the cap keeps long windows' resolution near
/// 4 Hz at 1 kHz sampling).
const GAMMA_SEGMENTS_PER_WINDOW: usize = 4;
const GAMMA_SEGMENT: (usize, usize) = (8, 256);

fn gamma_segment(n: usize) -> usize {
    (n / GAMMA_SEGMENTS_PER_WINDOW).clamp(GAMMA_SEGMENT.0, GAMMA_SEGMENT.1)
}

/// Gamma power of the E population's LFP proxy between `t0_ms` and `t1_ms`, with
/// Welch segments of [`gamma_segment`] samples.
fn gamma_power(res: &RunResult, e: usize, t0_ms: f64, t1_ms: f64) -> f64 {
    lfp_psd_segments(&res.samples, e, t0_ms, t1_ms, gamma_segment)
        .map_or(f64::NAN, |psd| gamma_band_power(&psd))
}

/// The shortest window (ms) whose gamma power the measure resolves, for samples every
/// `sample_ms`: at least [`MIN_SPECTRUM_SAMPLES`] samples, and Welch segments
/// ([`gamma_segment`]) whose frequency resolution `fs / segment` is no coarser than
/// the width of the gamma band [`GAMMA_BAND_HZ`]: 80 ms for samples every 0.078 to
/// 2.5 ms, and 4 segments of 8 samples for slower ones (200 ms at 6.25 ms). An error
/// naming `record.sample_interval_ms` where no window resolves it: samples slower
/// than Nyquist for the band's top, or so fast that the segment cap
/// (`GAMMA_SEGMENT.1` samples) keeps every segment coarser.
pub fn min_gamma_window_ms(sample_ms: f64) -> std::result::Result<f64, String> {
    let band = format!("the {}-{} Hz gamma band", GAMMA_BAND_HZ.0, GAMMA_BAND_HZ.1);
    let slowest_ms = max_gamma_sample_interval_ms();
    if sample_ms > slowest_ms * (1.0 + 1e-12) {
        return Err(format!(
            "record.sample_interval_ms: samples every {sample_ms} ms cannot see {band} (Nyquist {} Hz); sample every {slowest_ms} ms or less",
            500.0 / sample_ms
        ));
    }
    let fs_hz = 1000.0 / sample_ms;
    let width_hz = GAMMA_BAND_HZ.1 - GAMMA_BAND_HZ.0;
    let segment = ((fs_hz / width_hz - 1e-9).ceil() as usize).max(GAMMA_SEGMENT.0);
    if segment > GAMMA_SEGMENT.1 {
        return Err(format!(
            "record.sample_interval_ms: samples every {sample_ms} ms are too fast for the gamma power's Welch segments (at most {} samples) to resolve {band}; sample every {} ms or more",
            GAMMA_SEGMENT.1,
            1000.0 / (GAMMA_SEGMENT.1 as f64 * width_hz)
        ));
    }
    let n = (GAMMA_SEGMENTS_PER_WINDOW * segment).max(MIN_SPECTRUM_SAMPLES);
    Ok(n as f64 * sample_ms)
}

/// Whether `[t0_ms, t1_ms]` holds a whole rate bin of `bin_ms` (bins start at 0), as
/// the baseline glutamate of [`measure`] needs.
fn holds_a_bin(t0_ms: f64, t1_ms: f64, bin_ms: f64) -> bool {
    first_bin_start(t0_ms, bin_ms) + bin_ms <= t1_ms + 1e-9
}

/// Start of the first rate bin that starts at or after `t_ms`.
fn first_bin_start(t_ms: f64, bin_ms: f64) -> f64 {
    (t_ms / bin_ms - 1e-9).ceil() * bin_ms
}

/// Check that the baseline and measurement windows are long enough for every measure
/// (rates, glutamate, gamma power), with the scenario's `dt_ms`, `record.rate_bin_ms`
/// and `record.sample_interval_ms`; the message names the flag and the least length.
fn check_windows(
    s: &Scenario,
    warmup_ms: f64,
    baseline_ms: f64,
    measure_ms: f64,
) -> std::result::Result<(), String> {
    let bin_ms = s.rate_bin_run_ms();
    let sample_ms = s.sample_interval_run_ms();
    let gamma_ms = min_gamma_window_ms(sample_ms)?;
    let why = format!(
        "the gamma power needs {gamma_ms} ms (Welch segments of a quarter of the window, sampled every {sample_ms} ms, resolving the {}-{} Hz band), and rates and glutamate whole {bin_ms} ms bins (record.rate_bin_ms)",
        GAMMA_BAND_HZ.0, GAMMA_BAND_HZ.1
    );
    let least_measure = gamma_ms.max(bin_ms);
    if measure_ms < least_measure - 1e-9 {
        return Err(format!(
            "--measure-ms: {measure_ms} ms is too short to measure in: {why}; give at least {least_measure} ms"
        ));
    }
    let least_baseline = gamma_ms.max(first_bin_start(warmup_ms, bin_ms) + bin_ms - warmup_ms);
    if baseline_ms < gamma_ms - 1e-9 || !holds_a_bin(warmup_ms, warmup_ms + baseline_ms, bin_ms) {
        return Err(format!(
            "--baseline-ms: {baseline_ms} ms (after a {warmup_ms} ms warm-up) is too short a baseline: {why}; give at least {least_baseline} ms"
        ));
    }
    Ok(())
}

/// Measure one finished run: baseline [b0, b1) ms, window [w0, end).
pub fn measure(
    res: &RunResult,
    e: usize,
    i: usize,
    (b0, b1): (f64, f64),
    window_start_ms: f64,
) -> Measures {
    let dt = res.summary.dt_ms;
    let bin_ms = res.rate_bin_steps as f64 * dt;
    let end_ms = res.summary.duration_ms;
    let in_window = |b: usize| b as f64 * bin_ms >= window_start_ms - 1e-9;
    let in_baseline =
        |b: usize| b as f64 * bin_ms >= b0 - 1e-9 && (b as f64 + 1.0) * bin_ms <= b1 + 1e-9;
    let rate = |p: usize| {
        let bins: Vec<usize> = (0..res.bin_counts.len())
            .filter(|&b| in_window(b))
            .collect();
        let spikes: u64 = bins.iter().map(|&b| res.bin_counts[b][p]).sum();
        let width_s = (end_ms - bins.first().map_or(end_ms, |&b| b as f64 * bin_ms)) * 1e-3;
        spikes as f64 / res.pop_sizes[p] as f64 / width_s
    };
    let block = |p: usize| {
        mean(
            res.samples
                .iter()
                .filter(|(t, _)| *t > window_start_ms)
                .map(|(_, m)| m[p][4]),
        )
    };
    let glu = if res.glu_pops[e] {
        let w = mean(
            (0..res.bin_counts.len())
                .filter(|&b| in_window(b))
                .map(|b| res.bin_glutamate_um[b][e]),
        );
        let base = mean(
            (0..res.bin_counts.len())
                .filter(|&b| in_baseline(b))
                .map(|b| res.bin_glutamate_um[b][e]),
        );
        100.0 * w / base
    } else {
        f64::NAN
    };
    let g_win = gamma_power(res, e, window_start_ms, end_ms);
    let g_base = gamma_power(res, e, b0, b1);
    Measures {
        rate_e_hz: rate(e),
        rate_i_hz: rate(i),
        nmda_block_e: block(e),
        nmda_block_i: block(i),
        glutamate_pct_baseline: glu,
        gamma_power_ratio: g_win / g_base,
    }
}

/// One concentration's result: per-replicate measures.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Level {
    /// Free concentration (µM).
    pub conc_um: f64,
    /// Measures of each replicate.
    pub replicates: Vec<Measures>,
}

/// Run the whole dose-response and return the levels.
pub fn dose_response(args: &DoseResponseArgs) -> Result<Vec<Level>> {
    let bad = |m: String| Error::Scenario {
        file: "dose-response".into(),
        message: m,
    };
    if args
        .conc_um
        .iter()
        .any(|c| !c.is_finite() || *c < 0.0 || *c > MAX_CONC_UM)
    {
        return Err(bad(format!(
            "--conc-um: every concentration must be in 0..={MAX_CONC_UM} µM (got {:?})",
            args.conc_um
        )));
    }
    if args.replicates == 0 {
        return Err(bad("--replicates: must be at least 1".into()));
    }
    for (flag, v) in [
        ("--baseline-ms", args.baseline_ms),
        ("--settle-ms", args.settle_ms),
        ("--measure-ms", args.measure_ms),
    ] {
        let allowed = v.is_finite() && (v > 0.0 || (flag == "--settle-ms" && v == 0.0));
        if !allowed {
            return Err(bad(format!(
                "{flag}: must be a positive number of ms (got {v})"
            )));
        }
    }
    let source = Source::locate(args.scenario.as_deref())?;
    let base = Scenario::load(&source, &args.set)?;
    let e = base
        .population_index(&args.e_pop)
        .ok_or_else(|| bad(format!("--e-pop: no population named `{}`", args.e_pop)))?;
    let i = base
        .population_index(&args.i_pop)
        .ok_or_else(|| bad(format!("--i-pop: no population named `{}`", args.i_pop)))?;
    if e == i {
        return Err(bad(format!(
            "--i-pop: names the same population as --e-pop (`{}`); give the interneurons' population",
            args.e_pop
        )));
    }
    if base.populations[e].glutamate.is_none() {
        eprintln!(
            "note: population `{}` has no [glutamate] pool, so glutamate_pct_baseline is NaN",
            args.e_pop
        );
    }
    if base.populations[e].nmda.is_none() && base.populations[i].nmda.is_none() {
        eprintln!(
            "note: neither `{}` nor `{}` has NMDA receptors, so ketamine blocks nothing in them (nmda_block 0)",
            args.e_pop, args.i_pop
        );
    }
    let warmup_ms = match args.warmup_ms {
        Some(w) if w.is_finite() && w >= 0.0 => w,
        Some(w) => return Err(bad(format!("--warmup-ms: must be >= 0 ms (got {w})"))),
        None => base
            .populations
            .iter()
            .filter_map(|p| p.glutamate.as_ref())
            .map(|g| 5.0 * g.uptake_km_um / g.uptake_vmax_um_per_ms.max(1e-12))
            .fold(500.0, f64::max)
            .min(60_000.0),
    };
    check_windows(&base, warmup_ms, args.baseline_ms, args.measure_ms).map_err(bad)?;
    crate::run::check_out_dir(&args.out)?;
    let mut base = base;
    if base.pharmacokinetics.is_some()
        || base.protocol.mode != crate::scenario::ProtocolMode::Continuous
    {
        // A clamp replaces the dosing protocol (the default scenario has one).
        eprintln!(
            "note: dose-response clamps the free concentration itself; the scenario's [pharmacokinetics] and [protocol] tables are not used"
        );
        base.pharmacokinetics = None;
        base.protocol = crate::scenario::Protocol::default();
        base.drug.protocol_time_min = 0.0;
    }
    let (workers, backend) =
        crate::sweep::adapter_workers(&args.adapters, args.backend).map_err(bad)?;
    let opts = RunOptions {
        backend,
        ..RunOptions::default()
    };
    let step_ms = warmup_ms + args.baseline_ms;
    let base_names: Vec<String> = base.populations.iter().map(|p| p.name.clone()).collect();
    // The simulations, level by level: (level, its first replicate, the networks).
    // The replicates of one level share everything but the seed: they run side by
    // side in one simulation (as many as fit), each as it would alone.
    let feed = |run: &mut dyn FnMut((usize, u32, Vec<Network>)) -> Result<()>| -> Result<()> {
        for (k, &conc) in args.conc_um.iter().enumerate() {
            let replicate = |r: u32| -> Result<(u32, Network)> {
                let mut s = base.clone();
                s.seed = replicate_seed(base.seed, r);
                s.duration_ms = step_ms + args.settle_ms + args.measure_ms;
                s.drug.conc_um = conc;
                s.drug.start_ms = step_ms;
                s.record.baseline_ms = 0.0;
                s.record.glutamate_window_ms = args.measure_ms;
                s.record.spikes.clear();
                s.validate().map_err(|m| Error::Scenario {
                    file: source.file.clone(),
                    message: m,
                })?;
                Ok((r, Network::build(&s, opts.batch_steps)?))
            };
            for_each_batch(
                (0..args.replicates).map(replicate),
                !args.no_batch,
                |b| -> Result<()> {
                    let first = b.first().map_or(0, |(r, _)| *r);
                    run((k, first, b.into_iter().map(|(_, n)| n).collect()))
                },
            )?;
        }
        Ok(())
    };
    let simulate = |(k, first, nets): (usize, u32, Vec<Network>),
                    &adapter: &Option<usize>|
     -> Result<(usize, u32, Vec<crate::model::Copy>, RunResult)> {
        let t0 = std::time::Instant::now();
        let net = join(nets)?;
        let copies = net.copies.clone();
        let opts = RunOptions {
            adapter,
            ..opts.clone()
        };
        Ok((k, first, copies, run_network(net, &opts, t0)?))
    };
    let mut reps: Vec<Vec<(u32, Measures)>> = vec![Vec::new(); args.conc_um.len()];
    let mut record = |(k, first, copies, res): (usize, u32, Vec<crate::model::Copy>, RunResult)| {
        let conc = args.conc_um[k];
        for (j, c) in copies.iter().enumerate() {
            let r = first + j as u32;
            for line in res.clip_warnings_for(c.first_pop, &base_names) {
                eprintln!("warning: {conc} µM, replicate {r}: {line}");
            }
            let m = measure(
                &res,
                c.first_pop + e,
                c.first_pop + i,
                (warmup_ms, step_ms),
                step_ms + args.settle_ms,
            );
            eprintln!(
                "  {conc:>8} µM, replicate {r}: E {:.2} Hz, I {:.2} Hz, block E {:.3} I {:.3}, glutamate {:.1}% of baseline, gamma x{:.2}",
                m.rate_e_hz, m.rate_i_hz, m.nmda_block_e, m.nmda_block_i, m.glutamate_pct_baseline, m.gamma_power_ratio
            );
            reps[k].push((r, m));
        }
    };
    crate::run::on_workers(&workers, feed, simulate, &mut record)?;
    Ok(args
        .conc_um
        .iter()
        .zip(reps)
        .map(|(&conc_um, mut reps)| {
            // Simulations on several adapters finish in any order.
            reps.sort_by_key(|(r, _)| *r);
            Level {
                conc_um,
                replicates: reps.into_iter().map(|(_, m)| m).collect(),
            }
        })
        .collect())
}

/// `dose_response.csv`: one row per concentration; each measure as the replicate
/// mean, and with more than one replicate its 95% interval (Student t).
pub fn csv(levels: &[Level]) -> String {
    let many = levels.iter().any(|l| l.replicates.len() > 1);
    let mut out = String::from("conc_um,replicates");
    for c in COLUMNS {
        out.push_str(&format!(",{c}"));
        if many {
            out.push_str(&format!(",{c}_ci95_lo,{c}_ci95_hi"));
        }
    }
    out.push('\n');
    for l in levels {
        out.push_str(&format!("{},{}", l.conc_um, l.replicates.len()));
        for k in 0..COLUMNS.len() {
            let xs: Vec<f64> = l.replicates.iter().map(|m| m.values()[k]).collect();
            let (m, lo, hi) = mean_ci95(&xs);
            out.push_str(&format!(",{m:.6}"));
            if many {
                out.push_str(&format!(",{lo:.6},{hi:.6}"));
            }
        }
        out.push('\n');
    }
    out
}

/// Run and write `DIR/dose_response.csv` and `DIR/dose_response.json`.
pub fn command(args: &DoseResponseArgs) -> Result<()> {
    let levels = dose_response(args)?;
    let io = |p: &std::path::Path| {
        let s = p.display().to_string();
        move |e| Error::Io { path: s, source: e }
    };
    std::fs::create_dir_all(&args.out).map_err(io(&args.out))?;
    let path = args.out.join("dose_response.csv");
    std::fs::write(&path, csv(&levels)).map_err(io(&path))?;
    let path = args.out.join("dose_response.json");
    let json = serde_json::to_string_pretty(&levels).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&path, json + "\n").map_err(io(&path))?;
    figure(&levels, &args.out.join("dose_response.png"))?;
    eprintln!(
        "wrote {}/dose_response.csv, dose_response.json and dose_response.png",
        args.out.display()
    );
    Ok(())
}

/// `dose_response.png`: each measure against the concentration, replicate mean with
/// its 95% interval as a band (log concentration axis unless a level is 0).
pub fn figure(levels: &[Level], path: &std::path::Path) -> Result<()> {
    use crate::figures::{stacked_panels, Band, Panel, Series};
    let x: Vec<f64> = levels.iter().map(|l| l.conc_um).collect();
    let column = |k: usize, label: &str| -> (Series, Option<Band>) {
        let (mut y, mut lo, mut hi) = (Vec::new(), Vec::new(), Vec::new());
        for l in levels {
            let xs: Vec<f64> = l.replicates.iter().map(|m| m.values()[k]).collect();
            let (m, a, b) = mean_ci95(&xs);
            y.push(m);
            lo.push(a);
            hi.push(b);
        }
        let many = levels.iter().any(|l| l.replicates.len() > 1);
        (
            Series {
                label: label.to_string(),
                x: x.clone(),
                y,
            },
            many.then_some(Band { lo, hi }),
        )
    };
    let panel = |title: &str, y_label: &str, cols: &[(usize, &str)]| {
        let (series, bands): (Vec<Series>, Vec<Option<Band>>) =
            cols.iter().map(|&(k, l)| column(k, l)).unzip();
        Panel {
            title: title.to_string(),
            y_label: y_label.to_string(),
            series,
            bands,
            log_y: false,
        }
    };
    let panels = [
        panel("Pyramidal (E) firing rate", "Hz", &[(0, "E (pyramidal)")]),
        panel("PV interneuron (I) firing rate", "Hz", &[(1, "I (PV)")]),
        panel(
            "NMDA receptors blocked",
            "fraction",
            &[(2, "E (pyramidal)"), (3, "I (PV)")],
        ),
        panel("Extracellular glutamate", "% of baseline", &[(4, "E pool")]),
        panel(
            "Gamma (30-80 Hz) power of the LFP proxy",
            "ratio to baseline",
            &[(5, "E currents")],
        ),
    ];
    let log_x = x.iter().all(|&c| c > 0.0);
    stacked_panels(
        path,
        "Dose-response (mean, 95% interval)",
        if log_x {
            "free ketamine (µM, log scale)"
        } else {
            "free ketamine (µM)"
        },
        &panels,
        log_x,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 80 ms from 400 Hz up to the segment cap: four segments of at least fs / 50 Hz
    /// samples; none beyond 256 x 50 Hz = 12.8 kHz.
    #[test]
    fn the_gamma_window_resolves_the_band() {
        for (sample_ms, least_ms) in [(1.0, 80.0), (0.5, 80.0), (0.1, 80.0), (2.0, 80.0)] {
            let w = min_gamma_window_ms(sample_ms).expect("resolvable");
            assert!((w - least_ms).abs() < 1e-9, "{sample_ms} ms: {w}");
            let n = (w / sample_ms).round() as usize;
            let seg = gamma_segment(n);
            let res_hz = 1000.0 / sample_ms / seg as f64;
            assert!(res_hz <= GAMMA_BAND_HZ.1 - GAMMA_BAND_HZ.0 + 1e-9);
            assert!(n >= MIN_SPECTRUM_SAMPLES);
            // One sample fewer no longer resolves it.
            let coarser = 1000.0 / sample_ms / gamma_segment(n - 1) as f64;
            assert!(n - 1 < MIN_SPECTRUM_SAMPLES || coarser > GAMMA_BAND_HZ.1 - GAMMA_BAND_HZ.0);
        }
        // Slower than 2.5 ms, the shortest segments (8 samples) resolve the band, and
        // 4 of them take 32 samples; every 6.25 ms reach the band's top (Nyquist
        // 80 Hz), every 10 ms do not.
        assert_eq!(min_gamma_window_ms(5.0), Ok(160.0));
        assert_eq!(min_gamma_window_ms(6.25), Ok(200.0));
        let slow = min_gamma_window_ms(10.0).unwrap_err();
        assert!(
            slow.contains("record.sample_interval_ms") && slow.contains("6.25 ms or less"),
            "{slow}"
        );
        assert!(min_gamma_window_ms(0.078125).is_ok());
        let fast = min_gamma_window_ms(0.05).unwrap_err();
        assert!(fast.contains("0.078125 ms or more"), "{fast}");
    }

    #[test]
    fn a_window_holds_a_bin_from_the_next_bin_start() {
        assert!(holds_a_bin(0.0, 10.0, 10.0));
        assert!(holds_a_bin(5.0, 20.0, 10.0));
        assert!(!holds_a_bin(5.0, 19.9, 10.0));
        assert!((first_bin_start(75.5, 100.0) - 100.0).abs() < 1e-12);
        assert!((first_bin_start(200.0, 100.0) - 200.0).abs() < 1e-12);
    }
}
