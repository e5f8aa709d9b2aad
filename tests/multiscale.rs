//! The multiscale mode against the continuous mode where both can run (SCIENCE.md
//! section 8; docs/protocol.md): a concentration ramp over 20 s, simulated in whole
//! and in four windows bridged by the block kinetics. Also the bridge alone: it must
//! bring the block to its equilibrium for a constant concentration, and leave it alone
//! across an empty gap.

use ketasim::model::Network;
use ketasim::protocol::{bridge_block, Window};
use ketasim::run::{run, BackendChoice, RunOptions};
use ketasim::scenario::{ProtocolMode, Scenario, Source};

/// The default circuit shrunk to 500 neurons with the same expected in-degrees
/// (p x 8), driven by a concentration table: 0 for 6 s, a ramp to 1 µM by 15 s, held.
fn small_pfc(extra: &[&str]) -> Scenario {
    let mut set: Vec<String> = [
        "populations.E.size=400",
        "populations.I.size=100",
        "pharmacokinetics={conc_table=[[0.0,0.0],[0.1,0.0],[0.25,1.0]]}",
        "record.spikes=[\"E\",\"I\"]",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for k in 0..6 {
        set.push(format!("projections.{k}.p=0.8"));
    }
    set.extend(extra.iter().map(|s| s.to_string()));
    Scenario::load(
        &Source::locate(Some("pfc_ketamine")).expect("embedded"),
        &set,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn cpu() -> RunOptions {
    RunOptions {
        backend: BackendChoice::Cpu,
        ..RunOptions::default()
    }
}

/// The windows of a continuous run that match a multiscale window's protocol span.
fn continuous_window(windows: &[Window], t0_min: f64, t1_min: f64) -> Vec<&Window> {
    windows
        .iter()
        .filter(|w| w.protocol_min.0 >= t0_min - 1e-9 && w.protocol_min.1 <= t1_min + 1e-9)
        .collect()
}

fn mean(x: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = x.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn multiscale_windows_match_the_continuous_run() {
    // Continuous: 20 s in 1 s rows; the first 5 s are the baseline.
    let cont = small_pfc(&[
        "protocol={mode=\"continuous\",timecourse_ms=1000.0}",
        "duration_ms=20000.0",
        "record.baseline_ms=5000.0",
    ]);
    // Multiscale: the default 5 s warm-up, windows measured from 3, 9, 13 and 17 s
    // (1 s settle, 2 s measured), the first before the ramp (the baseline).
    let ms = small_pfc(&[
        "protocol={mode=\"multiscale\",window_times_min=[0.05,0.15,0.21666666666666667,0.2833333333333333],warmup_ms=5000.0,settle_ms=1000.0,window_ms=2000.0,bridge_step_s=0.5}",
    ]);
    assert_eq!(ms.protocol.mode, ProtocolMode::Multiscale);
    assert!(
        (ms.duration_ms - 17_000.0).abs() < 1e-6,
        "{}",
        ms.duration_ms
    );
    // The same windows without a settle: the bridge alone must carry the block.
    let ms0 = small_pfc(&[
        "protocol={mode=\"multiscale\",window_times_min=[0.05,0.15,0.21666666666666667,0.2833333333333333],warmup_ms=5000.0,settle_ms=0.0,window_ms=2000.0,bridge_step_s=0.5}",
    ]);
    let c = run(&cont, &cpu()).expect("continuous run");
    let m = run(&ms, &cpu()).expect("multiscale run");
    let m0 = run(&ms0, &cpu()).expect("multiscale run without settle");
    for (k, w) in m0.windows.iter().enumerate() {
        let cw = continuous_window(&c.windows, w.protocol_min.0, w.protocol_min.1);
        for p in 0..2 {
            let blk_c = mean(cw.iter().map(|x| x.pops[p].nmda_blocked));
            let blk_m = w.pops[p].nmda_blocked;
            eprintln!("no settle, window {k} pop {p}: block {blk_m:.4} (multiscale) vs {blk_c:.4} (continuous)");
            assert!(
                (blk_m - blk_c).abs() < 0.002 + 0.02 * blk_c,
                "no settle, window {k} pop {p}: block {blk_m} (multiscale) vs {blk_c} (continuous)"
            );
        }
    }
    assert_eq!(m.windows.len(), 4);
    assert_eq!(m.bridges.len(), 3, "one bridge per gap");
    assert!(m.windows[0].baseline && !m.windows[1].baseline);
    let base_c: Vec<&Window> = c.windows.iter().filter(|w| w.baseline).collect();
    assert_eq!(base_c.len(), 5);
    for (k, w) in m.windows.iter().enumerate() {
        let cw = continuous_window(&c.windows, w.protocol_min.0, w.protocol_min.1);
        assert_eq!(
            cw.len(),
            2,
            "window {k}: two 1 s rows of the continuous run"
        );
        let conc_c = mean(cw.iter().map(|x| x.conc_um));
        assert!(
            (w.conc_um - conc_c).abs() < 1e-4,
            "window {k}: concentration {} vs {conc_c}",
            w.conc_um
        );
        eprintln!(
            "window {k} ({:.3}-{:.3} min, {:.3} µM): block E {:.4}/{:.4} I {:.4}/{:.4}, rate E {:.3}/{:.3} I {:.2}/{:.2} Hz, glutamate {:.4}/{:.4} µM (multiscale/continuous)",
            w.protocol_min.0,
            w.protocol_min.1,
            w.conc_um,
            w.pops[0].nmda_blocked,
            mean(cw.iter().map(|x| x.pops[0].nmda_blocked)),
            w.pops[1].nmda_blocked,
            mean(cw.iter().map(|x| x.pops[1].nmda_blocked)),
            w.pops[0].rate_hz,
            mean(cw.iter().map(|x| x.pops[0].rate_hz)),
            w.pops[1].rate_hz,
            mean(cw.iter().map(|x| x.pops[1].rate_hz)),
            w.pops[0].glutamate_um,
            mean(cw.iter().map(|x| x.pops[0].glutamate_um)),
        );
        for p in 0..2 {
            let blk_c = mean(cw.iter().map(|x| x.pops[p].nmda_blocked));
            let blk_m = w.pops[p].nmda_blocked;
            assert!(
                (blk_m - blk_c).abs() < 0.02 + 0.1 * blk_c,
                "window {k} pop {p}: block {blk_m} (multiscale) vs {blk_c} (continuous)"
            );
            let r_c = mean(cw.iter().map(|x| x.pops[p].rate_hz));
            let r_m = w.pops[p].rate_hz;
            assert!(
                (r_m - r_c).abs() < 0.25 * r_c + 0.3,
                "window {k} pop {p}: rate {r_m} Hz (multiscale) vs {r_c} Hz (continuous)"
            );
        }
        // Glutamate in µM: the continuous run starts with an empty pool (2 s
        // clearance time), so compare from 9 s on, where both are stationary.
        if k > 0 {
            let g_c = mean(cw.iter().map(|x| x.pops[0].glutamate_um));
            let g_m = w.pops[0].glutamate_um;
            assert!(
                (g_m - g_c).abs() < 0.1 * g_c,
                "window {k}: glutamate {g_m} µM (multiscale) vs {g_c} µM (continuous)"
            );
        }
    }
}

#[test]
fn bridge_relaxes_the_block_to_its_equilibrium_and_keeps_fractions_valid() {
    // Constant 2 µM from t = 0 on the protocol clock.
    let s = small_pfc(&[
        "pharmacokinetics={conc_table=[[0.0,2.0],[10.0,2.0]]}",
        "protocol={mode=\"continuous\"}",
        "duration_ms=300.0",
    ]);
    let net = Network::build(&s, 100).expect("build");
    let mut backend = ketasim::run::make_backend(&net, BackendChoice::Cpu).expect("cpu");
    for step in (0..3000).step_by(100) {
        backend.set_drug(net.drug_at(step, 100)).expect("drug");
        backend.run_batch(100).expect("batch");
    }
    let st = backend.state().expect("state");
    // An empty gap changes nothing.
    let (rep, pools) = bridge_block(&net, &st, 1.0, 1.0, 1.0);
    assert_eq!(pools, st.pools);
    assert!(rep.iter().all(|r| r.blocked_before == r.blocked_after));
    // A long gap (10 min) brings every pool's mean block to k_on c B / (k_on c B + k_off)
    // evaluated with the population's mean rates: the report's value must not move
    // when the gap doubles, and every neuron's fractions must stay valid.
    let (r10, p10) = bridge_block(&net, &st, 0.0, 10.0, 1.0);
    let (r20, _) = bridge_block(&net, &st, 0.0, 20.0, 1.0);
    for (a, b) in r10.iter().zip(&r20) {
        assert!(a.gate_open > 0.0, "{a:?}");
        assert!(
            a.relax_time_s < 60.0,
            "block relaxes within a minute: {a:?}"
        );
        assert!(
            (a.blocked_after - b.blocked_after).abs() < 1e-9,
            "equilibrium: {a:?} vs {b:?}"
        );
        assert!(
            a.blocked_after > a.blocked_before,
            "2 µM, 0.3 s in: still rising {a:?}"
        );
    }
    for pool in &p10 {
        for f in pool {
            let sum = f[0] + f[1] + f[2];
            assert!(
                f.iter().all(|x| (0.0..=1.0).contains(x)) && sum <= 1.0 + 1e-5,
                "{f:?}"
            );
        }
    }
    // Writing them back and reading again gives the same pools.
    backend.set_nmda_pools(&p10).expect("set pools");
    assert_eq!(backend.state().expect("state").pools, p10);
}

mod common;

/// On the GPU: the pools written by the bridge read back bit for bit, and a short
/// multiscale run (two gaps) gives the CPU twin's windows: identical concentrations,
/// block within 1e-3 and the bridge's reports within 1e-3.
#[test]
fn multiscale_runs_on_the_gpu_like_its_cpu_twin() {
    let test = "multiscale_runs_on_the_gpu_like_its_cpu_twin";
    let Some(ctx) = common::gpu_or_skip(test) else {
        return;
    };
    let s = small_pfc(&[
        "pharmacokinetics={conc_table=[[0.0,0.0],[0.01,0.0],[0.05,5.0]]}",
        "protocol={mode=\"multiscale\",window_times_min=[0.005,0.03,0.06],warmup_ms=100.0,settle_ms=100.0,window_ms=200.0,bridge_step_s=0.5}",
    ]);
    let net = Network::build(&s, ketasim::run::DEFAULT_BATCH_STEPS).expect("build");
    let mut gpu: Box<dyn ketasim::backend::Backend> =
        Box::new(ketasim::gpu::GpuBackend::new(ctx, &net).expect("gpu backend"));
    // Round trip of the pools.
    let mut st = gpu.state().expect("state");
    for (k, pool) in st.pools.iter_mut().enumerate() {
        for (i, f) in pool.iter_mut().enumerate() {
            *f = [0.1 + 0.01 * k as f32, (i % 7) as f32 * 0.05, 0.125, 0.0];
        }
    }
    gpu.set_nmda_pools(&st.pools).expect("set pools");
    assert_eq!(gpu.state().expect("state").pools, st.pools);
    drop(gpu);
    let g = run(
        &s,
        &RunOptions {
            backend: BackendChoice::Gpu,
            ..RunOptions::default()
        },
    )
    .expect("gpu run");
    let c = run(&s, &cpu()).expect("cpu run");
    assert_eq!(g.windows.len(), 3);
    assert_eq!(g.bridges.len(), 2);
    for (wg, wc) in g.windows.iter().zip(&c.windows) {
        assert_eq!(wg.conc_um, wc.conc_um);
        for p in 0..2 {
            let (a, b) = (wg.pops[p].nmda_blocked, wc.pops[p].nmda_blocked);
            assert!((a - b).abs() < 1e-3, "block {a} (gpu) vs {b} (cpu)");
        }
    }
    for (bg, bc) in g.bridges.iter().flatten().zip(c.bridges.iter().flatten()) {
        assert!(
            (bg.blocked_after - bc.blocked_after).abs() < 1e-3,
            "{bg:?} vs {bc:?}"
        );
    }
}
