//! Planning for `ketasim sweep`: parameter axes from `--set PATH=V1,V2,...`, their
//! cross product with seeded replicates, sharding for job arrays, grouping of runs by
//! network shape for batching, and merging of per-shard CSV tables.
//!
//! Everything here is pure and deterministic: the same axes, replicate count and base
//! seed always give the same runs, in the same order, with the same seeds, so shards of
//! one sweep run on different machines agree on what run `i` is.
//!
//! Replicate seeds depend on the base seed and the replicate number only, never on the
//! parameter values: replicate `r` of every parameter combination uses the same seed
//! (common random numbers), so differences between combinations are not blurred by
//! different random draws.

/// Most runs one sweep may plan.
pub const MAX_RUNS: usize = 1_000_000;

/// Seeds must be below 2^60 (the top bits key ketasim's random streams).
const SEED_MASK: u64 = (1 << 60) - 1;

/// One swept parameter: a dotted `--set` path and the values it takes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    /// Dotted path, as `--set` takes it (`populations.E.size`).
    pub path: String,
    /// The values, each a TOML value (or bare string) as `--set` takes it.
    pub values: Vec<String>,
}

/// One planned run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// Position in the full (unsharded) plan; the `run` column of the output.
    pub index: usize,
    /// `path=value` overrides for `Scenario::load`: one per axis, in axis order, then
    /// `seed=<seed>` last.
    pub overrides: Vec<String>,
    /// Replicate number, `0..replicates`.
    pub replicate: u32,
    /// Scenario seed of this replicate (below 2^60), shared by every parameter
    /// combination.
    pub seed: u64,
    /// `(path, value)` for each axis, in axis order.
    pub labels: Vec<(String, String)>,
}

/// Parse one `PATH=V1,V2,...` sweep expression (the argument of `--set`).
///
/// Values are split on commas at the top level only: a comma inside `[...]`, `{...}`,
/// or a quoted string does not split, so `record.spikes=["E","I"]` is one value and
/// `record.spikes=["E"],["E","I"]` is two. Values are trimmed; empty values,
/// unbalanced brackets, unterminated quotes and repeated values are errors.
pub fn parse_axis(expr: &str) -> Result<Axis, String> {
    let fail = |message: String| format!("--set {expr}: {message}");
    let (path, raw) = expr
        .split_once('=')
        .ok_or_else(|| fail("expected PATH=V1,V2,..., e.g. populations.E.size=4000,8000".into()))?;
    let path = path.trim();
    if path.is_empty() {
        return Err(fail("empty path before `=`".into()));
    }
    if path.split('.').any(|s| s.trim().is_empty()) {
        return Err(fail(format!("empty segment in path `{path}`")));
    }
    if path.chars().any(char::is_whitespace) {
        return Err(fail(format!("whitespace in path `{path}`")));
    }
    let values = split_top_level(raw).map_err(fail)?;
    for (i, v) in values.iter().enumerate() {
        if v.is_empty() {
            return Err(fail(format!(
                "value {} of {} is empty (a stray comma?)",
                i + 1,
                values.len()
            )));
        }
        if values[..i].contains(v) {
            return Err(fail(format!("value `{v}` is given twice")));
        }
    }
    Ok(Axis {
        path: path.to_string(),
        values,
    })
}

