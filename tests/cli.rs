//! The `ketasim` binary end to end: `run` on the CPU backend and its output files,
//! seeds and `--set` overrides, error reporting for bad scenarios, `scenarios`,
//! `devices` and `bench`, and the multiscale default scenario.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;

use common::{ketasim, read, report, TempDir};
use serde_json::Value;

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
    let plain = ok(&["devices"]);
    let out = ok(&["devices", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("devices --json: {e}\n{text}"));
    assert!(v.is_array(), "{v}");
    // Where an adapter is usable, the listing says which ones the suite benches.
    let usable = v
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["usable"] == true));
    let plain = String::from_utf8_lossy(&plain.stdout);
    assert_eq!(plain.contains("bench --suite benches ["), usable, "{plain}");
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

/// `bench` refuses sizes it cannot build as asked, naming the option, instead of
/// running another network: more synapses per neuron than neurons (p = K/N > 1, once
/// silently capped at 1 with the weights still scaled for K), and more neurons than a
/// network addresses (once an overflow reported as a negative population size).
#[test]
fn bench_refuses_sizes_it_cannot_build() {
    let tmp = TempDir::new("bench-sizes");
    let json = tmp.path().join("b.json");
    for (neurons, k, needle) in [
        (
            "100",
            "101",
            "--synapses-per-neuron 101 needs p = 101/100 > 1",
        ),
        (
            "18446744073709551615",
            "1000",
            "at most 4294967294 neurons are addressable",
        ),
        (
            "4294967295",
            "1000",
            "at most 4294967294 neurons are addressable",
        ),
    ] {
        let out = fails(&[
            "bench".as_ref(),
            "--neurons".as_ref(),
            neurons.as_ref(),
            "--synapses-per-neuron".as_ref(),
            k.as_ref(),
            "--steps".as_ref(),
            "1".as_ref(),
            "--backend".as_ref(),
            "cpu".as_ref(),
            "--out".as_ref(),
            json.as_os_str(),
        ]);
        let err = stderr(&out);
        assert!(err.contains(needle), "{neurons} x {k}: {err}");
        assert!(!json.exists(), "{neurons} x {k}: wrote a result");
    }
}

/// Gamma power needs samples every 6.25 ms or less (Nyquist at the band's top, 80 Hz):
/// at 10 ms it is NaN (an empty field) with a note, where it used to be the power of
/// the part of the band below 50 Hz; at 1 ms it is a number.
#[test]
fn gamma_power_is_nan_where_samples_are_too_slow() {
    let tmp = TempDir::new("gamma-nyquist");
    let gamma = |interval: &str| -> (String, String) {
        let dir = tmp.path().join(interval);
        let set = format!("record.sample_interval_ms={interval}");
        let out = run_cpu(&dir, &["--duration-ms", "200", "--set", &set]);
        let text = read(&dir.join("timecourse.csv"));
        let (header, rows) = csv_table(&text);
        let col = header
            .iter()
            .position(|h| h == "gamma_power")
            .expect("gamma_power");
        (rows[0][col].clone(), stderr(&out))
    };
    let (fast, err) = gamma("1");
    assert!(
        fast.parse::<f64>().is_ok_and(|g| g.is_finite() && g > 0.0),
        "{fast}"
    );
    assert!(!err.contains("gamma power is NaN"), "{err}");
    let (slow, err) = gamma("10");
    assert!(slow.is_empty() || slow == "NaN", "{slow}");
    assert!(
        err.contains("note: record.sample_interval_ms = 10 ms"),
        "{err}"
    );
}

