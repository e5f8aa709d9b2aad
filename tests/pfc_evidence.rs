//! Evidence for the two-step answer with the default circuit (`pfc_ketamine`, full
//! size, default parameters; docs/pfc-ketamine.md), CPU backend:
//!
//! - a subanaesthetic free level (1 µM) lowers PV firing, raises pyramidal firing,
//!   raises extracellular glutamate and gamma power, and blocks interneuron NMDA
//!   receptors more than pyramidal ones;
//! - an anaesthetic level (10 µM) lowers glutamate below the pre-drug baseline;
//! - a 10% loss of interneuron NMDA conductance alone (no drug) raises pyramidal
//!   firing gradedly, in the asynchronous irregular regime (no jump to a high-rate
//!   state).
//!
//! Each drug run: 5 s warm-up, 1 s baseline, the concentration step, 6 s settle (three
//! clearance times of the glutamate pool), 2 s measured; the two levels run on two
//! threads. Nothing here is a speed assertion.

use ketasim::protocol::Window;
use ketasim::run::{run, BackendChoice, RunOptions, RunResult};
use ketasim::scenario::{Scenario, Source};

fn default_circuit(extra: &[String]) -> Scenario {
    Scenario::load(&Source::locate(None).expect("default scenario"), extra)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The default circuit, continuous, with the free concentration stepped to `conc_um`
/// at 6 s; 1 s rows, the first 6 s the baseline.
fn step_run(conc_um: f64) -> RunResult {
    let s = default_circuit(&[
        "protocol.mode=\"continuous\"".into(),
        "protocol.timecourse_ms=1000.0".into(),
        "duration_ms=14000.0".into(),
        "record.baseline_ms=6000.0".into(),
        "record.spikes=[]".into(),
        format!("pharmacokinetics={{conc_table=[[0.0,0.0],[0.1,0.0],[0.1000001,{conc_um}]]}}"),
    ]);
    run(
        &s,
        &RunOptions {
            backend: BackendChoice::Cpu,
            ..RunOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{conc_um} µM: {e}"))
}

fn mean<'a>(w: impl Iterator<Item = &'a Window>, f: impl Fn(&Window) -> f64) -> f64 {
    let v: Vec<f64> = w.map(f).collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// (baseline, measured) means of `f` over the 1 s rows: baseline = rows in
/// `[b0, 6)` s, measured = rows from `m0` s to the end (14 s).
fn span(r: &RunResult, b0: f64, m0: f64, f: impl Fn(&Window) -> f64 + Copy) -> (f64, f64) {
    let base = r
        .windows
        .iter()
        .filter(|w| w.sim_ms.0 >= 1000.0 * b0 && w.sim_ms.1 <= 6000.0);
    let meas = r.windows.iter().filter(|w| w.sim_ms.0 >= 1000.0 * m0);
    (mean(base, f), mean(meas, f))
}

/// Rates, block and glutamate: baseline 5-6 s (the pool is stationary after the
/// 5 s warm-up), measured 12-14 s (6 s after the step).
fn before_after(r: &RunResult, f: impl Fn(&Window) -> f64 + Copy) -> (f64, f64) {
    span(r, 5.0, 12.0, f)
}

#[test]
fn subanaesthetic_ketamine_raises_glutamate_and_anaesthetic_lowers_it() {
    let (low, high) = std::thread::scope(|s| {
        let a = s.spawn(|| step_run(1.0));
        let b = s.spawn(|| step_run(10.0));
        (a.join().expect("1 µM"), b.join().expect("10 µM"))
    });
    let (e, i) = (0, 1);
    let report = |name: &str, r: &RunResult| {
        let (e0, e1) = before_after(r, |w| w.pops[e].rate_hz);
        let (i0, i1) = before_after(r, |w| w.pops[i].rate_hz);
        let (_, be) = before_after(r, |w| w.pops[e].nmda_blocked);
        let (_, bi) = before_after(r, |w| w.pops[i].nmda_blocked);
        let (g0, g1) = before_after(r, |w| w.pops[e].glutamate_um);
        // Gamma power is the noisiest readout: average it over 4 s of baseline (after
        // the 2 s start-up) and the 6 s from 8 s on (the network, not the glutamate
        // pool, sets it, and the network settles within a second or two).
        let (y0, y1) = span(r, 2.0, 8.0, |w| w.gamma_power);
        eprintln!(
            "{name}: E {e0:.3} -> {e1:.3} Hz, I {i0:.2} -> {i1:.2} Hz, block E {be:.3} I {bi:.3}, glutamate {g0:.4} -> {g1:.4} µM ({:.1}%), gamma x{:.2}",
            100.0 * g1 / g0,
            y1 / y0,
        );
        (e0, e1, i0, i1, be, bi, g1 / g0, y1 / y0)
    };
    let (e0, e1, i0, i1, be, bi, glu, gamma) = report("1 µM", &low);
    let (e0h, e1h, _, _, _, _, glu_h, _) = report("10 µM", &high);
    assert!(i1 < 0.9 * i0, "1 µM: PV firing must fall: {i0} -> {i1} Hz");
    assert!(
        e1 > 1.1 * e0,
        "1 µM: pyramidal firing must rise: {e0} -> {e1} Hz"
    );
    assert!(e1 < 3.0 * e0, "1 µM: graded, not a jump: {e0} -> {e1} Hz");
    assert!(
        bi > be,
        "1 µM: interneurons lose NMDA first: block I {bi} vs E {be}"
    );
    assert!(glu > 1.1, "1 µM: glutamate must rise above baseline: {glu}");
    assert!(gamma > 1.1, "1 µM: gamma power must rise: x{gamma}");
    assert!(
        glu_h < 1.0,
        "10 µM: glutamate must fall below baseline: {glu_h}"
    );
    assert!(
        e1h < e0h,
        "10 µM: pyramidal firing falls: {e0h} -> {e1h} Hz"
    );
    assert!(glu_h < glu, "10 µM below 1 µM: {glu_h} vs {glu}");
}

#[test]
fn interneuron_only_nmda_loss_is_graded() {
    let run_with = |g: f64| {
        let s = default_circuit(&[
            "protocol.mode=\"continuous\"".into(),
            "protocol.timecourse_ms=2000.0".into(),
            "duration_ms=4000.0".into(),
            "record.spikes=[\"E\"]".into(),
            "pharmacokinetics={conc_table=[[0.0,0.0]]}".into(),
            format!("populations.I.nmda.g_max_nS={g}"),
        ]);
        let r = run(
            &s,
            &RunOptions {
                backend: BackendChoice::Cpu,
                ..RunOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // The last 2 s (the first 2 s are the start-up).
        let w: Vec<&Window> = r.windows.iter().filter(|w| w.sim_ms.0 >= 2000.0).collect();
        let rate = mean(w.iter().copied(), |w| w.pops[0].rate_hz);
        let cv = mean(w.iter().copied(), |w| w.pops[0].cv_isi);
        let chi = mean(w.iter().copied(), |w| w.pops[0].synchrony);
        eprintln!("PV NMDA g_max {g} nS: E {rate:.3} Hz, CV {cv:.2}, chi {chi:.3}");
        (rate, cv, chi)
    };
    let (r0, cv0, _) = run_with(30.0);
    let (r1, cv1, chi1) = run_with(27.0);
    assert!(
        r1 > r0,
        "less interneuron NMDA drive disinhibits: {r0} -> {r1} Hz"
    );
    assert!(
        r1 < 3.0 * r0 && r1 < 10.0,
        "a 10% loss must not flip the circuit into a high-rate state: {r0} -> {r1} Hz"
    );
    assert!(cv0 > 0.5 && cv1 > 0.5, "irregular firing: CV {cv0}, {cv1}");
    assert!(chi1 < 0.3, "asynchronous: chi {chi1}");
}