/// Split on commas outside brackets, braces and quotes; each piece trimmed.
fn split_top_level(raw: &str) -> Result<Vec<String>, String> {
    let mut values = Vec::new();
    let mut current = String::new();
    // Open brackets, innermost last, with the byte offset each opened at.
    let mut stack: Vec<(char, usize)> = Vec::new();
    // Open quote character and where it opened; `\` escapes only inside `"`.
    let mut quote: Option<(char, usize)> = None;
    let mut escaped = false;
    for (pos, c) in raw.char_indices() {
        if let Some((q, _)) = quote {
            current.push(c);
            if escaped {
                escaped = false;
            } else if q == '"' && c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some((c, pos)),
            '[' | '{' => stack.push((c, pos)),
            ']' | '}' => {
                let want = if c == ']' { '[' } else { '{' };
                match stack.pop() {
                    Some((open, _)) if open == want => {}
                    Some((open, at)) => {
                        return Err(format!(
                        "`{c}` at offset {pos} of the values closes `{open}` opened at offset {at}"
                    ))
                    }
                    None => {
                        return Err(format!(
                            "`{c}` at offset {pos} of the values has no matching `{want}`"
                        ))
                    }
                }
            }
            ',' if stack.is_empty() => {
                values.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if let Some((q, at)) = quote {
        return Err(format!(
            "quote {q} at offset {at} of the values is never closed"
        ));
    }
    if let Some((open, at)) = stack.pop() {
        return Err(format!(
            "`{open}` at offset {at} of the values is never closed"
        ));
    }
    values.push(current.trim().to_string());
    Ok(values)
}

/// Scenario seed of replicate `replicate` for base seed `base_seed`: below 2^60, and
/// distinct for distinct replicates of one base seed (a bijection of the 60-bit space
/// applied to distinct points).
pub fn replicate_seed(base_seed: u64, replicate: u32) -> u64 {
    // Odd, so `r * STEP` is injective modulo 2^60.
    const STEP: u64 = (0x09E3_779B_97F4_A7C1 & SEED_MASK) | 1;
    let key = splitmix64(base_seed) & SEED_MASK;
    let x = key.wrapping_add(u64::from(replicate).wrapping_mul(STEP)) & SEED_MASK;
    mix60(x)
}

/// The splitmix64 output function of one step from `state`.
fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A splitmix-style finalizer on 60 bits: xor-shifts right and odd multiplications
/// modulo 2^60 are each invertible, so this permutes `0..2^60`.
fn mix60(mut z: u64) -> u64 {
    z &= SEED_MASK;
    z = ((z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9)) & SEED_MASK;
    z = ((z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB)) & SEED_MASK;
    z ^ (z >> 31)
}

/// The runs of a sweep: every combination of axis values, each `replicates` times.
///
/// Order: the first axis varies slowest and the replicate fastest, and `index` counts
/// runs in that order from 0. With no axes the plan is just the replicates. The seed
/// comes from [`replicate_seed`]`(base_seed, r)` and is also the last override, so an
/// axis may not set `seed` itself (use the base seed and the replicate count).
///
/// Errors: `replicates == 0`, an axis with no values, a path given twice, two paths
/// where one lies inside the other, an axis on `seed`, or more than [`MAX_RUNS`] runs.
pub fn plan(axes: &[Axis], replicates: u32, base_seed: u64) -> Result<Vec<RunSpec>, String> {
    if replicates == 0 {
        return Err("--replicates: must be at least 1 (got 0)".into());
    }
    for (i, a) in axes.iter().enumerate() {
        if a.values.is_empty() {
            return Err(format!("--set {}: the axis has no values", a.path));
        }
        if a.path == "seed" {
            return Err(format!(
                "--set seed={}: the seed is set per replicate from the base seed; \
                 use --seed and --replicates instead of sweeping it",
                a.values.join(",")
            ));
        }
        for b in &axes[..i] {
            if a.path == b.path {
                return Err(format!(
                    "--set {}: the path is swept twice; give all its values in one --set",
                    a.path
                ));
            }
            let (outer, inner) = if a.path.len() < b.path.len() {
                (&a.path, &b.path)
            } else {
                (&b.path, &a.path)
            };
            if inner.starts_with(outer.as_str()) && inner[outer.len()..].starts_with('.') {
                return Err(format!(
                    "--set {inner} lies inside --set {outer}: the result would depend on \
                     the order they are applied in; sweep one or the other"
                ));
            }
        }
    }
    let mut total: usize = replicates as usize;
    for a in axes {
        total = total
            .checked_mul(a.values.len())
            .filter(|&t| t <= MAX_RUNS)
            .ok_or_else(|| too_many(axes, replicates))?;
    }
    if total > MAX_RUNS {
        return Err(too_many(axes, replicates));
    }
    let seeds: Vec<u64> = (0..replicates)
        .map(|r| replicate_seed(base_seed, r))
        .collect();
    let mut runs = Vec::with_capacity(total);
    // Mixed-radix counter over the axes, last axis fastest.
    let mut digits = vec![0usize; axes.len()];
    let combinations = total / replicates as usize;
    for _ in 0..combinations {
        let labels: Vec<(String, String)> = axes
            .iter()
            .zip(&digits)
            .map(|(a, &d)| (a.path.clone(), a.values[d].clone()))
            .collect();
        for (r, &seed) in seeds.iter().enumerate() {
            let mut overrides: Vec<String> =
                labels.iter().map(|(p, v)| format!("{p}={v}")).collect();
            overrides.push(format!("seed={seed}"));
            runs.push(RunSpec {
                index: runs.len(),
                overrides,
                replicate: r as u32,
                seed,
                labels: labels.clone(),
            });
        }
        for (d, a) in digits.iter_mut().zip(axes).rev() {
            *d += 1;
            if *d < a.values.len() {
                break;
            }
            *d = 0;
        }
    }
    Ok(runs)
}

fn too_many(axes: &[Axis], replicates: u32) -> String {
    let sizes: Vec<String> = axes
        .iter()
        .map(|a| format!("{} ({})", a.path, a.values.len()))
        .collect();
    format!(
        "the sweep has more than {MAX_RUNS} runs: {} x {replicates} replicates; \
         sweep fewer values or split it into several sweeps",
        if sizes.is_empty() {
            "no axes".to_string()
        } else {
            sizes.join(" x ")
        }
    )
}

/// Parse `--shard K/N`: shard K (1-based) of N, 1 <= K <= N.
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let fail = |what: &str| {
        format!("--shard {s}: {what}; expected K/N with 1 <= K <= N, e.g. --shard 3/10")
    };
    let (k, n) = s.split_once('/').ok_or_else(|| fail("no `/`"))?;
    let k: u32 = k
        .trim()
        .parse()
        .map_err(|_| fail("K is not a whole number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| fail("N is not a whole number"))?;
    if n == 0 {
        return Err(fail("N is 0"));
    }
    if k == 0 {
        return Err(fail("K is 0 (shards count from 1)"));
    }
    if k > n {
        return Err(fail("K is larger than N"));
    }
    Ok((k, n))
}

/// The runs of shard `k` of `n` (1-based): those whose `index % n == k - 1`, in order.
/// The `n` shards of a plan cover every run exactly once; a shard may be empty when
/// `n` exceeds the number of runs.
///
/// # Panics
/// If not `1 <= k <= n` ([`parse_shard`] guarantees it).
pub fn shard(runs: &[RunSpec], k: u32, n: u32) -> Vec<RunSpec> {
    assert!(
        1 <= k && k <= n,
        "shard {k}/{n}: need 1 <= K <= N (see parse_shard)"
    );
    let (k, n) = ((k - 1) as usize, n as usize);
    runs.iter().filter(|r| r.index % n == k).cloned().collect()
}

/// Group runs by `shape_key` (e.g. a string of population sizes and connectivity that
/// fixes buffer layouts), so the executor can batch runs of one shape side by side.
///
/// Returns positions into `runs` (equal to `RunSpec::index` for an unsharded plan):
/// groups in the order their first run appears, and positions ascending in each group.
pub fn group_by_shape(runs: &[RunSpec], shape_key: impl Fn(&RunSpec) -> String) -> Vec<Vec<usize>> {
    let mut keys: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let g = *keys.entry(shape_key(run)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// Merge per-shard CSV tables (file contents) into one.
///
/// Every input must start with the same header line, whose first column is `run`;
/// rows are concatenated and sorted by that integer run index, and a run index seen
/// twice is an error. Blank lines are dropped, `\r\n` is accepted, and the result has
/// one header and `\n` line ends. Inputs are numbered from 1 in error messages.
pub fn merge_csv(inputs: &[String]) -> Result<String, String> {
    if inputs.is_empty() {
        return Err("merge: no input tables".into());
    }
    let count = inputs.len();
    let mut header: Option<&str> = None;
    let mut rows: Vec<(u64, usize, &str)> = Vec::new();
    for (i, text) in inputs.iter().enumerate() {
        let input = i + 1;
        let mut lines = text
            .lines()
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, h) = lines
            .next()
            .ok_or_else(|| format!("merge: input {input} of {count} is empty (no header line)"))?;
        match header {
            None => {
                let first = h.split(',').next().unwrap_or("").trim();
                if first != "run" {
                    return Err(format!(
                        "merge: input {input} of {count}: the first column must be `run`, \
                         got header `{h}`"
                    ));
                }
                header = Some(h);
            }
            Some(expected) if expected != h => {
                return Err(format!(
                    "merge: input {input} of {count} has a different header than input 1\n  \
                     input 1: {expected}\n  input {input}: {h}"
                ));
            }
            Some(_) => {}
        }
        for (n, line) in lines {
            let first = line.split(',').next().unwrap_or("").trim();
            let run: u64 = first.parse().map_err(|_| {
                format!(
                    "merge: input {input} of {count}, line {}: run index `{first}` is not \
                     a whole number",
                    n + 1
                )
            })?;
            rows.push((run, input, line));
        }
    }
    rows.sort_by_key(|&(run, _, _)| run);
    for w in rows.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(format!(
                "merge: run {} appears twice (in input {} and input {}); \
                 were shards overlapping or a file given twice?",
                w[0].0, w[0].1, w[1].1
            ));
        }
    }
    let header = header.unwrap_or_default();
    let mut out =
        String::with_capacity(header.len() + 1 + rows.iter().map(|r| r.2.len() + 1).sum::<usize>());
    out.push_str(header);
    out.push('\n');
    for (_, _, line) in rows {
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// The run indices missing from a merged table ([`merge_csv`]'s output, sorted by
/// run): those between 0 and the highest present. Shards take every N-th run
/// ([`shard`]), so a shard left out leaves gaps unless all its runs lie beyond every
/// other shard's (a plan with fewer runs than shards).
pub fn missing_runs(merged: &str) -> Vec<u64> {
    let mut missing = Vec::new();
    let mut next = 0u64;
    for line in merged.lines().skip(1) {
        let Some(Ok(run)) = line.split(',').next().map(|f| f.trim().parse::<u64>()) else {
            continue;
        };
        missing.extend(next..run);
        next = run + 1;
    }
    missing
}

/// `ketasim sweep` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// Scenario file or embedded name.
    pub scenario: Option<String>,
    /// Axis: dotted.path=v1,v2,... (repeatable; the cross product is run).
    #[arg(long = "set", value_name = "PATH=V1,V2,...")]
    pub set: Vec<String>,
    /// Replicates (seeds) per parameter combination.
    #[arg(long, default_value_t = 1)]
    pub replicates: u32,
    /// Base seed the replicates' seeds derive from (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run only shard K of N (1-based): a deterministic 1/N of the runs.
    #[arg(long)]
    pub shard: Option<String>,
    /// Backend.
    #[arg(long, value_enum, default_value_t = crate::run::BackendChoice::Auto)]
    pub backend: crate::run::BackendChoice,
    /// Output folder (`sweep.csv`, or `sweep_shard_K_of_N.csv`).
    #[arg(long, default_value = "out")]
    pub out: std::path::PathBuf,
    /// Run every network alone instead of batching networks of the same shape into
    /// one simulation (the results are the same bit for bit; batching fills a GPU).
    #[arg(long)]
    pub no_batch: bool,
    /// GPU adapters to run the sweep's simulations on at once, one simulation per
    /// entry at a time: indices from `ketasim devices`, comma separated (an index
    /// given twice runs two simulations side by side on that GPU), or `all` (every
    /// usable GPU of the first graphics API listed; llvmpipe only where there is no
    /// real GPU). The rows are the same bits in the same order as one at a time. Default: one simulation at a time, on the adapter
    /// KETASIM_ADAPTER names or wgpu prefers.
    #[arg(long, value_delimiter = ',', value_name = "I,J,...|all")]
    pub adapters: Vec<String>,
}

/// The adapters of `--adapters` (`specs`), checked against `list` (`ketasim devices`):
/// `[None]` where none is given (one simulation at a time, on the adapter
/// `GpuContext::new` takes); else one entry per simulation to run at once. Errors name
/// the option, the adapters and the fix.
pub fn resolve_adapters(
    specs: &[String],
    backend: crate::run::BackendChoice,
    list: &[crate::gpu::AdapterReport],
) -> Result<Vec<Option<usize>>, String> {
    if specs.is_empty() {
        return Ok(vec![None]);
    }
    if backend == crate::run::BackendChoice::Cpu {
        return Err(
            "--adapters runs simulations on GPU adapters: drop --backend cpu, or drop --adapters"
                .into(),
        );
    }
    let listing = || crate::gpu::adapter_listing(list);
    if specs.len() == 1 && specs[0].trim().eq_ignore_ascii_case("all") {
        let all = crate::gpu::sweep_adapters(list);
        if all.is_empty() {
            return Err(format!(
                "--adapters all: no adapter can run ketasim; {}",
                listing()
            ));
        }
        return Ok(all.into_iter().map(Some).collect());
    }
    specs
        .iter()
        .map(|spec| {
            let spec = spec.trim();
            let i: usize = spec.parse().map_err(|_| {
                format!(
                    "--adapters {spec:?}: give adapter numbers from `ketasim devices` (e.g. --adapters 0,1) or `all`; {}",
                    listing()
                )
            })?;
            crate::gpu::usable_adapter(list, i)
                .map(Some)
                .map_err(|why| format!("--adapters {i}: {why}"))
        })
        .collect()
}

/// The simulations' threads of `--adapters` (`specs`, as [`resolve_adapters`] takes
/// them, against `ketasim devices`, listed only where some are named) and the backend
/// they run: the GPU where adapters are named (software ones included), else
/// `backend`.
pub fn adapter_workers(
    specs: &[String],
    backend: crate::run::BackendChoice,
) -> Result<(Vec<Option<usize>>, crate::run::BackendChoice), String> {
    if specs.is_empty() {
        return Ok((vec![None], backend));
    }
    let workers = resolve_adapters(specs, backend, &crate::gpu::list_adapters())?;
    Ok((workers, crate::run::BackendChoice::Gpu))
}

/// One simulation of a sweep: the runs it held (indices into the sweep's runs), their
/// copies in the simulation, and its result.
struct Simulated {
    idx: Vec<usize>,
    copies: Vec<crate::model::Copy>,
    res: crate::run::RunResult,
}

/// Run one batch of a sweep's networks as one simulation; an error names the run whose
/// network failed where the error says which (a population of one copy), else every
/// run of the simulation.
fn simulate(
    batch: Vec<(usize, crate::model::Network)>,
    runs: &[RunSpec],
    opts: &crate::run::RunOptions,
) -> anyhow::Result<Simulated> {
    let t0 = std::time::Instant::now();
    let (idx, nets): (Vec<usize>, Vec<crate::model::Network>) = batch.into_iter().unzip();
    let net = crate::model::batch::join(nets)?;
    let copies = net.copies.clone();
    let res = crate::run::run_network(net, opts, t0).map_err(|e| {
        let which = match &e {
            crate::error::Error::Unstable { pop, .. } => copies
                .iter()
                .position(|c| (c.first_pop..c.first_pop + c.pops).contains(pop))
                .map(|k| &runs[idx[k]])
                .map(run_label),
            _ => None,
        };
        let which = which.unwrap_or_else(|| {
            format!("runs {}", index_ranges(idx.iter().map(|&i| runs[i].index)))
        });
        anyhow::Error::from(e).context(which)
    })?;
    Ok(Simulated { idx, copies, res })
}

/// `ketasim merge` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Shard CSV files.
    #[arg(required = true)]
    pub inputs: Vec<std::path::PathBuf>,
    /// Output file.
    #[arg(long, default_value = "sweep.csv")]
    pub out: std::path::PathBuf,
    /// Write the table even if runs are missing between 0 and the highest run index
    /// (a shard not given, or one whose job failed); without it that is an error.
    #[arg(long)]
    pub allow_missing: bool,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Run a sweep (or one shard of it) and write one CSV row per run: its index, the
/// swept values, replicate and seed, then the run's summary per population.
///
/// Runs whose networks have the same shape (`model::batch::shape_key`: time step and
/// span, protocol, drug, recording and fixed-point scales) are joined into one
/// simulation, as many as `model::batch::fits` allows (thousands of small networks),
/// unless `--no-batch`. Each network
/// in a batch evolves bit for bit as it would alone, so a row does not depend on its
/// batch; `batch` and `wall_s` say how the rows were run.
pub fn sweep_command(args: &SweepArgs) -> anyhow::Result<()> {
    use crate::model::batch::{for_each_batch, shape_key};
    use crate::model::Network;
    let axes = args
        .set
        .iter()
        .map(|e| parse_axis(e))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let source = crate::scenario::Source::locate(args.scenario.as_deref())?;
    let base = crate::scenario::Scenario::load(&source, &[])?;
    let all =
        plan(&axes, args.replicates, args.seed.unwrap_or(base.seed)).map_err(anyhow::Error::msg)?;
    let (runs, name) = match &args.shard {
        Some(s) => {
            let (k, n) = parse_shard(s).map_err(anyhow::Error::msg)?;
            (shard(&all, k, n), format!("sweep_shard_{k}_of_{n}.csv"))
        }
        None => (all.clone(), "sweep.csv".to_string()),
    };
    let mut header = vec!["run".to_string()];
    header.extend(axes.iter().map(|a| a.path.clone()));
    header.extend(["replicate", "seed", "backend", "batch", "wall_s"].map(String::from));
    for p in &base.populations {
        for c in [
            "rate_hz",
            "cv_isi",
            "nmda_blocked",
            "nmda_charge_pC",
            "ampa_charge_pC",
            "glutamate_window_um",
            "glutamate_pct_baseline",
            "synchrony",
        ] {
            header.push(format!("{}_{c}", p.name));
        }
    }
    header.extend(
        [
            "glutamate_peak_pct_baseline",
            "glutamate_peak_t_min",
            "last_gamma_power_ratio",
        ]
        .map(String::from),
    );
    // Slow signalling (docs/signalling.md): per signalling population of the base
    // scenario, the mTOR peak (relative to baseline) and its time, and the synapse
    // density at the last readout.
    let slow_pops: Vec<(usize, String)> = base
        .signalling
        .as_ref()
        .map(|s| {
            s.populations
                .iter()
                .filter_map(|n| base.population_index(n).map(|i| (i, n.clone())))
                .collect()
        })
        .unwrap_or_default();
    for (_, n) in &slow_pops {
        for c in ["mtor_peak_rel", "mtor_peak_t_min", "synapse_density_last"] {
            header.push(format!("{n}_{c}"));
        }
    }
    let (workers, backend) =
        adapter_workers(&args.adapters, args.backend).map_err(anyhow::Error::msg)?;
    let opts = crate::run::RunOptions {
        backend,
        ..crate::run::RunOptions::default()
    };
    // Load every run's scenario and note its network's shape (the networks are
    // rebuilt batch by batch below, so that at most one batch is held at a time). An
    // error names the run and its overrides.
    let mut scenarios = Vec::with_capacity(runs.len());
    let mut keys = Vec::with_capacity(runs.len());
    for r in &runs {
        use anyhow::Context;
        let which = || run_label(r);
        let sc = crate::scenario::Scenario::load(&source, &r.overrides).with_context(which)?;
        if sc
            .populations
            .iter()
            .map(|p| &p.name)
            .ne(base.populations.iter().map(|p| &p.name))
        {
            anyhow::bail!("run {}: the overrides change the populations; sweep over parameters, not population lists", r.index);
        }
        keys.push(if args.no_batch {
            String::new()
        } else {
            shape_key(&Network::build(&sc, opts.batch_steps).with_context(which)?)
        });
        scenarios.push(sc);
    }
    let position: std::collections::HashMap<usize, usize> =
        runs.iter().enumerate().map(|(i, r)| (r.index, i)).collect();
    let groups = group_by_shape(&runs, |r| keys[position[&r.index]].clone());
    crate::run::check_out_dir(&args.out)?;
    let coarse: Vec<usize> = runs
        .iter()
        .zip(&scenarios)
        .filter(|(_, sc)| crate::protocol::gamma_sampling_note(sc).is_some())
        .map(|(r, _)| r.index)
        .collect();
    if !coarse.is_empty() {
        eprintln!(
            "note: runs {} sample slower than every {} ms (record.sample_interval_ms), below twice the gamma band's top, so their last_gamma_power_ratio is NaN",
            index_ranges(coarse.iter().copied()),
            crate::protocol::max_gamma_sample_interval_ms()
        );
    }
    eprintln!("sweep: running {} of {} runs", runs.len(), all.len());
    let mut rows: Vec<(usize, String)> = Vec::new();
    let mut simulations = 0usize;
    let mut record = |d: Simulated| {
        let Simulated { idx, copies, res } = d;
        for (&i, c) in idx.iter().zip(&copies) {
            let names: Vec<String> = scenarios[i]
                .populations
                .iter()
                .map(|p| p.name.clone())
                .collect();
            for line in res.clip_warnings_for(c.first_pop, &names) {
                eprintln!("warning: {}: {line}", run_label(&runs[i]));
            }
            let mut row = row_of(&runs[i], &res, c, idx.len());
            for (k, _) in &slow_pops {
                row.push_str(&slow_fields(&res, c.first_pop + k));
            }
            rows.push((runs[i].index, row));
        }
        simulations += 1;
        eprintln!(
            "  runs {} ({} networks) done in one simulation ({:.2} s)",
            index_ranges(idx.iter().map(|&i| runs[i].index)),
            idx.len(),
            res.summary.wall_s
        );
    };
    // The simulations' networks, built batch by batch in run order (at most one batch
    // held per simulation under way).
    let batches = |feed: &mut dyn FnMut(Vec<(usize, Network)>) -> anyhow::Result<()>| {
        for g in &groups {
            let items = g.iter().map(|&i| {
                Network::build(&scenarios[i], opts.batch_steps)
                    .map(|n| (i, n))
                    .map_err(anyhow::Error::from)
            });
            for_each_batch(items, !args.no_batch, &mut *feed)?;
        }
        anyhow::Ok(())
    };
    crate::run::on_workers(
        &workers,
        batches,
        |b, &adapter| {
            let opts = crate::run::RunOptions {
                adapter,
                ..opts.clone()
            };
            simulate(b, &runs, &opts)
        },
        &mut record,
    )?;
    eprintln!(
        "sweep: {} of {} runs in {simulations} simulation(s)",
        runs.len(),
        all.len()
    );
    rows.sort_by_key(|(i, _)| *i);
    let mut out = header.join(",") + "\n";
    for (_, r) in rows {
        out.push_str(&(r + "\n"));
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
    let path = args.out.join(name);
    std::fs::write(&path, out).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// A run as errors and warnings name it: `run 3 (a.b=1 seed=7)`.
fn run_label(r: &RunSpec) -> String {
    format!("run {} ({})", r.index, r.overrides.join(" "))
}

/// Ascending run indices as ranges: `0-440, 445, 450-452`.
fn index_ranges(indices: impl IntoIterator<Item = usize>) -> String {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for i in indices {
        match spans.last_mut() {
            Some((_, hi)) if *hi + 1 == i => *hi = i,
            _ => spans.push((i, i)),
        }
    }
    spans
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One CSV row: run `r`, which was copy `c` of a simulation of `batch` networks.
fn row_of(
    r: &RunSpec,
    res: &crate::run::RunResult,
    c: &crate::model::Copy,
    batch: usize,
) -> String {
    let s = &res.summary;
    let mut row = vec![r.index.to_string()];
    row.extend(r.labels.iter().map(|(_, v)| csv_field(v)));
    row.extend([
        r.replicate.to_string(),
        r.seed.to_string(),
        s.backend.clone(),
        batch.to_string(),
        format!("{:.4}", s.wall_s),
    ]);
    let num = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.6}"));
    let pops = c.first_pop..c.first_pop + c.pops;
    for p in &s.populations[pops.clone()] {
        row.push(format!("{:.6}", p.rate_hz));
        row.push(num(p.cv_isi));
        row.push(num(p.mean_nmda_blocked));
        row.push(num(p.nmda_charge_pC));
        row.push(num(p.ampa_charge_pC));
        row.push(num(p.glutamate.as_ref().map(|g| g.window_um)));
        row.push(num(p.glutamate.as_ref().and_then(|g| g.pct_baseline)));
        row.push(num(p.synchrony));
    }
    // This network's LFP and glutamate population: its first releasing one.
    let lfp = pops
        .clone()
        .find(|&p| res.glu_pops[p])
        .unwrap_or(c.first_pop);
    let finite = |x: f64| x.is_finite().then_some(x);
    let peak = crate::protocol::glutamate_peak(&res.windows, lfp);
    row.push(num(peak.map(|w| w.pops[lfp].glutamate_pct_baseline)));
    row.push(num(
        peak.map(|w| 0.5 * (w.protocol_min.0 + w.protocol_min.1))
    ));
    row.push(num(res
        .windows
        .last()
        .and_then(|w| finite(w.pops[lfp].gamma_power_ratio))));
    row.join(",")
}

/// `,mtor_peak_rel,mtor_peak_t_min,synapse_density_last` of population `p` of the
/// (possibly batched) run (empty fields where it carries no slow state).
fn slow_fields(res: &crate::run::RunResult, p: usize) -> String {
    match crate::signalling::slow_brief(&res.windows, p) {
        Some(b) => format!(
            ",{:.6},{:.6},{:.6}",
            b.peak_mtor_rel, b.peak.protocol_min.0, b.last_readout.density
        ),
        None => ",,,".to_string(),
    }
}

/// Join shard CSVs into one table sorted by run.
pub fn merge_command(args: &MergeArgs) -> anyhow::Result<()> {
    let inputs = args
        .inputs
        .iter()
        .map(|p| std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = merge_csv(&inputs).map_err(anyhow::Error::msg)?;
    let missing = missing_runs(&merged);
    if !missing.is_empty() {
        let what = format!(
            "{} run(s) missing: {} (a shard not given, or one whose job failed?)",
            missing.len(),
            index_ranges(missing.iter().map(|&r| r as usize))
        );
        if !args.allow_missing {
            anyhow::bail!(
                "merge: {what}; give every shard's CSV, or --allow-missing to write the runs there are"
            );
        }
        eprintln!("warning: merge: {what}; writing the runs there are (--allow-missing)");
    }
    std::fs::write(&args.out, merged)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{index_ranges, resolve_adapters};
    use crate::gpu::AdapterReport;
    use crate::run::BackendChoice;

    fn adapter(index: usize, name: &str, device_type: &str, usable: bool) -> AdapterReport {
        AdapterReport {
            device_type: device_type.into(),
            ..AdapterReport::synthetic(index, name, "Vulkan", "", usable)
        }
    }

    #[test]
    fn adapter_lists_resolve_or_are_refused_naming_the_option() {
        let node = vec![
            adapter(0, "NVIDIA H100 80GB HBM3", "DiscreteGpu", true),
            adapter(1, "NVIDIA H100 80GB HBM3", "DiscreteGpu", true),
            adapter(2, "old card", "DiscreteGpu", false),
            adapter(3, "llvmpipe", "Cpu", true),
        ];
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let gpu = BackendChoice::Gpu;
        assert_eq!(resolve_adapters(&[], gpu, &node), Ok(vec![None]));
        assert_eq!(
            resolve_adapters(&s(&["all"]), BackendChoice::Auto, &node),
            Ok(vec![Some(0), Some(1)])
        );
        assert_eq!(
            resolve_adapters(&s(&["1", " 1", "3"]), gpu, &node),
            Ok(vec![Some(1), Some(1), Some(3)])
        );
        for (specs, backend, want) in [
            (
                s(&["2"]),
                gpu,
                "--adapters 2: [2] old card (Vulkan, DiscreteGpu) cannot run ketasim: it binds 16",
            ),
            (s(&["4"]), gpu, "--adapters 4: there is no adapter 4"),
            (s(&["-1"]), gpu, "--adapters \"-1\": give adapter numbers"),
            (s(&["0"]), BackendChoice::Cpu, "drop --backend cpu"),
        ] {
            let err = resolve_adapters(&specs, backend, &node).expect_err(want);
            assert!(err.contains(want), "{specs:?}: {err}");
        }
        let err = resolve_adapters(&s(&["all"]), gpu, &node[2..3]).expect_err("none usable");
        assert!(
            err.contains(
                "--adapters all: no adapter can run ketasim; `ketasim devices` lists [2] old card"
            ),
            "{err}"
        );
    }

    #[test]
    fn run_indices_print_as_ranges() {
        assert_eq!(index_ranges([0, 1, 2, 5, 7, 8]), "0-2, 5, 7-8");
        assert_eq!(index_ranges([3]), "3");
        assert_eq!(index_ranges(Vec::new()), "");
    }
}
