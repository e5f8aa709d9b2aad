//! The CPU backend's vectorised population-at-a-time path against its shader-shaped
//! per-neuron reference (`neuron_update`, the loop of the WGSL kernel): identical
//! spikes, samples and state, bit for bit. Needs no GPU.

mod common;

use ketasim::backend::Backend;
use ketasim::cpu::CpuBackend;
use ketasim::model::Network;
use ketasim::scenario::Scenario;

#[test]
fn fast_path_equals_reference_path() {
    let mc = common::microcircuit_small(600);
    for (name, text) in [
        ("mixed", common::MIXED),
        ("coba", ketasim::bench::COBA),
        ("microcircuit", mc.as_str()),
    ] {
        let mut s = Scenario::from_toml(name, text).expect("scenario");
        s.duration_ms = 60.0;
        s.record.spikes = s.populations.iter().map(|p| p.name.clone()).collect();
        let net = Network::build(&s, 97).expect("net");
        let mut fast = CpuBackend::new(&net).expect("fast");
        let mut reference = CpuBackend::new_reference(&net).expect("reference");
        let mut done = 0u64;
        let mut spikes = 0;
        while done < net.steps {
            let n = (net.steps - done).min(97) as u32;
            let a = fast.run_batch(n).expect("fast batch");
            let b = reference.run_batch(n).expect("reference batch");
            if let Some(i) = a.spikes.iter().zip(&b.spikes).position(|(x, y)| x != y) {
                panic!(
                    "{name}: spike {i} differs: fast {:?} reference {:?}",
                    a.spikes[i], b.spikes[i]
                );
            }
            assert_eq!(a, b, "{name}: batch at step {done} differs");
            spikes += a.spikes.len();
            done += n as u64;
        }
        assert!(spikes > 100, "{name}: only {spikes} spikes");
        let (x, y) = (
            fast.state().expect("state"),
            reference.state().expect("state"),
        );
        assert_eq!(x, y, "{name}: final state differs");
    }
}

/// Everything a run returns: the batches, the final state and the ISI accumulators.
type RunOutput = (
    Vec<ketasim::backend::BatchOutput>,
    ketasim::model::NeuronState,
    Vec<ketasim::model::layout::IsiStat>,
);

fn run_cpu(b: &mut CpuBackend, steps: u64, drug: bool) -> RunOutput {
    let mut outs = Vec::new();
    let mut done = 0u64;
    while done < steps {
        let n = (steps - done).min(97) as u32;
        if drug {
            // A concentration that rises through the run: the block kinetics with
            // k_b > 0 and a slope within each batch.
            b.set_drug(ketasim::model::layout::DrugParams {
                conc0_um: 0.5 + done as f32 * 1e-3,
                slope_um_per_step: 1e-3,
                step0: done as u32,
                ampa_block: 0.0,
            })
            .expect("drug");
        }
        outs.push(b.run_batch(n).expect("batch"));
        done += n as u64;
    }
    (outs, b.state().expect("state"), b.isi().expect("isi"))
}

fn assert_same(name: &str, what: &str, a: &RunOutput, b: &RunOutput) {
    for (x, y) in a.0.iter().zip(&b.0) {
        assert_eq!(
            x.pop_counts, y.pop_counts,
            "{name} {what}: spike counts per step differ in the batch at step {}",
            x.first_step
        );
        assert_eq!(
            x.samples, y.samples,
            "{name} {what}: samples differ in the batch at step {}",
            x.first_step
        );
        assert_eq!(
            x, y,
            "{name} {what}: batch at step {} differs",
            x.first_step
        );
    }
    assert_eq!(a.0.len(), b.0.len(), "{name} {what}: batch counts differ");
    assert_eq!(a.1, b.1, "{name} {what}: final state differs");
    let bits = |v: &[ketasim::model::layout::IsiStat]| -> Vec<[u32; 4]> {
        v.iter()
            .map(|s| [s.count, s.sum_steps, s.sum_sq.to_bits(), s.last_step])
            .collect()
    };
    assert_eq!(
        bits(&a.2),
        bits(&b.2),
        "{name} {what}: ISI statistics differ"
    );
}