/// A sampled value past the sampler's fixed-point limit makes that population mean
/// NaN in samples.csv, is counted in summary.json and named in a warning, instead of
/// a clamped (biased) mean: COBA's E starting at 2,000 nS of AMPA conductance carries
/// about 120,000 pA, past the 65,536 pA limit, until the conductance decays.
#[test]
fn sampled_values_past_the_fixed_point_limit_are_nan_and_named() {
    let tmp = TempDir::new("clipped-samples");
    let i_ampa_e = |dir: &Path| -> Vec<String> {
        let (header, rows) = csv_table(&read(&dir.join("samples.csv")));
        let col = header
            .iter()
            .position(|h| h == "i_ampa_E_pA")
            .expect("i_ampa_E_pA");
        rows.iter().map(|r| r[col].clone()).collect()
    };
    let plain = tmp.path().join("plain");
    let out = run_cpu(&plain, &[]);
    assert!(
        !stderr(&out).contains("fixed-point limit"),
        "{}",
        stderr(&out)
    );
    assert_eq!(num(&summary(&plain), "samples_clipped"), 0.0);
    assert!(i_ampa_e(&plain).iter().all(|x| x != "NaN"));

    let big = tmp.path().join("big");
    let out = run_cpu(&big, &["--set", "populations.E.init.g_ampa_mean_nS=2000"]);
    let col = i_ampa_e(&big);
    let nan = col.iter().filter(|x| *x == "NaN").count();
    assert_eq!(col[0], "NaN", "{col:?}");
    assert!(nan >= 1 && nan < col.len(), "{col:?}");
    assert_eq!(num(&summary(&big), "samples_clipped"), nan as f64);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "population `E`: {nan} of {} samples of i_ampa_E_pA are NaN (first at t = 1 ms)",
            col.len()
        )) && err.contains("65536 pA"),
        "{err}"
    );
    // Only that column, only in E.
    assert_eq!(err.matches("fixed-point limit").count(), 1, "{err}");
}

