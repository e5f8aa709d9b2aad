//! Evidence for the slow chain of SCIENCE.md section 7 with the default parameters
//! (`stress_ketamine`, full size, docs/signalling.md), CPU backend, windows to 24 h:
//!
//! - after the subanaesthetic dose (mouse 3 mg/kg i.p.) the glutamate surge raises
//!   mTOR within an hour, and mTOR is back near baseline by 2 h;
//! - synapse density rises within 24 h and recovers most of the chronic-stress
//!   deficit;
//! - saline (the same injection with 0 mg/kg) leaves the density where it was;
//! - rapamycin (`mtor_block`), NBQX (`ampa_block`) and a BDNF block (`bdnf_block`),
//!   each given before the dose, abolish the rise.
//!
//! Nothing is written into the model: the rise follows from the surge through the
//! kernels. The five runs are independent and run side by side on the test threads;
//! the windows are shorter than the scenario's (see `SHORTER`).
//! Nothing here is a speed assertion.

use ketasim::protocol::Window;
use ketasim::run::{run, BackendChoice, RunOptions, RunResult};
use ketasim::scenario::{Scenario, Source};

/// Windows: baseline, the surge, the return, 24 h, with the scenario's 2 s settle,
/// 2 s measured and 5 s warm-up; samples every 5 ms (no spectra needed).
const WINDOWS: [&str; 3] = [
    "protocol.window_times_min=[-10,10,20,30,45,60,120,1440]",
    "record.sample_interval_ms=5.0",
    "record.spikes=[]",
];

/// For the controls whose claim is "no change" (saline, the blockers): fewer windows
/// at half the length (1 s settle, 1 s measured, 3 s warm-up), to keep the five
/// full-size runs within a few minutes of CI. The quantitative claims (timing of
/// mTOR, size of the rise) are checked on the ketamine run with the scenario's own
/// window lengths: shorter windows measure a smaller surge (mTOR peak 1.21 instead of
/// 1.28, density 0.80 instead of 0.88 at 24 h in one measurement).
const SHORTER: [&str; 4] = [
    "protocol.window_times_min=[-10,5,20,45,90,1440]",
    "protocol.warmup_ms=3000.0",
    "protocol.settle_ms=1000.0",
    "protocol.window_ms=1000.0",
];

fn stress_run(name: &str, short: bool, extra: &[&str]) -> RunResult {
    let mut v: Vec<String> = WINDOWS.iter().map(|s| s.to_string()).collect();
    if short {
        v.extend(SHORTER.iter().map(|s| s.to_string()));
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    let s = Scenario::load(&Source::locate(Some(name)).expect("embedded"), &v)
        .unwrap_or_else(|e| panic!("{e}"));
    run(
        &s,
        &RunOptions {
            backend: BackendChoice::Cpu,
            ..RunOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name} {extra:?}: {e}"))
}

fn slow(w: &Window) -> ketasim::signalling::SlowReadout {
    w.pops[0].slow.expect("slow state of E")
}

fn at(r: &RunResult, t_min: f64) -> &Window {
    r.windows
        .iter()
        .find(|w| (w.protocol_min.0 - t_min).abs() < 1e-6)
        .unwrap_or_else(|| panic!("no window at {t_min} min"))
}

fn mtor_rel(w: &Window) -> f64 {
    slow(w).mtor / slow(w).m_rest
}

fn density_24h(r: &RunResult) -> f64 {
    slow(at(r, 1440.0)).density
}

#[test]
fn surge_drives_mtor_and_synaptogenesis_and_each_block_abolishes_it() {
    let conditions: [(&str, bool, &[&str]); 5] = [
        ("stress_ketamine", false, &[]),
        ("stress_saline", true, &[]),
        ("stress_ketamine", true, &["interventions.mtor_block=1.0"]),
        ("stress_ketamine", true, &["interventions.ampa_block=1.0"]),
        ("stress_ketamine", true, &["interventions.bdnf_block=1.0"]),
    ];
    let runs: Vec<RunResult> = std::thread::scope(|s| {
        let h: Vec<_> = conditions
            .iter()
            .map(|(n, short, e)| s.spawn(move || stress_run(n, *short, e)))
            .collect();
        h.into_iter().map(|h| h.join().expect("run")).collect()
    });
    let [ket, saline, rapa, nbqx, bdnf] = &runs[..] else {
        unreachable!()
    };
    let s0 = slow(&ket.windows[0]).density;
    assert!((s0 - 0.7).abs() < 1e-6, "stress baseline density {s0}");
    for (name, r) in ["ketamine", "saline", "rapamycin", "NBQX", "BDNF block"]
        .iter()
        .zip(&runs)
    {
        let m: Vec<String> = r
            .windows
            .iter()
            .map(|w| format!("{:.3}", mtor_rel(w)))
            .collect();
        eprintln!(
            "{name}: mTOR {} ; density at 24 h {:.4}",
            m.join(" "),
            density_24h(r)
        );
    }
    // The surge comes first: glutamate above baseline in the first 20 min.
    let glu_peak = ket
        .windows
        .iter()
        .filter(|w| w.protocol_min.0 > 0.0 && w.protocol_min.0 <= 20.0)
        .map(|w| w.pops[0].glutamate_pct_baseline)
        .fold(0.0, f64::max);
    assert!(glu_peak > 115.0, "glutamate surge {glu_peak}%");
    // mTOR peaks within an hour ...
    let (t_peak, m_peak) = ket
        .windows
        .iter()
        .map(|w| (w.protocol_min.0, mtor_rel(w)))
        .fold((0.0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
    assert!(m_peak > 1.15, "mTOR peak {m_peak}");
    assert!(t_peak > 0.0 && t_peak <= 60.0, "mTOR peaks at {t_peak} min");
    // ... and is back near baseline by 2 h.
    let m2h = mtor_rel(at(ket, 120.0));
    assert!((m2h - 1.0).abs() < 0.15, "mTOR at 2 h: {m2h}");
    // Synapse density rises within 24 h and recovers most of the 0.3 deficit.
    let rise = density_24h(ket) - s0;
    assert!(rise > 0.5 * 0.3, "density at 24 h {}", density_24h(ket));
    // Saline: no change; each blocker: the rise abolished (under a tenth of it).
    assert!(
        (density_24h(saline) - s0).abs() < 0.01,
        "saline density {}",
        density_24h(saline)
    );
    for (name, r) in [("rapamycin", rapa), ("NBQX", nbqx), ("BDNF block", bdnf)] {
        let d = density_24h(r) - s0;
        assert!(
            d < 0.1 * rise,
            "{name}: density rose by {d} (ketamine alone {rise})"
        );
    }
    // The blockers act where they should: rapamycin and the BDNF block leave the
    // surge and the BDNF response upstream of mTOR intact; NBQX removes the AMPA
    // activation itself.
    let bdnf_peak = |r: &RunResult| {
        r.windows
            .iter()
            .map(|w| slow(w).bdnf / slow(w).m_rest)
            .fold(0.0, f64::max)
    };
    assert!(bdnf_peak(rapa) > 1.15 && bdnf_peak(bdnf) > 1.15);
    let act = |r: &RunResult, t: f64| slow(at(r, t)).activation_rel;
    assert!(
        act(nbqx, 20.0) < 0.5 && act(ket, 20.0) > 1.05,
        "{} {}",
        act(nbqx, 20.0),
        act(ket, 20.0)
    );
}