/// The multi-threaded CPU backend (blocks of neurons and spikes spread over rayon
/// threads, integer-atomic propagation, per-block sample sums) gives bit for bit the
/// results of one thread and of the shader-shaped reference path, for a mixed
/// network and for the (shrunk) ketamine network with two NMDA pools per neuron, a
/// rising ketamine concentration, Poisson drive on AMPA and NMDA and glutamate
/// release. The networks are small, so the thresholds are set to zero: every step is
/// split, into blocks of 64 neurons.
#[test]
fn thread_count_does_not_change_results() {
    use ketasim::cpu::ParallelThresholds;
    use ketasim::scenario::Source;
    let forced = ParallelThresholds {
        update_min_cost: 0.0,
        block_cost: 0.0,
        propagate_min_cost: 0.0,
    };
    let mut mixed = Scenario::from_toml("mixed", common::MIXED).expect("mixed");
    mixed.duration_ms = 60.0;
    mixed.record.spikes = mixed.populations.iter().map(|p| p.name.clone()).collect();
    let pfc = Scenario::load(
        &Source::locate(Some("pfc_ketamine")).expect("embedded pfc_ketamine"),
        &[
            "protocol.mode=\"continuous\"".into(),
            "duration_ms=200.0".into(),
            "populations.E.size=400".into(),
            "populations.I.size=100".into(),
        ],
    )
    .expect("shrunk pfc_ketamine");
    for (name, s, drug) in [("mixed", mixed, false), ("pfc_ketamine", pfc, true)] {
        let net = Network::build(&s, 97).expect("net");
        let one = run_cpu(
            &mut CpuBackend::with_threads(&net, 1).expect("1 thread"),
            net.steps,
            drug,
        );
        let spikes: usize = one.0.iter().map(|o| o.spikes.len()).sum();
        assert!(spikes > 100, "{name}: only {spikes} spikes");
        assert!(
            one.0.iter().any(|o| !o.samples.is_empty()),
            "{name}: no samples"
        );
        let reference = run_cpu(
            &mut CpuBackend::new_reference(&net).expect("reference"),
            net.steps,
            drug,
        );
        assert_same(name, "reference path vs 1 thread", &reference, &one);
        for k in [2, 3, 4] {
            let mut b = CpuBackend::with_threads(&net, k)
                .expect("threads")
                .with_parallel_thresholds(forced);
            assert!(b.adapter().contains(&format!("({k} threads)")));
            let many = run_cpu(&mut b, net.steps, drug);
            assert_same(name, &format!("{k} threads vs 1"), &one, &many);
        }
        // Default thresholds on several threads (these networks then stay on one).
        let many = run_cpu(
            &mut CpuBackend::with_threads(&net, 2).expect("threads"),
            net.steps,
            drug,
        );
        assert_same(name, "2 threads, default thresholds", &one, &many);
        // A caller's rayon pool: the backend runs on the pool it is used in.
        if std::env::var_os("KETASIM_THREADS").is_none() {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .expect("pool");
            let many = pool.install(|| {
                let mut b = CpuBackend::new(&net)
                    .expect("cpu")
                    .with_parallel_thresholds(forced);
                assert!(b.adapter().contains("(3 threads)"), "{}", b.adapter());
                run_cpu(&mut b, net.steps, drug)
            });
            assert_same(name, "rayon pool of 3", &one, &many);
        }
    }
}

/// `KETASIM_THREADS`: a positive integer sets the thread count; anything else is an
/// error that names the variable (from the library and from the command line).
#[test]
fn ketasim_threads_is_checked() {
    use ketasim::cpu::threads_from_value;
    assert_eq!(threads_from_value(None).expect("unset"), None);
    assert_eq!(threads_from_value(Some("3".into())).expect("3"), Some(3));
    assert_eq!(threads_from_value(Some(" 1 ".into())).expect("1"), Some(1));
    for bad in ["0", "-2", "two", "", "1.5"] {
        let e = threads_from_value(Some(bad.into())).expect_err(bad);
        assert!(e.to_string().contains("KETASIM_THREADS"), "{bad}: {e}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ketasim"))
        .args(["run", "coba", "--backend", "cpu", "--duration-ms", "1"])
        .arg("--out")
        .arg(std::env::temp_dir().join("ketasim-threads-env-test"))
        .env("KETASIM_THREADS", "lots")
        .output()
        .expect("run ketasim");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "accepted KETASIM_THREADS=lots: {err}"
    );
    assert!(err.contains("KETASIM_THREADS"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Both CPU paths count the same unstable membrane steps (the count, first step and
/// largest step factor of `BatchOutput::unstable`), here through the NMDA term of
/// the step factor in the middle of a run, and only in the population that has them.
#[test]
fn unstable_steps_are_counted_alike_on_both_paths() {
    let s = Scenario::from_toml("mixed-unstable", &common::mixed_unstable()).expect("scenario");
    let net = Network::build(&s, 40).expect("net");
    let mut fast = CpuBackend::new(&net).expect("fast");
    let mut reference = CpuBackend::new_reference(&net).expect("reference");
    let mut first = None;
    for _ in 0..3 {
        let a = fast.run_batch(40).expect("fast batch");
        let b = reference.run_batch(40).expect("reference batch");
        assert_eq!(a, b, "batch at step {} differs", a.first_step);
        assert_eq!(a.unstable.len(), 2);
        assert_eq!(a.unstable[1], Default::default(), "I has no unstable step");
        if first.is_none() {
            first = a.unstable[0].first_step.map(|s| (s, a.unstable[0]));
        }
    }
    let (step, u) = first.expect("E's step factor passed the bound");
    assert_eq!(step, 54, "first unstable step");
    assert!(u.neuron_steps > 0);
    let worst = u.worst_factor();
    assert!(
        worst.is_finite() && worst > ketasim::model::limits::MAX_EULER_STEP_FACTOR,
        "largest step factor {worst}"
    );
}

/// A sampled value past the fixed-point limit sets the same clip bits on both paths,
/// only in the population and quantity that reach it, and only while they do.
#[test]
fn clipped_samples_are_flagged_alike_on_both_paths() {
    let s = Scenario::from_toml("mixed-clipped", &common::mixed_clipped()).expect("scenario");
    let net = Network::build(&s, 40).expect("net");
    let mut fast = CpuBackend::new(&net).expect("fast");
    let mut reference = CpuBackend::new_reference(&net).expect("reference");
    let mut masks = Vec::new();
    for _ in 0..3 {
        let a = fast.run_batch(40).expect("fast batch");
        let b = reference.run_batch(40).expect("reference batch");
        assert_eq!(a, b, "batch at step {} differs", a.first_step);
        masks.extend(a.samples.iter().map(|x| (x.step, x.clipped.clone())));
    }
    // A sample every 0.5 ms; E's AMPA current is past the limit up to 3.5 ms.
    assert_eq!(masks.len(), 24, "{masks:?}");
    assert_eq!(masks[0].0, 4);
    assert!(
        masks[..7]
            .iter()
            .all(|(_, m)| m == &[common::CLIP_I_AMPA, 0]),
        "E's AMPA current clipped, nothing else: {masks:?}"
    );
    assert!(
        masks[7..].iter().all(|(_, m)| m == &[0, 0]),
        "nothing clipped once the conductance has decayed: {masks:?}"
    );
}
