//! `ketasim sweep` and `ketasim merge` end to end: two shards merged equal the
//! unsharded sweep (wall times and batch sizes aside), with one row per run in run
//! order; batched and unbatched sweeps give the same rows.

use std::process::Command;

mod common;

/// Run ketasim with `args`, which must fail without a panic; its stderr.
fn ketasim_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ketasim"))
        .args(args)
        .output()
        .expect("run ketasim");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "ketasim {args:?} succeeded: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn ketasim(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ketasim"))
        .args(args)
        .output()
        .expect("run ketasim");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "ketasim {args:?} failed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The rows without the columns that say how they were run (`wall_s`, `batch`).
fn without_wall(csv: &str) -> Vec<String> {
    let header: Vec<&str> = csv.lines().next().unwrap_or("").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{name} column"))
    };
    let (wall, batch) = (col("wall_s"), col("batch"));
    csv.lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != wall && *i != batch)
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[test]
fn shards_merge_to_the_full_sweep() {
    let dir = std::env::temp_dir().join(format!("ketasim-sweep-{}", std::process::id()));
    let d = dir.display().to_string();
    let common = [
        "coba",
        "--set",
        "duration_ms=30",
        "--set",
        "populations.E.size=300,600,900",
        "--replicates",
        "2",
        "--backend",
        "cpu",
    ];
    let mut full: Vec<&str> = vec!["sweep"];
    full.extend(common);
    let full_dir = format!("{d}/full");
    full.extend(["--out", &full_dir]);
    ketasim(&full);
    for k in ["1/2", "2/2"] {
        let mut a: Vec<&str> = vec!["sweep"];
        a.extend(common);
        a.extend(["--shard", k, "--out", &d]);
        ketasim(&a);
    }
    let merged = format!("{d}/merged.csv");
    ketasim(&[
        "merge",
        &format!("{d}/sweep_shard_1_of_2.csv"),
        &format!("{d}/sweep_shard_2_of_2.csv"),
        "--out",
        &merged,
    ]);
    let a = std::fs::read_to_string(format!("{full_dir}/sweep.csv")).expect("full");
    let b = std::fs::read_to_string(&merged).expect("merged");
    assert_eq!(a.lines().count(), 1 + 6, "{a}");
    assert_eq!(without_wall(&a), without_wall(&b));
    // Shard 1 alone (runs 0, 2, 4) leaves gaps at runs 1 and 3 (run 5, past its last,
    // cannot be seen): an error naming them, or with --allow-missing a warning and
    // the runs there are.
    let partial = format!("{d}/partial.csv");
    let shard1 = format!("{d}/sweep_shard_1_of_2.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_ketasim"))
        .args(["merge", &shard1, "--out", &partial])
        .output()
        .expect("run ketasim");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a partial merge must fail: {err}");
    assert!(
        err.contains("2 run(s) missing: 1, 3") && err.contains("--allow-missing"),
        "{err}"
    );
    assert!(!std::path::Path::new(&partial).exists());
    let err = ketasim(&["merge", &shard1, "--out", &partial, "--allow-missing"]);
    assert!(
        err.contains("warning") && err.contains("missing: 1, 3"),
        "{err}"
    );
    let p = std::fs::read_to_string(&partial).expect("partial");
    assert_eq!(p.lines().count(), 1 + 3, "{p}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn batched_and_unbatched_sweeps_give_the_same_rows() {
    let dir = std::env::temp_dir().join(format!("ketasim-sweep-batch-{}", std::process::id()));
    let d = dir.display().to_string();
    let common = [
        "coba",
        "--set",
        "duration_ms=40",
        "--set",
        "populations.E.neuron.v_th_mV=-50,-51",
        "--replicates",
        "3",
        "--backend",
        "cpu",
    ];
    let (a_dir, b_dir) = (format!("{d}/batched"), format!("{d}/alone"));
    let mut a: Vec<&str> = vec!["sweep"];
    a.extend(common);
    a.extend(["--out", &a_dir]);
    let err = ketasim(&a);
    assert!(err.contains("6 of 6 runs in 1 simulation"), "{err}");
    let mut b: Vec<&str> = vec!["sweep"];
    b.extend(common);
    b.extend(["--out", &b_dir, "--no-batch"]);
    let err = ketasim(&b);
    assert!(err.contains("in 6 simulation"), "{err}");
    let a = std::fs::read_to_string(format!("{a_dir}/sweep.csv")).expect("batched");
    let b = std::fs::read_to_string(format!("{b_dir}/sweep.csv")).expect("alone");
    assert_eq!(a.lines().count(), 1 + 6, "{a}");
    let batch_col = a
        .lines()
        .next()
        .unwrap_or("")
        .split(',')
        .position(|h| h == "batch")
        .expect("batch column");
    assert!(
        a.lines()
            .skip(1)
            .all(|l| l.split(',').nth(batch_col) == Some("6")),
        "{a}"
    );
    assert_eq!(without_wall(&a), without_wall(&b));
    let _ = std::fs::remove_dir_all(dir);
}

