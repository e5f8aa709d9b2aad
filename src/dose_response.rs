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
use crate::protocol::{lfp_psd_segments, mean};
use crate::run::{run_network, BackendChoice, RunOptions, RunResult};
use crate::scenario::{Scenario, Source};
use crate::stats::{band_power, mean_ci95, GAMMA_BAND_HZ};
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

/// Gamma power of the E population's LFP proxy between `t0_ms` and `t1_ms`, with
/// Welch segments of a quarter of the window (8 to 256 samples).
fn gamma_power(res: &RunResult, e: usize, t0_ms: f64, t1_ms: f64) -> f64 {
    lfp_psd_segments(&res.samples, e, t0_ms, t1_ms, |n| (n / 4).clamp(8, 256))
        .map_or(f64::NAN, |psd| {
            band_power(&psd, GAMMA_BAND_HZ.0, GAMMA_BAND_HZ.1)
        })
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
    let mut levels = Vec::new();
    let opts = RunOptions {
        backend: args.backend,
        ..RunOptions::default()
    };
    let step_ms = warmup_ms + args.baseline_ms;
    for &conc in &args.conc_um {
        // The replicates of one level share everything but the seed: they run side by
        // side in one simulation (as many as fit), each as it would alone.
        let replicate = |r: u32| -> Result<((), Network)> {
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
            Ok(((), Network::build(&s, opts.batch_steps)?))
        };
        let mut reps = Vec::new();
        for_each_batch(
            (0..args.replicates).map(replicate),
            !args.no_batch,
            |b| -> Result<()> {
                let t0 = std::time::Instant::now();
                let net = join(b.into_iter().map(|(_, n)| n).collect())?;
                let copies = net.copies.clone();
                let res = run_network(net, &opts, t0)?;
                for c in &copies {
                    let m = measure(
                        &res,
                        c.first_pop + e,
                        c.first_pop + i,
                        (warmup_ms, step_ms),
                        step_ms + args.settle_ms,
                    );
                    eprintln!(
                        "  {conc:>8} µM, replicate {}: E {:.2} Hz, I {:.2} Hz, block E {:.3} I {:.3}, glutamate {:.1}% of baseline, gamma x{:.2}",
                        reps.len(), m.rate_e_hz, m.rate_i_hz, m.nmda_block_e, m.nmda_block_i, m.glutamate_pct_baseline, m.gamma_power_ratio
                    );
                    reps.push(m);
                }
                Ok(())
            },
        )?;
        levels.push(Level {
            conc_um: conc,
            replicates: reps,
        });
    }
    Ok(levels)
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
