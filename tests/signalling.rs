//! The slow signalling state (SCIENCE.md section 7, docs/signalling.md):
//!
//! - its kernels (`signal_sum`, `slow_update`, and the density scaling and AMPA
//!   accumulation in `neuron_update`) against their CPU twins on the adapter;
//! - the multiscale bridge of the slow state (activation measured in short windows,
//!   interpolated across the gaps) against the continuous mode, with the time
//!   constants compressed to seconds so that both can run;
//! - the analytic baseline: with no drug and no activation change the state stays at
//!   rest, and with a constant activation step the fast part reaches the Hill drive.

mod common;

use ketasim::backend::Backend;
use ketasim::cpu::CpuBackend;
use ketasim::gpu::GpuBackend;
use ketasim::model::Network;
use ketasim::run::{run, BackendChoice, RunOptions, RunResult};
use ketasim::scenario::{Scenario, Source};
use ketasim::signalling::SlowDriver;

fn stress(extra: &[&str]) -> Scenario {
    let v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Scenario::load(
        &Source::locate(Some("stress_ketamine")).expect("embedded"),
        &v,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    (a - b).abs() <= abs + rel * a.abs().max(b.abs())
}

/// Overrides that resize the stress circuit to `e` pyramidal and `i` PV cells with
/// connection probability `p` on all six projections, without spike recording.
fn resized(e: u32, i: u32, p: f64) -> Vec<String> {
    let mut v = vec![
        format!("populations.E.size={e}"),
        format!("populations.I.size={i}"),
        "record.spikes=[]".to_string(),
    ];
    v.extend((0..6).map(|k| format!("projections.{k}.p={p}")));
    v
}

/// A small copy of the stress circuit: 200 E, 50 I (in-degree kept by p = 0.4).
fn small(extra: &[&str]) -> Scenario {
    let mut v = resized(200, 50, 0.4);
    v.extend(extra.iter().map(|s| s.to_string()));
    let v: Vec<&str> = v.iter().map(String::as_str).collect();
    stress(&v)
}

/// Run `steps` steps in batches of `batch` with the network's drug block.
fn advance(b: &mut dyn Backend, net: &Network, from: u64, steps: u64, batch: u32) {
    let mut done = from;
    while done < from + steps {
        let n = (from + steps - done).min(batch as u64) as u32;
        b.set_drug(net.drug_at(done, n)).expect("drug");
        b.run_batch(n).expect("batch");
        done += n as u64;
    }
}

#[test]
fn slow_kernels_match_cpu_twin() {
    let Some(ctx) = common::gpu_or_skip("slow_kernels_match_cpu_twin") else {
        return;
    };
    let s = small(&[]);
    let net = Network::build(&s, 256).expect("network");
    let mut cpu = CpuBackend::new(&net).expect("cpu");
    let mut gpu = GpuBackend::new(ctx, &net).expect("gpu");
    let mut drivers = [
        SlowDriver::new(&net).unwrap(),
        SlowDriver::new(&net).unwrap(),
    ];
    let backends: [&mut dyn Backend; 2] = [&mut cpu, &mut gpu];
    let mut readouts = Vec::new();
    for (b, d) in backends.into_iter().zip(drivers.iter_mut()) {
        // Baseline interval, then two intervals (the second 2 h later, with an
        // activation change from a doubled E -> E weight is not possible here, so the
        // measured activations drive it as they are) and the state read back.
        advance(b, &net, 0, 512, 256);
        d.start_interval(b).expect("start");
        advance(b, &net, 512, 512, 256);
        let conc = |t: f64| net.conc_at_min(t);
        let base = d
            .finish_interval(b, 0.0512, -10.0, &conc)
            .expect("baseline");
        advance(b, &net, 1024, 512, 256);
        let r1 = d.finish_interval(b, 0.0512, 110.0, &conc).expect("advance");
        let st = b.slow_state().expect("state");
        readouts.push((base, r1, st));
    }
    let (cb, c1, (csig, cst)) = &readouts[0];
    let (gb, g1, (gsig, gst)) = &readouts[1];
    // The activation sums come from the accumulators of neuron_update (fixed point,
    // rounded once per neuron): equal up to the odd last-bit rounding of one neuron.
    for (c, g) in cb.iter().zip(gb).chain(c1.iter().zip(g1)) {
        match (c, g) {
            (Some(c), Some(g)) => {
                assert!(
                    close(c.activation_ns_per_s, g.activation_ns_per_s, 1e-5, 1e-3),
                    "activation cpu {c:?} gpu {g:?}"
                );
                for (x, y) in [
                    (c.bdnf, g.bdnf),
                    (c.mtor, g.mtor),
                    (c.protein, g.protein),
                    (c.density, g.density),
                ] {
                    assert!(close(x, y, 1e-5, 1e-6), "cpu {c:?} gpu {g:?}");
                }
            }
            (None, None) => {}
            _ => panic!("signalling populations differ: {c:?} vs {g:?}"),
        }
    }
    let mut exact = 0;
    for i in 0..csig.len() {
        for k in 0..2 {
            assert!(
                close(csig[i][k] as f64, gsig[i][k] as f64, 1e-5, 1e-6),
                "neuron {i} sig[{k}]: cpu {} gpu {}",
                csig[i][k],
                gsig[i][k]
            );
        }
        for k in 0..4 {
            assert!(
                close(cst[i][k] as f64, gst[i][k] as f64, 1e-5, 1e-6),
                "neuron {i} state[{k}]: cpu {} gpu {}",
                cst[i][k],
                gst[i][k]
            );
        }
        exact += usize::from(csig[i] == gsig[i] && cst[i] == gst[i]);
    }
    eprintln!(
        "slow state bit-identical in {exact} of {} neurons",
        csig.len()
    );
    // The slow state moved: the 2 h advance with the measured activations is not a
    // no-op (the reference adapts to the second interval's activation).
    let e = net.pop_names.iter().position(|n| n == "E").unwrap();
    assert!(cst[net.pops()[e].offset as usize][0] > 0.0);
}

/// Density and blocks act on the network: the kernels scale recurrent input by the
/// density and every AMPA increment by 1 - ampa_block, on the adapter as on the CPU.
#[test]
fn density_and_ampa_block_match_cpu_twin() {
    let Some(ctx) = common::gpu_or_skip("density_and_ampa_block_match_cpu_twin") else {
        return;
    };
    let s = small(&["interventions.ampa_block=0.5"]);
    let net = Network::build(&s, 128).expect("network");
    let mut cpu = CpuBackend::new(&net).expect("cpu");
    let mut gpu = GpuBackend::new(ctx, &net).expect("gpu");
    let mut spikes = Vec::new();
    for b in [&mut cpu as &mut dyn Backend, &mut gpu] {
        let mut drug = net.drug_at(0, 128);
        drug.ampa_block = 0.5;
        let mut sp = Vec::new();
        for k in 0..3 {
            b.set_drug(drug).unwrap();
            drug.step0 += 128;
            let out = b.run_batch(128).unwrap();
            sp.extend(out.spikes);
            let _ = k;
        }
        spikes.push((sp, b.state().unwrap()));
    }
    assert_eq!(spikes[0].0, spikes[1].0, "spike trains differ");
    let (c, g) = (&spikes[0].1, &spikes[1].1);
    for i in 0..c.v.len() {
        assert!(close(c.g_ampa[i] as f64, g.g_ampa[i] as f64, 1e-5, 1e-6));
        assert!(close(
            c.sig_nrn[i][1] as f64,
            g.sig_nrn[i][1] as f64,
            1e-5,
            1e-6
        ));
    }
}

/// The stress scenario (600 neurons, the same in-degrees) with every slow time
/// constant compressed to seconds and a concentration step at 12 s, in continuous
/// mode (the slow state advanced every second with the activation measured over that
/// second; reference at 10 s, the end of `record.baseline_ms`) and in multiscale mode
/// (the reference window at 9.5-10 s, then 0.5 s windows every 2 s, the activation
/// interpolated across the 1 s gaps). Gaps are a third of the fastest slow time
/// constant, as in the default scenario's first two hours (5 min against 15 min).
fn compressed(mode_args: &[&str]) -> RunResult {
    let sized = resized(480, 120, 0.6667);
    let mut v: Vec<&str> = sized.iter().map(String::as_str).collect();
    v.extend([
        // Seconds instead of minutes and hours (1 min of the default time constants
        // becomes 0.4 s): BDNF and mTOR 6 s, adaptation and protein 24 s, loss 600 s,
        // growth 150x faster.
        "signalling.tau_adapt_min=0.4",
        "signalling.tau_bdnf_min=0.1",
        "signalling.tau_mtor_min=0.1",
        "signalling.tau_protein_h=0.0066667",
        "signalling.tau_loss_h=0.16667",
        "signalling.growth_per_h=525.0",
        "signalling.step_s=0.1",
        "pharmacokinetics={conc_table=[[0.0,0.0],[0.2,0.0],[0.2001,1.0],[10.0,1.0]]}",
    ]);
    v.extend_from_slice(mode_args);
    run(
        &stress(&v),
        &RunOptions {
            backend: BackendChoice::Cpu,
            ..RunOptions::default()
        },
    )
    .expect("run")
}

#[test]
fn multiscale_bridge_of_slow_state_matches_continuous() {
    let cont = compressed(&[
        "protocol.mode=\"continuous\"",
        "protocol.timecourse_ms=1000.0",
        "record.baseline_ms=10000.0",
        "duration_ms=50000.0",
    ]);
    // Windows measured over [t, t + 0.5 s]: the reference at 9.5 s, then 12.5, 14.5,
    // ... 48.5 s.
    let mut times = vec![9.5];
    times.extend((0..19).map(|k| 12.5 + 2.0 * k as f64));
    let times: Vec<String> = times.iter().map(|t| format!("{:.8}", t / 60.0)).collect();
    let w = format!("protocol.window_times_min=[{}]", times.join(","));
    let ms = compressed(&[
        "protocol.mode=\"multiscale\"",
        &w,
        "protocol.warmup_ms=9000.0",
        "protocol.settle_ms=500.0",
        "protocol.window_ms=500.0",
    ]);
    let slow_at = |r: &RunResult, t_s: f64| {
        let w = r
            .windows
            .iter()
            .filter(|w| w.pops[0].slow.is_some())
            .min_by(|a, b| {
                (a.protocol_min.1 * 60.0 - t_s)
                    .abs()
                    .total_cmp(&(b.protocol_min.1 * 60.0 - t_s).abs())
            })
            .unwrap();
        w.pops[0].slow.unwrap()
    };
    // mTOR at every multiscale readout against the continuous one at the same time.
    let mut worst: f64 = 0.0;
    let mut excursion: f64 = 0.0;
    for w in ms.windows.iter().filter(|w| w.pops[0].slow.is_some()) {
        let t = w.protocol_min.1 * 60.0;
        let (m, c) = (w.pops[0].slow.unwrap(), slow_at(&cont, t));
        let (mm, cm) = (m.mtor / m.m_rest, c.mtor / c.m_rest);
        eprintln!(
            "t {t:.1} s: mTOR continuous {cm:.3} multiscale {mm:.3}; activation {:.3} {:.3}",
            c.activation_rel, m.activation_rel
        );
        worst = worst.max((mm - cm).abs());
        excursion = excursion.max((cm - 1.0).abs());
    }
    let (c_mid, m_mid) = (slow_at(&cont, 22.0).density, slow_at(&ms, 22.0).density);
    let (c_end, m_end) = (slow_at(&cont, 49.0).density, slow_at(&ms, 49.0).density);
    eprintln!(
        "density at 22 s: continuous {c_mid:.4}, multiscale {m_mid:.4}; at 49 s: {c_end:.4} vs {m_end:.4}; mTOR: largest excursion {excursion:.3}, largest difference {worst:.3}"
    );
    // The step drove the chain in both ...
    assert!(excursion > 0.1, "mTOR excursion {excursion}");
    let (dc, dm) = (c_end - 0.7, m_end - 0.7);
    assert!(dc > 0.02 && dm > 0.02, "density change {dc} {dm}");
    // ... and the bridge follows the continuous run: the density change within 10%
    // (measured: 3%), mTOR within a third of its excursion at every readout (measured:
    // 27%; the 600-neuron network's activation fluctuates by +-10% between 0.5 s
    // windows, and each multiscale window holds for 2 s).
    assert!(
        (dc - dm).abs() <= 0.1 * dc,
        "continuous +{dc:.4}, multiscale +{dm:.4}"
    );
    assert!(
        worst <= 0.35 * excursion,
        "mTOR differs by {worst} (excursion {excursion})"
    );
}

/// `ketasim run` of a small stress scenario with a blocker given by `--set`: the
/// time course gains the time in hours and the slow columns, and `signalling.png` is
/// drawn.
#[test]
fn cli_writes_slow_columns_and_figure() {
    let dir = common::TempDir::new("cli_slow");
    let out = common::ketasim(&[
        "run",
        "stress_ketamine",
        "--backend",
        "cpu",
        "--set",
        "populations.E.size=160",
        "--set",
        "populations.I.size=40",
        "--set",
        "protocol.window_times_min=[-10,5,60,1440]",
        "--set",
        "protocol.warmup_ms=500.0",
        "--set",
        "protocol.settle_ms=200.0",
        "--set",
        "protocol.window_ms=300.0",
        "--set",
        "interventions.bdnf_block=0.5",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::report(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("slow state of E") && err.contains("signalling.png"),
        "{err}"
    );
    let csv = common::read(&dir.path().join("timecourse.csv"));
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for c in [
        "t_mid_h",
        "ampa_activation_E",
        "ampa_activation_rel_E",
        "bdnf_E",
        "mtor_E",
        "protein_E",
        "synapse_density_E",
    ] {
        assert!(header.contains(&c), "column {c} missing: {header:?}");
    }
    assert!(
        !header.contains(&"mtor_I"),
        "I carries no slow state: {header:?}"
    );
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 4);
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (h, d) = (col("t_mid_h"), col("synapse_density_E"));
    // The last row is at 24 h; every row has a density (the first is the reference).
    let t_last: f64 = rows[3][h].parse().unwrap();
    assert!((t_last - 24.0).abs() < 0.01, "{t_last}");
    for r in &rows {
        let s: f64 = r[d].parse().unwrap_or_else(|_| panic!("density in {r:?}"));
        assert!(s > 0.5 && s < 1.5, "{s}");
    }
    assert!(dir.path().join("signalling.png").exists());
}

/// `ketasim sweep` over a blocker x 2 seeds on a small stress scenario: the rows gain
/// the slow columns, batched runs (the two seeds side by side in one simulation) give
/// the same slow state as runs alone, and rapamycin abolishes the density rise that
/// ketamine alone gives.
#[test]
fn sweep_over_a_blocker_batched_and_alone() {
    let dir = common::TempDir::new("sweep_slow");
    let d = dir.path().display().to_string();
    let common = [
        "stress_ketamine",
        "--set",
        "populations.E.size=160",
        "--set",
        "populations.I.size=40",
        "--set",
        "protocol.window_times_min=[-10,5,15,30,45,60,90,240]",
        "--set",
        "protocol.warmup_ms=1000.0",
        "--set",
        "protocol.settle_ms=300.0",
        "--set",
        "protocol.window_ms=500.0",
        "--set",
        "interventions.mtor_block=0,1",
        "--replicates",
        "2",
        "--backend",
        "cpu",
    ];
    let mut csvs = Vec::new();
    for (sub, extra) in [("batched", None), ("alone", Some("--no-batch"))] {
        let out_dir = format!("{d}/{sub}");
        let mut a: Vec<&str> = vec!["sweep"];
        a.extend(common);
        a.extend(["--out", &out_dir]);
        a.extend(extra);
        let out = common::ketasim(&a);
        assert!(out.status.success(), "{}", common::report(&out));
        csvs.push(common::read(
            &std::path::Path::new(&out_dir).join("sweep.csv"),
        ));
    }
    // Fields, with the quoted list-valued ones kept whole.
    let fields = |line: &str| -> Vec<String> {
        let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
        for ch in line.chars() {
            match ch {
                '"' => quoted = !quoted,
                ',' if !quoted => out.push(std::mem::take(&mut cur)),
                _ => cur.push(ch),
            }
        }
        out.push(cur);
        out
    };
    let cols = |csv: &str, name: &str| -> Vec<f64> {
        let header = fields(csv.lines().next().unwrap());
        let k = header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name} in {header:?}"));
        csv.lines()
            .skip(1)
            .map(|l| {
                fields(l)[k]
                    .parse()
                    .unwrap_or_else(|_| panic!("{name} in {l}"))
            })
            .collect()
    };
    for c in ["E_mtor_peak_rel", "E_synapse_density_last", "E_rate_hz"] {
        assert_eq!(
            cols(&csvs[0], c),
            cols(&csvs[1], c),
            "{c}: batched vs alone"
        );
    }
    let dens = cols(&csvs[0], "E_synapse_density_last");
    let mtor = cols(&csvs[0], "E_mtor_peak_rel");
    assert!(
        mtor[0] > 1.0 && dens[0] > 0.7,
        "ketamine alone: mTOR {mtor:?} density {dens:?}"
    );
    assert!((dens[1] - 0.7).abs() < 1e-4, "rapamycin: density {dens:?}");
}