/// A sweep point that fails validation stops the sweep before any run, and the error
/// names the run and its overrides as well as the field.
#[test]
fn an_invalid_sweep_point_is_named_before_anything_runs() {
    let dir = std::env::temp_dir().join(format!("ketasim-sweep-invalid-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_ketasim"))
        .args([
            "sweep",
            "coba",
            "--set",
            "populations.E.neuron.g_l_nS=10,1e6",
            "--set",
            "duration_ms=5",
            "--backend",
            "cpu",
            "--out",
        ])
        .arg(&dir)
        .output()
        .expect("run ketasim");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("run 1 (populations.E.neuron.g_l_nS=1e6 duration_ms=5 seed="),
        "{err}"
    );
    assert!(err.contains("neuron.g_l_nS: tau_m"), "{err}");
    assert!(!dir.exists(), "wrote {}", dir.display());
}

/// A sweep point whose membrane step turns unstable as it runs (E's initial GABA_A
/// conductance of 10^4 nS: dt g / C = 5.5) stops the sweep with an error naming that
/// run and its overrides, batched with the sound points (where its population is
/// `E#1`) or alone, and no CSV is written.
#[test]
fn an_unstable_sweep_point_is_named_by_its_run() {
    for batch in [true, false] {
        let dir = std::env::temp_dir().join(format!(
            "ketasim-sweep-unstable-{batch}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ketasim"));
        cmd.args([
            "sweep",
            "coba",
            "--set",
            "populations.E.init.g_gaba_mean_nS=200,1e4,300",
            "--set",
            "duration_ms=5",
            "--backend",
            "cpu",
        ]);
        if !batch {
            cmd.arg("--no-batch");
        }
        let out = cmd.arg("--out").arg(&dir).output().expect("run ketasim");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains("run 1 (populations.E.init.g_gaba_mean_nS=1e4 duration_ms=5 seed="),
            "batch {batch}: {err}"
        );
        assert!(err.contains("the integration is unstable"), "{err}");
        assert!(!dir.join("sweep.csv").exists(), "wrote {}", dir.display());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `--seed` sets the base seed the replicates derive from (the error for a `seed` axis
/// pointed to it before the option existed): its seeds are `replicate_seed(S, r)`,
/// and without it they come from the scenario's seed.
#[test]
fn the_base_seed_is_set_with_seed() {
    use ketasim::sweep::replicate_seed;
    let dir = std::env::temp_dir().join(format!("ketasim-sweep-seed-{}", std::process::id()));
    let seeds = |extra: &[&str], name: &str| -> Vec<u64> {
        let out = format!("{}/{name}", dir.display());
        let mut a = vec![
            "sweep",
            "coba",
            "--set",
            "duration_ms=10",
            "--replicates",
            "2",
            "--backend",
            "cpu",
            "--out",
            &out,
        ];
        a.extend(extra);
        ketasim(&a);
        let csv = std::fs::read_to_string(format!("{out}/sweep.csv")).expect("sweep.csv");
        let header: Vec<&str> = csv.lines().next().unwrap_or("").split(',').collect();
        let col = header
            .iter()
            .position(|h| *h == "seed")
            .expect("seed column");
        csv.lines()
            .skip(1)
            .map(|l| {
                l.split(',')
                    .nth(col)
                    .and_then(|v| v.parse().ok())
                    .expect("seed")
            })
            .collect()
    };
    let given = seeds(&["--seed", "5"], "five");
    assert_eq!(given, vec![replicate_seed(5, 0), replicate_seed(5, 1)]);
    let scenario = ketasim::scenario::Scenario::load(
        &ketasim::scenario::Source::locate(Some("coba")).expect("coba"),
        &[],
    )
    .expect("load coba");
    let default = seeds(&[], "default");
    assert_eq!(
        default,
        vec![
            replicate_seed(scenario.seed, 0),
            replicate_seed(scenario.seed, 1)
        ]
    );
    assert_ne!(given, default);
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs that sample slower than Nyquist for the gamma band's top (6.25 ms) are named
/// in a note, since their gamma ratio will be NaN (tests/cli.rs checks the values).
#[test]
fn runs_sampled_too_slowly_for_gamma_are_named() {
    let dir = std::env::temp_dir().join(format!("ketasim-sweep-gamma-{}", std::process::id()));
    let out = dir.display().to_string();
    let err = ketasim(&[
        "sweep",
        "coba",
        "--set",
        "duration_ms=20",
        "--set",
        "record.sample_interval_ms=1,10,2,20",
        "--backend",
        "cpu",
        "--out",
        &out,
    ]);
    assert!(
        err.contains("note: runs 1, 3 sample slower than every 6.25 ms"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `--adapters 0,0` runs two simulations at once on the one adapter (two threads,
/// two devices): the rows are those of one simulation at a time on the GPU, and of
/// the CPU backend, the same bits in run order; a failing point is named as one thread
/// would meet it first, and no CSV is written.
#[test]
fn simulations_on_several_adapters_at_once_give_the_same_rows() {
    let test = "simulations_on_several_adapters_at_once_give_the_same_rows";
    if common::gpu_or_skip(test).is_none() {
        return;
    }
    let list = ketasim::gpu::list_adapters();
    let Some(&first) = ketasim::gpu::sweep_adapters(&list).first() else {
        panic!("a GPU context but no usable adapter in {list:#?}");
    };
    let a = first.to_string();
    let dir = std::env::temp_dir().join(format!("ketasim-sweep-adapters-{}", std::process::id()));
    let d = dir.display().to_string();
    let common = [
        "coba",
        "--set",
        "duration_ms=20",
        "--set",
        "populations.E.neuron.v_th_mV=-50,-51",
        "--replicates",
        "3",
        "--no-batch",
    ];
    let two = format!("{a},{a}");
    let runs = [
        ("two", vec!["--adapters", two.as_str()]),
        ("one", vec!["--adapters", a.as_str()]),
        ("cpu", vec!["--backend", "cpu"]),
    ];
    let mut tables = Vec::new();
    for (name, extra) in &runs {
        let out = format!("{d}/{name}");
        let mut args: Vec<&str> = vec!["sweep"];
        args.extend(common);
        args.extend(extra.iter().copied());
        args.extend(["--out", &out]);
        let err = ketasim(&args);
        assert!(err.contains("6 of 6 runs in 6 simulation"), "{name}: {err}");
        let csv = std::fs::read_to_string(format!("{out}/sweep.csv")).expect("sweep.csv");
        assert_eq!(csv.lines().count(), 1 + 6, "{name}: {csv}");
        tables.push(without_wall(&csv));
    }
    assert_eq!(tables[0], tables[1], "two adapters at once against one");
    // The CPU twin: the same rows but for the backend column.
    let cpu: Vec<String> = tables[2]
        .iter()
        .map(|l| l.replace(",cpu,", ",gpu,"))
        .collect();
    assert_eq!(tables[0], cpu, "GPU against the CPU twin");
    let run_col: Vec<String> = tables[0]
        .iter()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(run_col, ["0", "1", "2", "3", "4", "5"]);
    // Two failing points: the first in run order (one shape, so one thread's order)
    // is named, whichever thread met it.
    let fail_dir = format!("{d}/fail");
    let err = ketasim_fails(&[
        "sweep",
        "coba",
        "--set",
        "populations.E.init.g_gaba_mean_nS=200,1e4,2e4,300",
        "--set",
        "duration_ms=5",
        "--no-batch",
        "--adapters",
        &two,
        "--out",
        &fail_dir,
    ]);
    assert!(
        err.contains("run 1 (populations.E.init.g_gaba_mean_nS=1e4 duration_ms=5 seed="),
        "{err}"
    );
    assert!(!std::path::Path::new(&fail_dir).join("sweep.csv").exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// `--adapters` refuses what names no usable adapter, and the CPU backend, naming the
/// option and the fix.
#[test]
fn bad_adapter_lists_are_refused() {
    for (extra, want) in [
        (
            vec!["--adapters", "999"],
            "--adapters 999: there is no adapter 999",
        ),
        (
            vec!["--adapters", "x"],
            "give adapter numbers from `ketasim devices`",
        ),
        (
            vec!["--adapters", "0", "--backend", "cpu"],
            "drop --backend cpu, or drop --adapters",
        ),
    ] {
        let dir = std::env::temp_dir().join(format!("ketasim-sweep-badad-{}", std::process::id()));
        let d = dir.display().to_string();
        let mut args = vec!["sweep", "coba", "--set", "duration_ms=5"];
        args.extend(extra.iter().copied());
        args.extend(["--out", &d]);
        let err = ketasim_fails(&args);
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(!dir.exists(), "{extra:?} wrote {}", dir.display());
    }
}
