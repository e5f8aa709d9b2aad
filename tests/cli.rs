//! The `ketasim` binary end to end: `run` on the CPU backend and its output files,
//! seeds and `--set` overrides, error reporting for bad scenarios, `scenarios`,
//! `devices` and `bench`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A fresh folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ketasim-cli-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run the binary with `args`.
fn ketasim<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ketasim"))
        .args(args)
        .output()
        .expect("cannot start the ketasim binary")
}

/// Everything the process printed, for assertion messages.
fn report(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run and require exit status 0.
fn ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let out = ketasim(args);
    assert!(out.status.success(), "expected success\n{}", report(&out));
    out
}

/// Run and require a non-zero exit without a panic.
fn fails<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let out = ketasim(args);
    assert!(!out.status.success(), "expected failure\n{}", report(&out));
    assert!(
        !stderr(&out).contains("panicked"),
        "the binary panicked\n{}",
        report(&out)
    );
    out
}

/// `ketasim run coba --backend cpu --out DIR` plus `extra` arguments (default 50 ms).
fn run_cpu(out_dir: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> = ["run", "coba", "--backend", "cpu", "--out"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(out_dir.display().to_string());
    if !extra.contains(&"--duration-ms") {
        args.extend(["--duration-ms".to_string(), "50".to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    ok(&args)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn summary(dir: &Path) -> Value {
    let text = read(&dir.join("summary.json"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("summary.json: {e}\n{text}"))
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {v}"))
}

#[test]
fn run_coba_on_cpu_writes_outputs() {
    let tmp = TempDir::new("run-coba");
    let out_dir = tmp.path().join("out");
    run_cpu(&out_dir, &[]);

    let s = summary(&out_dir);
    assert_eq!(s["backend"], "cpu", "{s:#}");
    assert!(s["adapter"].is_string(), "adapter: {s:#}");
    assert_eq!(s["neurons"].as_u64(), Some(4000), "{s:#}");
    // p = 0.02 on four pathways of the 4000-neuron COBA network: about 320 000.
    let syn = num(&s, "synapses");
    assert!((250_000.0..400_000.0).contains(&syn), "synapses {syn}");
    assert!((num(&s, "dt_ms") - 0.1).abs() < 1e-12, "{s:#}");
    assert!((num(&s, "duration_ms") - 50.0).abs() < 1e-9, "{s:#}");
    assert_eq!(s["seed"].as_u64(), Some(1), "{s:#}");
    assert!(
        num(&s, "build_s") >= 0.0 && num(&s, "wall_s") >= 0.0,
        "{s:#}"
    );
    let pops = s["populations"].as_array().expect("populations array");
    let names: Vec<&str> = pops.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["E", "I"], "{s:#}");
    let sizes: Vec<u64> = pops.iter().filter_map(|p| p["size"].as_u64()).collect();
    assert_eq!(sizes, [3200, 800], "{s:#}");
    for p in pops {
        let spikes = p["spikes"]
            .as_u64()
            .unwrap_or_else(|| panic!("spikes: {p}"));
        let rate = num(p, "rate_hz");
        let size = p["size"].as_u64().unwrap_or(1) as f64;
        assert!(
            (rate - spikes as f64 / size / 0.05).abs() < 1e-6 * (1.0 + rate),
            "rate_hz does not match spikes/size/duration: {p}"
        );
        let cv = p.get("cv_isi").unwrap_or_else(|| panic!("cv_isi: {p}"));
        assert!(cv.is_null() || cv.is_f64(), "cv_isi: {p}");
    }

    // rates.csv: 5 bins of 10 ms, whose counts add up to the summary's spikes.
    let rates = read(&out_dir.join("rates.csv"));
    let mut lines = rates.lines();
    let header = lines.next().unwrap_or("");
    assert!(
        header == "t_start_ms,t_end_ms,rate_E_hz,rate_I_hz,conc_um",
        "header: {header}"
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| {
            l.split(',')
                .map(|x| x.parse().unwrap_or_else(|e| panic!("{l}: {e}")))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 5, "{rates}");
    let mut counts = [0.0f64; 2];
    for (b, row) in rows.iter().enumerate() {
        // t_start, t_end, two rates, and the free ketamine concentration (0 here).
        assert_eq!(row.len(), 5, "{rates}");
        assert_eq!(row[4], 0.0, "{rates}");
        assert!((row[0] - 10.0 * b as f64).abs() < 1e-9, "{rates}");
        assert!((row[1] - 10.0 * (b + 1) as f64).abs() < 1e-9, "{rates}");
        counts[0] += (row[2] * 3200.0 * 0.01).round();
        counts[1] += (row[3] * 800.0 * 0.01).round();
    }
    for (p, c) in pops.iter().zip(counts) {
        assert_eq!(p["spikes"].as_u64(), Some(c as u64), "rates.csv vs {p}");
    }

    // samples.csv: one row per 1 ms, eight means per population.
    let samples = read(&out_dir.join("samples.csv"));
    let mut lines = samples.lines();
    let header = lines.next().unwrap_or("");
    assert_eq!(
        header,
        "t_ms,v_E_mV,g_ampa_E_nS,g_gaba_E_nS,nmda_open_E,nmda_blocked_E,i_nmda_E_pA,i_ampa_E_pA,i_gaba_E_pA,\
         v_I_mV,g_ampa_I_nS,g_gaba_I_nS,nmda_open_I,nmda_blocked_I,i_nmda_I_pA,i_ampa_I_pA,i_gaba_I_pA"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 50, "{samples}");
    for (i, row) in rows.iter().enumerate() {
        let v: Vec<f64> = row
            .split(',')
            .map(|x| x.parse().unwrap_or_else(|e| panic!("{row}: {e}")))
            .collect();
        assert_eq!(v.len(), 17, "{row}");
        assert!((v[0] - (i + 1) as f64).abs() < 1e-9, "{row}");
        assert!(v.iter().all(|x| x.is_finite()), "{row}");
    }
    // No population records spikes in the default scenario.
    assert!(!out_dir.join("spikes.csv").exists());
}

#[test]
fn seed_is_applied_and_runs_are_reproducible() {
    let tmp = TempDir::new("seed");
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    run_cpu(&a, &["--seed", "5"]);
    run_cpu(&b, &["--seed", "5"]);
    run_cpu(&c, &["--seed", "6"]);
    assert_eq!(summary(&a)["seed"].as_u64(), Some(5));
    assert_eq!(summary(&c)["seed"].as_u64(), Some(6));
    let ra = read(&a.join("rates.csv"));
    assert_eq!(
        ra,
        read(&b.join("rates.csv")),
        "same seed, different rates.csv"
    );
    assert_eq!(read(&a.join("samples.csv")), read(&b.join("samples.csv")));
    assert_ne!(
        read(&a.join("samples.csv")),
        read(&c.join("samples.csv")),
        "seeds 5 and 6 gave identical samples.csv"
    );
}

#[test]
fn set_overrides_change_the_network() {
    let tmp = TempDir::new("set");
    let out_dir = tmp.path().join("out");
    run_cpu(
        &out_dir,
        &[
            "--set",
            "populations.E.size=100",
            "--set",
            "populations.I.size=25",
        ],
    );
    let s = summary(&out_dir);
    assert_eq!(s["neurons"].as_u64(), Some(125), "{s:#}");
    let sizes: Vec<u64> = s["populations"]
        .as_array()
        .expect("populations")
        .iter()
        .filter_map(|p| p["size"].as_u64())
        .collect();
    assert_eq!(sizes, [100, 25], "{s:#}");
}

#[test]
fn duration_flag_sets_the_steps() {
    let tmp = TempDir::new("duration");
    let out_dir = tmp.path().join("out");
    run_cpu(
        &out_dir,
        &["--duration-ms", "20", "--set", "populations.E.size=80"],
    );
    let s = summary(&out_dir);
    assert!((num(&s, "duration_ms") - 20.0).abs() < 1e-9, "{s:#}");
    assert_eq!(s["steps"].as_u64(), Some(200), "{s:#}");
    let rates = read(&out_dir.join("rates.csv"));
    assert_eq!(rates.lines().count(), 1 + 2, "{rates}");
}

#[test]
fn bad_scenario_file_fails_naming_file_and_field() {
    let tmp = TempDir::new("bad-file");
    let file = tmp.path().join("bad.toml");
    std::fs::write(
        &file,
        "dt_ms = 0.1\nduration_ms = 10.0\n[[populations]]\nname = \"E\"\nsize = -3\n",
    )
    .expect("write bad.toml");
    let out = fails(&[
        "run".as_ref(),
        file.as_os_str(),
        "--backend".as_ref(),
        "cpu".as_ref(),
        "--out".as_ref(),
        tmp.path().join("out").as_os_str(),
    ]);
    let err = stderr(&out);
    assert!(
        err.contains(&file.display().to_string()) && err.contains("size") && err.contains(">= 1"),
        "stderr should name {} and `size`\n{}",
        file.display(),
        report(&out)
    );
    assert!(
        !tmp.path().join("out").exists(),
        "no outputs for a bad scenario"
    );
}

#[test]
fn bad_override_fails_naming_the_path() {
    let tmp = TempDir::new("bad-set");
    let out_dir = tmp.path().join("out");
    let out_str = out_dir.display().to_string();
    for (set, expect) in [
        ("populations.X.size=3", "populations.X.size"),
        ("populations.E.size=0", "size"),
        ("populations.E.size=ten", "size"),
    ] {
        let out = fails(&["run", "--backend", "cpu", "--out", &out_str, "--set", set]);
        assert!(
            stderr(&out).contains(expect),
            "--set {set}: stderr should contain {expect:?}\n{}",
            report(&out)
        );
    }
}

#[test]
fn missing_file_or_unknown_embedded_name_fails_naming_it() {
    let tmp = TempDir::new("missing");
    let out_str = tmp.path().join("out").display().to_string();
    let missing = tmp.path().join("nope.toml").display().to_string();
    for name in [missing.as_str(), "cobra"] {
        let out = fails(&["run", name, "--backend", "cpu", "--out", &out_str]);
        let err = stderr(&out);
        assert!(
            err.contains(name) && err.contains("coba"),
            "stderr should name {name:?} and list the embedded scenarios\n{}",
            report(&out)
        );
    }
}

#[test]
fn bad_flags_fail_without_panic() {
    let tmp = TempDir::new("flags");
    let out_str = tmp.path().join("out").display().to_string();
    fails(&["run", "--backend", "quantum", "--out", &out_str]);
    let out = fails(&[
        "run",
        "--backend",
        "cpu",
        "--batch-steps",
        "0",
        "--out",
        &out_str,
    ]);
    assert!(stderr(&out).contains("--batch-steps"), "{}", report(&out));
    let out = fails(&[
        "run",
        "--backend",
        "cpu",
        "--duration-ms",
        "0",
        "--out",
        &out_str,
    ]);
    assert!(stderr(&out).contains("duration_ms"), "{}", report(&out));
    fails(&["frobnicate"]);
}

#[test]
fn scenarios_lists_coba() {
    let out = ok(&["scenarios"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("coba")),
        "no `coba` line\n{}",
        report(&out)
    );
}

#[test]
fn devices_exits_cleanly() {
    // There may be no adapter at all; both outcomes exit 0.
    ok(&["devices"]);
    let out = ok(&["devices", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("devices --json: {e}\n{text}"));
    assert!(v.is_array(), "{v}");
}

#[test]
fn bench_on_cpu_writes_json() {
    let tmp = TempDir::new("bench");
    let json = tmp.path().join("b.json");
    ok(&[
        "bench".as_ref(),
        "--neurons".as_ref(),
        "2000".as_ref(),
        "--steps".as_ref(),
        "20".as_ref(),
        "--backend".as_ref(),
        "cpu".as_ref(),
        "--out".as_ref(),
        json.as_os_str(),
    ]);
    let text = read(&json);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("b.json: {e}\n{text}"));
    let results = v["results"].as_array().expect("results array");
    assert_eq!(results.len(), 1, "{v:#}");
    let r = &results[0];
    assert_eq!(r["backend"], "cpu", "{r:#}");
    assert_eq!(r["neurons"].as_u64(), Some(2000), "{r:#}");
    for key in [
        "neuron_updates_per_s",
        "synaptic_events_per_s",
        "rtf",
        "bytes_per_neuron_step",
    ] {
        let x = num(r, key);
        assert!(x.is_finite() && x >= 0.0, "{key} = {x}: {r:#}");
    }
    assert!(num(r, "neuron_updates_per_s") > 0.0, "{r:#}");
}
