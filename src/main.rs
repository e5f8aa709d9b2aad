//! `ketasim`: command-line front end. Parsing and printing only; the work is in the
//! library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ketasim::bench;
use ketasim::run::{self, BackendChoice, RunOptions};
use ketasim::scenario::{Scenario, Source};

#[derive(Parser)]
#[command(
    name = "ketasim",
    version,
    about = "GPU spiking-network simulator (wgpu/WGSL) with an exact CPU twin"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (a TOML file, or the name of an embedded one; default: the
    /// embedded default scenario) and write summary.json, rates.csv, samples.csv.
    Run {
        /// Scenario file or embedded name (see `ketasim scenarios`).
        scenario: Option<String>,
        /// Output folder.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Backend.
        #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
        backend: BackendChoice,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the scenario's duration (ms).
        #[arg(long)]
        duration_ms: Option<f64>,
        /// Override any scenario field: dotted.path=value (repeatable), e.g.
        /// populations.E.size=8000 or projections.0.p=0.05.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Steps per GPU submit and read-back batch.
        #[arg(long, default_value_t = run::DEFAULT_BATCH_STEPS)]
        batch_steps: u32,
    },
    /// List the GPU adapters wgpu finds, numbered, with the limits that matter; KETASIM_ADAPTER (an index, a PCI bus id or a part of a name) makes GPU runs take one
    Devices {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the embedded scenarios.
    Scenarios,
    /// Write the GPU kernels as a run of the scenario builds them, with only the code
    /// paths its network can take: NAME.wgsl (source), NAME.spv (the SPIR-V that
    /// Vulkan drivers get, float contraction forbidden) and NAME.layout (its
    /// descriptor types), for a driver's tools (scripts/shader-stats.sh prints each
    /// kernel's registers, spills and occupancy).
    Shaders {
        /// Scenario file or embedded name (see `ketasim scenarios`).
        scenario: Option<String>,
        /// Output folder.
        #[arg(long, default_value = "shaders-out")]
        out: PathBuf,
        /// Override any scenario field: dotted.path=value (repeatable).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Every code path, whatever the scenario (the kernels as written).
        #[arg(long)]
        all_paths: bool,
    },
    /// Clamp the free ketamine concentration at each level after a drug-free
    /// baseline and write dose_response.csv (rates, NMDA block, glutamate % baseline,
    /// gamma power ratio; mean and 95% interval over replicates).
    DoseResponse(ketasim::dose_response::DoseResponseArgs),
    /// Run the cross product of --set axes (path=v1,v2,...) x replicates, or one
    /// --shard K/N of it, writing one CSV row per run.
    Sweep(ketasim::sweep::SweepArgs),
    /// Join the CSVs of sweep shards.
    Merge(ketasim::sweep::MergeArgs),
    /// Ketamine pharmacokinetics of a dosing protocol: plasma (ng/mL, µM) and free
    /// effect-site (µM) time course.
    Pk(ketasim::pk::PkArgs),
    /// In-silico voltage clamp of one NMDA receptor pool: steady-state ketamine block
    /// and Hill fit, onset/offset time constants, trapping.
    Clamp(ketasim::clamp::ClampArgs),
    /// Time a scaled E/I network (COBA neurons, K synapses per neuron) per size and
    /// backend; print a table and write JSON. With --suite: a standard set of
    /// networks on every backend, JSON plus a Markdown table beside it (.md).
    Bench {
        /// Run a suite of networks instead (standard: up to 1e6 neurons, for real GPUs;
        /// quick: small sizes, for tests and CI). `gpu` is every kind of GPU the
        /// machine has, one adapter per model (llvmpipe only where there is no real
        /// GPU; KETASIM_ADAPTER: the one it names). An unavailable backend is reported
        /// as skipped.
        #[arg(long, value_enum, conflicts_with_all = ["neurons", "synapses_per_neuron", "steps"])]
        suite: Option<bench::Suite>,
        /// Network sizes (neurons), comma separated.
        #[arg(long, value_delimiter = ',', default_values_t = vec![10_000u64, 100_000])]
        neurons: Vec<u64>,
        /// Synapses per neuron.
        #[arg(long, default_value_t = 1000)]
        synapses_per_neuron: u64,
        /// Steps to time.
        #[arg(long, default_value_t = 1000)]
        steps: u64,
        /// Backends to time (repeat or comma separate); default: cpu and gpu.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = vec![BackendChoice::Cpu, BackendChoice::Gpu])]
        backend: Vec<BackendChoice>,
        /// JSON output file (with --suite, the Markdown table goes beside it as .md).
        #[arg(long, default_value = "bench.json")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, joined by ": " as anyhow's `{:#}` joins them, leaving out
/// a cause whose text the message already holds (the library's errors name their
/// cause in their own message, as `Error::Io`'s "path: cause" does).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

/// Make sure the JSON file `--out` names can be written before a benchmark spends its
/// time (its folder as `run::check_out_dir` checks one, and not a folder itself), and
/// make its folder, so that a bad path fails at once, naming `--out`, rather than
/// after the runs.
fn prepare_bench_out(out: &std::path::Path) -> anyhow::Result<()> {
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let named = |e: &dyn std::fmt::Display| anyhow::anyhow!("--out {}: {e}", out.display());
    run::check_out_dir(dir).map_err(|e| named(&e))?;
    if out.is_dir() {
        return Err(named(&"a folder; give the JSON file's path"));
    }
    std::fs::create_dir_all(dir).map_err(|e| named(&e))?;
    Ok(())
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            scenario,
            out,
            backend,
            seed,
            duration_ms,
            set,
            batch_steps,
        } => {
            if batch_steps == 0 {
                anyhow::bail!("--batch-steps: must be at least 1");
            }
            let source = Source::locate(scenario.as_deref())?;
            let mut sc = Scenario::load(&source, &set)?;
            if let Some(s) = seed {
                sc.seed = s;
            }
            if let Some(d) = duration_ms {
                sc.duration_ms = d;
            }
            sc.validate().map_err(|e| {
                let flag = if e.starts_with("seed") {
                    "--seed"
                } else {
                    "--duration-ms"
                };
                anyhow::anyhow!("{flag}: {e}")
            })?;
            if let Some(note) = ketasim::protocol::gamma_sampling_note(&sc) {
                eprintln!("note: {note} in timecourse.csv and summary.json");
            }
            run::check_out_dir(&out)?;
            eprintln!(
                "ketasim: {} ({}), {} neurons, {} ms at dt {} ms",
                sc.name,
                source.file,
                sc.neuron_count(),
                sc.duration_ms,
                sc.dt_ms
            );
            let res = run::run(
                &sc,
                &RunOptions {
                    backend,
                    batch_steps,
                    progress: true,
                    adapter: None,
                },
            )?;
            for line in res.clip_warnings_for(0, &res.pop_names) {
                eprintln!("warning: {line}");
            }
            run::write_outputs(&res, &out)?;
            let s = &res.summary;
            eprintln!(
                "{} on {}: build {:.2} s, simulation {:.2} s (RTF {:.3})",
                s.backend, s.adapter, s.build_s, s.wall_s, s.rtf
            );
            for p in &s.populations {
                let cv = p.cv_isi.map_or("n/a".to_string(), |c| format!("{c:.3}"));
                eprintln!(
                    "  {:>8}: {:>9} spikes, {:8.3} Hz, CV(ISI) {cv}",
                    p.name, p.spikes, p.rate_hz
                );
            }
            let pr = &s.protocol;
            if let (Some(hi), Some(lo)) = (&pr.glutamate_peak, &pr.glutamate_trough) {
                eprintln!(
                    "  glutamate of {}: highest {:.1}% of baseline at {:.1} min ({:.3} µM free), lowest {:.1}% at {:.1} min ({:.3} µM)",
                    pr.lfp_population,
                    hi.glutamate_pct_baseline,
                    hi.t_min,
                    hi.conc_um,
                    lo.glutamate_pct_baseline,
                    lo.t_min,
                    lo.conc_um
                );
            }
            let slow = res
                .windows
                .iter()
                .any(|w| w.pops.iter().any(|p| p.slow.is_some()));
            if slow {
                // The mTOR peak and the slow state at the last readout.
                for (p, n) in res.pop_names.iter().enumerate() {
                    if let Some(b) = ketasim::signalling::slow_brief(&res.windows, p) {
                        eprintln!(
                            "  slow state of {n}: mTOR peak x{:.2} of baseline at {:.1} min; synapse density {:.3} at {:.1} h",
                            b.peak_mtor_rel,
                            b.peak.protocol_min.0,
                            b.last_readout.density,
                            b.last.protocol_min.1 / 60.0
                        );
                    }
                }
            }
            eprintln!(
                "wrote {}/summary.json, timecourse.csv, rates.csv, samples.csv{}, and figures (timecourse.png, spectrum.png{}{})",
                out.display(),
                if res.spikes.is_empty() { "" } else { ", spikes.csv" },
                if slow { ", signalling.png" } else { "" },
                if res.spikes.is_empty() { "" } else { ", raster*.png" }
            );
        }
        Command::Devices { json } => {
            let list = ketasim::gpu::list_adapters();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no GPU adapters found (the CPU backend is always available). On Linux: apt-get install -y mesa-vulkan-drivers libvulkan1");
            } else {
                for a in &list {
                    let bus = if a.pci_bus_id.is_empty() {
                        String::new()
                    } else {
                        format!(" | PCI {}", a.pci_bus_id)
                    };
                    println!(
                        "[{}] {} | {} | {} | {}{bus}\n    max storage binding {:.0} MiB, max buffer {:.0} MiB, {} storage buffers/stage, {} workgroups/dim, {} invocations/workgroup, timestamps in passes: {}, strict float (no contraction): {}{}",
                        a.index,
                        a.name,
                        a.backend,
                        a.device_type,
                        a.driver,
                        a.max_storage_buffer_binding_size as f64 / 1048576.0,
                        a.max_buffer_size as f64 / 1048576.0,
                        a.max_storage_buffers_per_shader_stage,
                        a.max_compute_workgroups_per_dimension,
                        a.max_compute_invocations_per_workgroup,
                        a.timestamp_queries,
                        a.strict_float,
                        match a.unusable_because() {
                            None => String::new(),
                            Some(why) => format!("\n    unusable: {why}"),
                        }
                    );
                }
                println!(
                    "GPU runs take wgpu's preferred adapter; {} chooses one (an index above, a PCI bus id or a part of a name)",
                    ketasim::gpu::ADAPTER_ENV
                );
                let suite: Vec<String> = ketasim::gpu::suite_adapters(&list)
                    .iter()
                    .map(|p| {
                        let also: Vec<String> =
                            p.same_as.iter().map(|i| format!("[{i}]")).collect();
                        if also.is_empty() {
                            format!("[{}]", p.index)
                        } else {
                            format!("[{}] (standing for {})", p.index, also.join(", "))
                        }
                    })
                    .collect();
                if !suite.is_empty() {
                    println!(
                        "bench --suite benches {} (one adapter per model; {} unset)",
                        suite.join(", "),
                        ketasim::gpu::ADAPTER_ENV
                    );
                }
            }
        }
        Command::DoseResponse(args) => ketasim::dose_response::command(&args)?,
        Command::Sweep(args) => ketasim::sweep::sweep_command(&args)?,
        Command::Merge(args) => ketasim::sweep::merge_command(&args)?,
        Command::Pk(args) => print!("{}", ketasim::pk::pk_command(&args)?),
        Command::Clamp(args) => print!("{}", ketasim::clamp::clamp_command(&args)?),
        Command::Shaders {
            scenario,
            out,
            set,
            all_paths,
        } => {
            let source = Source::locate(scenario.as_deref())?;
            let sc = Scenario::load(&source, &set)?;
            use ketasim::gpu::shaders::{self, Features, KernelConfig};
            let features = if all_paths {
                Features::ALL
            } else {
                let net = ketasim::model::Network::build(&sc, run::DEFAULT_BATCH_STEPS)?;
                Features::of(&net.params)
            };
            // As a GPU run compiles them: KETASIM_WG_SIZE (up to WebGPU's 1024, with no
            // adapter to ask), KETASIM_GPU_HOLD_PARAMS and KETASIM_GPU_DIV where set.
            let config = KernelConfig {
                wg_size: ketasim::gpu::workgroup_size(
                    ketasim::model::limits::WORKGROUP_SIZE,
                    1024,
                )?,
                features,
                reread_params: !ketasim::gpu::hold_params_from_env()?,
            };
            let division = shaders::division_from_env()?;
            let files = ketasim::gpu::strict::write_kernels(&out, division, &config)?;
            eprintln!(
                "{} ({}): code paths {}",
                if all_paths { "every network" } else { &sc.name },
                source.file,
                serde_json::to_string(&features)?
            );
            eprintln!(
                "wrote {} kernels to {} (.wgsl, .spv, .layout)",
                files.len(),
                out.display()
            );
        }
        Command::Scenarios => {
            for (name, text) in ketasim::scenario::EMBEDDED {
                let desc = text
                    .lines()
                    .find_map(|l| l.strip_prefix("description = "))
                    .unwrap_or("")
                    .trim_matches('"');
                let mark = if *name == ketasim::scenario::DEFAULT_SCENARIO {
                    " (default)"
                } else {
                    ""
                };
                println!("{name}{mark}: {desc}");
            }
        }
        Command::Bench {
            suite: Some(suite),
            backend,
            out,
            ..
        } => {
            if out
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("md"))
            {
                anyhow::bail!(
                    "--out {}: the JSON file must not end in .md (the Markdown table is written beside it as .md)",
                    out.display()
                );
            }
            prepare_bench_out(&out)?;
            // Written after each entry too, so a suite stopped by a time limit keeps the
            // rows it finished.
            let report = bench::run_suite_with(suite, &backend, true, &mut |partial| {
                bench::write_suite(partial, &out).map(|_| ())
            })?;
            print!("{}", bench::suite_markdown(&report));
            let md = bench::write_suite(&report, &out)?;
            eprintln!("wrote {} and {}", out.display(), md.display());
            let failed = report.failed();
            if failed > 0 {
                anyhow::bail!("{failed} benchmark run(s) failed; see the `note` of the rows with status `error`");
            }
        }
        Command::Bench {
            suite: None,
            neurons,
            synapses_per_neuron,
            steps,
            backend,
            out,
        } => {
            if steps == 0 {
                anyhow::bail!("--steps: must be at least 1 (got 0)");
            }
            if synapses_per_neuron == 0 {
                anyhow::bail!("--synapses-per-neuron: must be at least 1 (got 0)");
            }
            if let Some(n) = neurons.iter().find(|&&n| n < 2) {
                anyhow::bail!(
                    "--neurons: every size must be at least 2, an E and an I neuron (got {n})"
                );
            }
            prepare_bench_out(&out)?;
            let rows = bench::bench(&neurons, synapses_per_neuron, steps, &backend)?;
            print!("{}", bench::table(&rows));
            let json = serde_json::json!({ "benchmark": "coba-scaled", "synapses_per_neuron": synapses_per_neuron, "results": rows });
            std::fs::write(&out, serde_json::to_string_pretty(&json)? + "\n")
                .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
            eprintln!("wrote {}", out.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::error_text;
    use anyhow::Context;

    /// A cause already in the message is not repeated; one that is not, and each
    /// context, is given once, in order.
    #[test]
    fn error_text_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let lib = ketasim::error::Error::Io {
            path: "out/x.csv".to_string(),
            source: io,
        };
        let e = anyhow::Error::new(lib);
        assert_eq!(error_text(&e), "out/x.csv: gone");
        let e: anyhow::Error = Err::<(), _>(std::io::Error::other("disk full"))
            .context("writing out")
            .context("--out out")
            .unwrap_err();
        assert_eq!(error_text(&e), "--out out: writing out: disk full");
    }
}
