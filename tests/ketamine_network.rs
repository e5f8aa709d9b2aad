//! Ketamine in a network run: the concentration that reaches the kernels follows the
//! pharmacokinetic protocol (written next to the rates), block needs open channels,
//! and more drug blocks more.

mod common;

use ketasim::run::{run, BackendChoice, RunOptions};
use ketasim::scenario::Scenario;

fn mixed(drug: &str, duration_ms: f64) -> Scenario {
    let text = common::MIXED.replace("[drug]\nconc_um = 0.8\n", drug);
    let mut s = Scenario::from_toml("mixed", &text).expect("scenario");
    s.duration_ms = duration_ms;
    s.record.spikes.clear();
    s.record.rate_bin_ms = 50.0;
    s
}

fn cpu() -> RunOptions {
    RunOptions {
        backend: BackendChoice::Cpu,
        ..RunOptions::default()
    }
}

#[test]
fn the_protocol_concentration_reaches_the_run_and_its_files() {
    let s = mixed(
        "[drug]\nprotocol_time_min = 3.0\n[pharmacokinetics]\nspecies = \"mouse\"\ndoses = [{ time_min = 0, route = \"ip\", dose_mg_per_kg = 10 }]\n",
        500.0,
    );
    let profile = s
        .pharmacokinetics
        .as_ref()
        .expect("pk")
        .profile()
        .expect("profile");
    let res = run(&s, &cpu()).expect("run");
    assert_eq!(res.bin_conc_um.len(), 10);
    for (b, c) in res.bin_conc_um.iter().enumerate() {
        let t_min = 3.0 + b as f64 * 50.0 / 60_000.0;
        let want = profile.free_brain_conc_um(t_min);
        assert!(
            (c - want).abs() <= 1e-12 * want.max(1.0),
            "bin {b}: {c} vs {want}"
        );
        assert!(
            *c > 1.0,
            "a 10 mg/kg i.p. dose gives micromolar free brain levels at 3 min"
        );
    }
    let dir = std::env::temp_dir().join(format!("ketasim-pk-run-{}", std::process::id()));
    ketasim::run::write_outputs(&res, &dir).expect("write");
    let rates = std::fs::read_to_string(dir.join("rates.csv")).expect("rates.csv");
    let header: Vec<&str> = rates.lines().next().unwrap_or("").split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "conc_um")
        .expect("a conc_um column");
    assert!(
        header.contains(&"glu_E_um") && header.contains(&"release_E_hz"),
        "{header:?}"
    );
    let first: Vec<&str> = rates.lines().nth(1).unwrap_or("").split(',').collect();
    let c: f64 = first[col].parse().expect("conc value");
    assert!((c - res.bin_conc_um[0]).abs() < 1e-5);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn block_grows_with_concentration_and_needs_open_channels() {
    let blocked = |conc: f64| {
        let s = mixed(&format!("[drug]\nconc_um = {conc}\n"), 400.0);
        let r = run(&s, &cpu()).expect("run").summary;
        (
            r.populations[0].mean_nmda_blocked.unwrap_or(f64::NAN),
            r.populations[1].mean_nmda_blocked.unwrap_or(f64::NAN),
        )
    };
    let (e0, _) = blocked(0.0);
    let (e_low, i_low) = blocked(1.0);
    let (e_high, _) = blocked(30.0);
    assert_eq!(e0, 0.0, "no drug, no block");
    assert!(
        e_low > 0.0 && e_high > e_low,
        "E block must grow with concentration: {e_low} at 1 µM, {e_high} at 30 µM"
    );
    // The I population has NMDA receptors but no NMDA input: its channels never open,
    // so an open-channel blocker cannot enter (use dependence).
    assert_eq!(i_low, 0.0, "closed channels must not be blocked");
}