/// `bench --out` is checked before the runs: a missing folder is created, a path
/// that cannot be written (under a file) fails at once naming `--out`, and each bad
/// size option is named on its own (they shared one message).
#[test]
fn bench_checks_its_output_and_options_before_running() {
    let tmp = TempDir::new("bench-out");
    // `bench --backend cpu ARGS --out OUT`.
    let bench = |out: &Path, args: &[&str]| -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = ["bench", "--backend", "cpu"]
            .iter()
            .chain(args)
            .map(|s| s.into())
            .collect();
        a.push("--out".into());
        a.push(out.as_os_str().to_owned());
        a
    };
    let small = [
        "--steps",
        "2",
        "--neurons",
        "200",
        "--synapses-per-neuron",
        "20",
    ];
    let nested = tmp.path().join("new").join("folder").join("b.json");
    ok(&bench(&nested, &small));
    assert!(read(&nested).contains("\"results\""));
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, "x").expect("write");
    let under_file = blocker.join("b.json");
    for args in [&small[..], &["--suite", "quick"][..]] {
        let err = stderr(&fails(&bench(&under_file, args)));
        assert!(err.contains("--out") && err.contains("a-file"), "{err}");
        assert!(!err.contains("| cpu |"), "ran before failing: {err}");
    }
    for (args, needle) in [
        (
            &["--steps", "0", "--neurons", "200"][..],
            "--steps: must be at least 1",
        ),
        (
            &["--synapses-per-neuron", "0", "--neurons", "200"][..],
            "--synapses-per-neuron: must be at least 1",
        ),
        (
            &["--neurons", "1"][..],
            "--neurons: every size must be at least 2",
        ),
    ] {
        let err = stderr(&fails(&bench(&tmp.path().join("c.json"), args)));
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `ketasim run coba --backend cpu --duration-ms MS EXTRA.. --out OUT_DIR`, which must
/// fail.
fn coba_on_cpu_fails(duration_ms: &str, extra: &[&str], out_dir: &Path) -> Output {
    let mut args: Vec<&OsStr> = ["run", "coba", "--backend", "cpu", "--duration-ms"]
        .into_iter()
        .chain([duration_ms])
        .chain(extra.iter().copied())
        .chain(["--out"])
        .map(OsStr::new)
        .collect();
    args.push(out_dir.as_os_str());
    fails(&args)
}

/// An output folder that cannot be made is an error that names the path and the
/// system's reason once (it was printed twice, once by the library's message and once
/// as the cause under it), and it comes before the simulation: `run`, `sweep` and
/// `dose-response` used to simulate to the end and then fail to write.
#[test]
fn an_unwritable_output_folder_is_named_with_its_reason_once() {
    let tmp = TempDir::new("unwritable");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a folder").expect("write");
    let out_dir = file.join("out");
    let reason = std::io::Error::from_raw_os_error(20).to_string();
    let out = coba_on_cpu_fails("1", &[], &out_dir);
    let err = stderr(&out);
    assert!(err.contains(&*out_dir.to_string_lossy()), "{err}");
    assert_eq!(err.matches(&reason).count(), 1, "{err}");
    assert!(!err.contains("ketasim: coba"), "the run started: {err}");
    let dir = out_dir.as_os_str();
    for (args, started) in [
        (
            vec![
                "sweep",
                "coba",
                "--set",
                "duration_ms=20,30",
                "--backend",
                "cpu",
            ],
            "sweep: running",
        ),
        (
            vec![
                "dose-response",
                "pfc_ketamine",
                "--conc-um",
                "1",
                "--backend",
                "cpu",
            ],
            "replicate 0",
        ),
    ] {
        let mut a: Vec<&OsStr> = args.into_iter().map(OsStr::new).collect();
        a.extend([OsStr::new("--out"), dir]);
        let err = stderr(&fails(&a));
        assert!(
            err.contains(&*out_dir.to_string_lossy()) && err.contains(&reason),
            "{err}"
        );
        assert!(!err.contains(started), "it ran before failing: {err}");
    }
    assert!(!out_dir.exists());
}

/// A run whose forward-Euler membrane step diverges (COBA's E cells started with a
/// GABA_A conductance of 10^4 nS: dt g / C = 5.5) stops with an error that names the
/// population, the step and the fix, and writes no result. It ran before, with E
/// firing at its refractory limit (200 Hz, CV 0), reported as a result.
#[test]
fn a_diverging_membrane_step_is_an_error_not_a_result() {
    let tmp = TempDir::new("diverging");
    let out_dir = tmp.path().join("out");
    let out = coba_on_cpu_fails(
        "20",
        &["--set", "populations.E.init.g_gaba_mean_nS=1e4"],
        &out_dir,
    );
    let err = stderr(&out);
    for needle in [
        "population `E`",
        "unstable from step 0",
        "5.455",
        "Lower dt_ms",
    ] {
        assert!(err.contains(needle), "no {needle:?} in: {err}");
    }
    assert!(!out_dir.join("summary.json").exists(), "wrote a result");
}

/// `--set` overrides that shrink the default scenario (`pfc_ketamine`, 3200 + 800
/// neurons at p = 0.1 on its six projections) to 160 + 40 neurons at p = 0.5: in-degrees
/// 80 from E and 20 from I, a quarter of the full circuit's, so that a run takes well
/// under a second.
fn shrunk_default() -> Vec<String> {
    let mut sets = vec![
        "populations.E.size=160".to_string(),
        "populations.I.size=40".to_string(),
    ];
    sets.extend((0..6).map(|k| format!("projections.{k}.p=0.5")));
    sets.into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect()
}

/// The multiscale windows of the shrunk default scenario: -1 (baseline), 10 and 40 min;
/// 200 ms warm-up, 100 ms settle and 300 ms measured per window.
const SHORT_WINDOWS: [&str; 8] = [
    "--set",
    "protocol.window_times_min=[-1,10,40]",
    "--set",
    "protocol.warmup_ms=200",
    "--set",
    "protocol.settle_ms=100",
    "--set",
    "protocol.window_ms=300",
];

/// `ketasim ARGS... --backend cpu --out DIR` plus the shrunk default scenario and `extra`.
fn default_args(cmd: &[&str], out_dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
    args.extend([
        "--backend".to_string(),
        "cpu".to_string(),
        "--out".to_string(),
    ]);
    args.push(out_dir.display().to_string());
    args.extend(shrunk_default());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// A CSV file as its header and rows of cells (empty cells kept as "").
fn csv_table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// The number in column `col` of `row`.
fn cell(header: &[String], row: &[String], col: &str) -> f64 {
    let i = header
        .iter()
        .position(|h| h == col)
        .unwrap_or_else(|| panic!("no column {col:?} in {header:?}"));
    row[i]
        .parse()
        .unwrap_or_else(|e| panic!("{col} = {:?}: {e} (row {row:?})", row[i]))
}

/// `path` exists, starts with the PNG signature and is larger than `min_bytes`.
fn assert_png(path: &Path, min_bytes: usize) {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(
        bytes.len() > min_bytes,
        "{}: {} bytes, expected more than {min_bytes}",
        path.display(),
        bytes.len()
    );
}

#[test]
fn run_without_scenario_uses_the_multiscale_default() {
    let tmp = TempDir::new("default-multiscale");
    let out_dir = tmp.path().join("out");
    ok(&default_args(&["run"], &out_dir, &SHORT_WINDOWS));

    let s = summary(&out_dir);
    assert_eq!(s["scenario"], "pfc_ketamine", "{s:#}");
    assert_eq!(s["neurons"].as_u64(), Some(200), "{s:#}");
    assert_eq!(s["protocol"]["mode"], "multiscale", "{s:#}");
    assert_eq!(s["protocol"]["windows"].as_u64(), Some(3), "{s:#}");
    assert_eq!(s["protocol"]["baseline_windows"].as_u64(), Some(1), "{s:#}");
    // warmup + windows x (settle + window).
    let expected_ms = 200.0 + 3.0 * (100.0 + 300.0);
    assert!(
        (num(&s, "duration_ms") - expected_ms).abs() < 1e-6,
        "duration_ms should be {expected_ms}: {s:#}"
    );

    let text = read(&out_dir.join("timecourse.csv"));
    let (header, rows) = csv_table(&text);
    for col in [
        "t_start_min",
        "conc_um",
        "rate_hz_E",
        "glutamate_pct_baseline_E",
        "gamma_power_ratio",
    ] {
        assert!(header.iter().any(|h| h == col), "no {col}: {text}");
    }
    assert_eq!(rows.len(), 3, "{text}");
    for (row, t) in rows.iter().zip([-1.0, 10.0, 40.0]) {
        let got = cell(&header, row, "t_start_min");
        assert!(
            (got - t).abs() < 1e-6,
            "t_start_min {got}, expected {t}: {text}"
        );
        assert_eq!(row.len(), header.len(), "{text}");
    }
    let conc: Vec<f64> = rows.iter().map(|r| cell(&header, r, "conc_um")).collect();
    assert_eq!(conc[0], 0.0, "no drug in the baseline window: {text}");
    assert!(
        conc[1] > 0.0 && conc[2] > conc[1],
        "the concentration should rise during the 40 min infusion: {conc:?}\n{text}"
    );
    let base_glu = cell(&header, &rows[0], "glutamate_pct_baseline_E");
    assert!(
        (base_glu - 100.0).abs() < 1e-6,
        "the baseline window is 100% of baseline: {base_glu}\n{text}"
    );
    for f in ["timecourse.png", "spectrum.png", "raster.png"] {
        assert_png(&out_dir.join(f), 10_000);
    }
}

#[test]
fn duration_flag_is_refused_in_multiscale_mode() {
    let tmp = TempDir::new("default-duration");
    let out_dir = tmp.path().join("out");
    let out = fails(&default_args(&["run"], &out_dir, &["--duration-ms", "100"]));
    let err = stderr(&out);
    assert!(
        err.contains("--duration-ms")
            && err.contains("multiscale")
            && err.contains("follows from [protocol]"),
        "stderr should name --duration-ms and say the multiscale duration follows from [protocol]\n{}",
        report(&out)
    );
    assert!(!out_dir.exists(), "no outputs for a refused run");
}

#[test]
fn default_scenario_switches_to_continuous_mode() {
    let tmp = TempDir::new("default-continuous");
    let out_dir = tmp.path().join("out");
    ok(&default_args(
        &["run"],
        &out_dir,
        &[
            "--set",
            "protocol.mode=continuous",
            "--set",
            "duration_ms=300",
            "--set",
            "protocol.timecourse_ms=100",
        ],
    ));
    let s = summary(&out_dir);
    assert_eq!(s["scenario"], "pfc_ketamine", "{s:#}");
    assert_eq!(s["protocol"]["mode"], "continuous", "{s:#}");
    assert_eq!(s["protocol"]["windows"].as_u64(), Some(3), "{s:#}");
    assert!((num(&s, "duration_ms") - 300.0).abs() < 1e-6, "{s:#}");
    let text = read(&out_dir.join("timecourse.csv"));
    let (header, rows) = csv_table(&text);
    assert_eq!(rows.len(), 3, "{text}");
    // Rows tile the run from protocol time 0 in 100 ms steps.
    for (k, row) in rows.iter().enumerate() {
        let t = cell(&header, row, "t_start_min");
        let want = k as f64 * 100.0 / 60_000.0;
        assert!((t - want).abs() < 1e-5, "row {k}: t_start_min {t}: {text}");
    }
}

#[test]
fn bad_protocol_override_fails_naming_the_field() {
    let tmp = TempDir::new("bad-protocol");
    let out_dir = tmp.path().join("out");
    let out = fails(&default_args(
        &["run"],
        &out_dir,
        &["--set", "protocol.window_times_min=[10,5]"],
    ));
    assert!(
        stderr(&out).contains("protocol.window_times_min"),
        "stderr should name protocol.window_times_min\n{}",
        report(&out)
    );
    assert!(!out_dir.exists(), "no outputs for a bad scenario");
}

#[test]
fn dose_response_on_the_default_scenario_replaces_its_protocol() {
    let tmp = TempDir::new("default-dose-response");
    let out_dir = tmp.path().join("out");
    let out = ok(&default_args(
        &["dose-response", "--conc-um", "0,1"],
        &out_dir,
        &[
            "--warmup-ms",
            "100",
            "--baseline-ms",
            "100",
            "--settle-ms",
            "100",
            "--measure-ms",
            "200",
        ],
    ));
    let err = stderr(&out);
    assert!(
        err.contains("note:") && err.contains("[protocol]") && err.contains("not used"),
        "stderr should note that the clamp replaces the scenario's protocol\n{}",
        report(&out)
    );
    let text = read(&out_dir.join("dose_response.csv"));
    let (header, rows) = csv_table(&text);
    assert_eq!(header[0], "conc_um", "{text}");
    assert_eq!(rows.len(), 2, "{text}");
    for (row, c) in rows.iter().zip([0.0, 1.0]) {
        assert_eq!(cell(&header, row, "conc_um"), c, "{text}");
        assert_eq!(row.len(), header.len(), "{text}");
    }
    // The clamp at 1 µM blocks NMDA receptors; at 0 it does not.
    assert_eq!(cell(&header, &rows[0], "nmda_block_E"), 0.0, "{text}");
    assert!(cell(&header, &rows[1], "nmda_block_E") > 0.0, "{text}");
    assert_png(&out_dir.join("dose_response.png"), 0);
}

/// Windows too short for a measure are refused before anything runs, naming the flag
/// and the least length: a 10 ms window gave NaN rates and gamma power, a 0.05 ms one
/// NaN for everything. The same population as E and I is refused, and a network
/// without a glutamate pool or NMDA receptors says why those columns are NaN or 0.
#[test]
fn dose_response_refuses_windows_too_short_to_measure() {
    let tmp = TempDir::new("dose-response-windows");
    let out_dir = tmp.path().join("out");
    let dr = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "dose-response",
            "pfc_ketamine",
            "--conc-um",
            "1",
            "--backend",
            "cpu",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(["--out".to_string(), out_dir.display().to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let err = stderr(&fails(&dr(&["--measure-ms", "10", "--warmup-ms", "0"])));
    assert!(
        err.contains("--measure-ms: 10 ms is too short") && err.contains("give at least 80 ms"),
        "{err}"
    );
    let err = stderr(&fails(&dr(&["--baseline-ms", "10", "--warmup-ms", "0"])));
    assert!(err.contains("--baseline-ms: 10 ms"), "{err}");
    // With 100 ms rate bins, a baseline from 75.5 ms holds its first whole bin,
    // [100, 200) ms, only from 124.5 ms on: 100 ms is refused, naming that length.
    let err = stderr(&fails(&dr(&[
        "--baseline-ms",
        "100",
        "--warmup-ms",
        "75.5",
        "--set",
        "record.rate_bin_ms=100",
    ])));
    assert!(
        err.contains("--baseline-ms: 100 ms") && err.contains("give at least 124.5 ms"),
        "{err}"
    );
    let err = stderr(&fails(&dr(&["--i-pop", "E"])));
    assert!(
        err.contains("--i-pop: names the same population as --e-pop"),
        "{err}"
    );
    let mut coba = dr(&["--measure-ms", "1"]);
    coba[1] = "coba".into();
    let err = stderr(&fails(&coba));
    assert!(
        err.contains("`E` has no [glutamate] pool")
            && err.contains("neither `E` nor `I` has NMDA receptors")
            && err.contains("--measure-ms: 1 ms"),
        "{err}"
    );
    assert!(!out_dir.exists(), "no outputs for refused windows");
}

/// `KETASIM_FUSE_STEPS` must be a positive whole number, `KETASIM_SPIKE_GROUPS` a
/// whole number from 1 to 256, `KETASIM_WG_SIZE` a power of two from 32 to the
/// adapter's limit, `KETASIM_GPU_DIV` `estimate` or `long`, `KETASIM_GPU_ALL_PATHS` and
/// `KETASIM_GPU_HOLD_PARAMS` 0 or 1, `KETASIM_GPU_CHUNKS_PER_SUBMIT` a positive whole
/// number: anything else stops a GPU run with an error naming the variable (and no
/// panic).
#[test]
fn bad_tuning_variables_are_named() {
    if common::gpu_or_skip("bad_tuning_variables_are_named").is_none() {
        return;
    }
    let dir = TempDir::new("fuse-env");
    for (var, bad) in [
        ("KETASIM_FUSE_STEPS", "0"),
        ("KETASIM_FUSE_STEPS", "abc"),
        ("KETASIM_FUSE_STEPS", "-3"),
        ("KETASIM_SPIKE_GROUPS", "0"),
        ("KETASIM_SPIKE_GROUPS", "257"),
        ("KETASIM_SPIKE_GROUPS", "two"),
        ("KETASIM_WG_SIZE", "48"),
        ("KETASIM_WG_SIZE", "2048"),
        ("KETASIM_WG_SIZE", "16"),
        ("KETASIM_GPU_DIV", "fast"),
        ("KETASIM_GPU_DIV", ""),
        ("KETASIM_GPU_ALL_PATHS", "2"),
        ("KETASIM_GPU_ALL_PATHS", "yes"),
        ("KETASIM_GPU_HOLD_PARAMS", "-1"),
        ("KETASIM_GPU_CHUNKS_PER_SUBMIT", "0"),
        ("KETASIM_GPU_CHUNKS_PER_SUBMIT", "all"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ketasim"))
            .args([
                "run",
                "coba",
                "--backend",
                "gpu",
                "--duration-ms",
                "1",
                "--out",
            ])
            .arg(dir.path())
            .env(var, bad)
            .output()
            .expect("cannot start the ketasim binary");
        assert_eq!(out.status.code(), Some(1), "{var}={bad}: {}", report(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var), "{var}={bad}: {err}");
        assert!(!err.contains("panicked"), "{var}={bad}: {err}");
    }
}

/// `KETASIM_ADAPTER` makes a GPU run take the adapter it names (here by index, from
/// `devices --json`), and one it cannot take stops the run, `--backend auto` and the
/// bench suite included, with an error naming the variable and listing the adapters:
/// never a silent fallback to another adapter or to the CPU.
#[test]
fn the_adapter_variable_chooses_or_stops_the_run() {
    if common::gpu_or_skip("the_adapter_variable_chooses_or_stops_the_run").is_none() {
        return;
    }
    let devices: Value =
        serde_json::from_slice(&ok(&["devices", "--json"]).stdout).expect("devices --json is JSON");
    let list = devices.as_array().expect("an array");
    let usable = list
        .iter()
        .find(|a| a["usable"] == Value::Bool(true))
        .expect("gpu_or_skip found a usable adapter");
    let dir = TempDir::new("adapter-env");
    let run = |backend: &str, spec: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ketasim"))
            .args([
                "run",
                "coba",
                "--backend",
                backend,
                "--duration-ms",
                "1",
                "--out",
            ])
            .arg(dir.path())
            .env("KETASIM_ADAPTER", spec)
            .output()
            .expect("cannot start the ketasim binary")
    };
    let index = usable["index"].as_u64().expect("an index").to_string();
    let out = run("gpu", &index);
    assert!(out.status.success(), "{}", report(&out));
    let s = summary(dir.path());
    let name = usable["name"].as_str().expect("a name");
    assert!(
        s["adapter"].as_str().is_some_and(|a| a.starts_with(name)),
        "ran on {} instead of {name}",
        s["adapter"]
    );
    let mut bad = vec![(list.len().to_string(), "there is no adapter".to_string())];
    if let Some(u) = list.iter().find(|a| a["usable"] == Value::Bool(false)) {
        bad.push((u["index"].to_string(), "cannot run ketasim".into()));
    }
    bad.push(("no such adapter anywhere".into(), "matches".into()));
    for (spec, why) in &bad {
        for backend in ["gpu", "auto"] {
            let out = run(backend, spec);
            assert_eq!(out.status.code(), Some(1), "{spec}: {}", report(&out));
            let err = stderr(&out);
            assert!(
                err.contains("KETASIM_ADAPTER") && err.contains(why.as_str()),
                "{spec}: {err}"
            );
            assert!(err.contains("[0] "), "{spec}: no listing: {err}");
            assert!(!err.contains("falling back"), "{spec}: {err}");
        }
    }
    // The bench suite stops before it runs anything (no GPU would only skip rows).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ketasim"))
        .args(["bench", "--suite", "quick", "--backend", "cpu,gpu", "--out"])
        .arg(dir.path().join("suite.json"))
        .env("KETASIM_ADAPTER", list.len().to_string())
        .output()
        .expect("cannot start the ketasim binary");
    assert_eq!(out.status.code(), Some(1), "{}", report(&out));
    assert!(
        stderr(&out).contains("there is no adapter"),
        "{}",
        report(&out)
    );
    assert!(!dir.path().join("suite.md").exists(), "the suite ran");
}
