//! Per-kernel GPU timing with timestamp queries: optional (an adapter or device
//! without `TIMESTAMP_QUERY` reports `false` and nothing changes), one entry per
//! kernel with exactly the dispatches that were timed, and no effect on the results.
//! No speed is asserted.

mod common;

use std::io::Write;

use ketasim::backend::{Backend, BatchOutput};
use ketasim::gpu::{
    GpuBackend, GpuContext, HostTimes, CHUNKS_PER_SUBMIT, KERNEL_NAMES, MAX_TIMED_STEPS_PER_BATCH,
};
use ketasim::model::{chunk_len, Network, NeuronState};
use ketasim::scenario::Scenario;

fn run_all(b: &mut GpuBackend, steps: u64, batch: u32) -> Vec<BatchOutput> {
    let mut outs = Vec::new();
    let mut done = 0;
    while done < steps {
        let n = (steps - done).min(batch as u64) as u32;
        outs.push(b.run_batch(n).expect("batch"));
        done += n as u64;
    }
    outs
}

/// Every continuous state variable as bits, so that equality is bit-for-bit.
fn bits(s: &NeuronState) -> Vec<Vec<u32>> {
    let f = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let pools = |p: &[[f32; 4]]| p.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
    vec![
        f(&s.v),
        s.refrac.clone(),
        f(&s.g_ampa),
        f(&s.g_gaba),
        f(&s.x_nmda),
        pools(&s.pools[0]),
        pools(&s.pools[1]),
        f(&s.glu_r),
    ]
}

/// Batch outputs bit for bit (f32 glutamate compared by bits).
fn assert_same(a: &[BatchOutput], b: &[BatchOutput], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: batch count");
    for (x, y) in a.iter().zip(b) {
        let at = x.first_step;
        assert_eq!(x.first_step, y.first_step, "{what}");
        assert_eq!(x.steps, y.steps, "{what}");
        assert_eq!(
            x.pop_counts, y.pop_counts,
            "{what}: spike counts, batch at {at}"
        );
        assert_eq!(x.samples, y.samples, "{what}: samples, batch at {at}");
        assert_eq!(x.spikes, y.spikes, "{what}: spikes, batch at {at}");
        assert_eq!(x.spikes_dropped, y.spikes_dropped, "{what}");
        assert_eq!(
            x.release_fixed, y.release_fixed,
            "{what}: release, batch at {at}"
        );
        let g = |o: &BatchOutput| {
            o.glutamate_um
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(g(x), g(y), "{what}: glutamate, batch at {at}");
    }
}

/// Dispatches of each kernel (in `KERNEL_NAMES` order) in the first `timed` steps of
/// each batch: one of each per step, `reduce_stats` on sample steps only.
fn expected_dispatches(steps: u64, batch: u32, timed: u32, sample_interval: u64) -> [u64; 4] {
    let mut d = [0u64; 4];
    let mut first = 0u64;
    while first < steps {
        let n = (steps - first).min(batch as u64);
        for step in first..first + n.min(timed as u64) {
            d[0] += 1;
            if (step + 1).is_multiple_of(sample_interval) {
                d[1] += 1;
            }
            d[2] += 1;
            d[3] += 1;
        }
        first += n;
    }
    d
}

fn loud(msg: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** {msg} ***\n");
}

fn check_times(b: &GpuBackend, want: [u64; 4], what: &str) {
    let times = b.kernel_times();
    assert_eq!(times.len(), KERNEL_NAMES.len(), "{what}: {times:?}");
    for ((t, name), &n) in times.iter().zip(KERNEL_NAMES).zip(&want) {
        assert_eq!(t.name, name, "{what}: {times:?}");
        assert_eq!(t.dispatches, n, "{what}: {name} dispatches: {times:?}");
        assert!(
            n > 0,
            "{what}: the test should time every kernel: {times:?}"
        );
        assert!(
            t.total_ns.is_finite() && t.total_ns > 0.0,
            "{what}: {name} total {} ns: {times:?}",
            t.total_ns
        );
        assert!(
            t.mean_ns.is_finite() && t.mean_ns > 0.0,
            "{what}: {name} mean {} ns: {times:?}",
            t.mean_ns
        );
        let mean = t.total_ns / t.dispatches as f64;
        assert!(
            (t.mean_ns - mean).abs() <= 1e-9 * mean,
            "{what}: {name}: {times:?}"
        );
    }
}

#[test]
fn kernel_timing_is_optional_and_changes_no_result() {
    let test = "kernel_timing_is_optional_and_changes_no_result";
    let Some(plain_ctx) = common::gpu_or_skip(test) else {
        return;
    };
    let s = Scenario::from_toml("mixed", common::MIXED).expect("scenario");
    let batch = 64u32;
    let net = Network::build(&s, batch).expect("network");
    let interval = net.params.sim.sample_interval as u64;

    // Reference: a device without the feature. Enabling timing there is refused and
    // changes nothing.
    let mut plain = GpuBackend::new(plain_ctx, &net).expect("gpu");
    assert!(
        !plain.enable_kernel_timing().expect("enable"),
        "a context from GpuContext::new has no TIMESTAMP_QUERY"
    );
    assert!(!plain.kernel_timing_enabled());
    let reference = run_all(&mut plain, net.steps, batch);
    assert!(plain.kernel_times().is_empty());
    let ref_state = bits(&plain.state().expect("state"));
    let spikes: usize = reference.iter().map(|o| o.spikes.len()).sum();
    assert!(
        spikes > 50,
        "too few spikes ({spikes}) for a meaningful comparison"
    );

    let supported = GpuContext::with_timestamps()
        .expect("context with timestamps")
        .timestamps;
    // Part of the steps of every batch timed (both encodings in one batch), then all.
    for timed in [10u32, MAX_TIMED_STEPS_PER_BATCH] {
        let ctx = GpuContext::with_timestamps().expect("context");
        let mut gpu = GpuBackend::new(ctx, &net).expect("gpu");
        let enabled = gpu.enable_kernel_timing_for(timed).expect("enable");
        assert_eq!(enabled, supported, "enable_kernel_timing vs the device");
        assert_eq!(gpu.kernel_timing_enabled(), supported);
        let outs = run_all(&mut gpu, net.steps, batch);
        let what = format!("{timed} timed steps per batch");
        assert_same(&reference, &outs, &what);
        assert_eq!(
            ref_state,
            bits(&gpu.state().expect("state")),
            "{what}: final state"
        );
        if supported {
            let want = expected_dispatches(net.steps, batch, timed, interval);
            check_times(&gpu, want, &what);
        } else {
            assert!(gpu.kernel_times().is_empty(), "{what}");
        }
    }
    if !supported {
        loud(&format!(
            "{test}: the adapter has no TIMESTAMP_QUERY; only the refusal path was tested"
        ));
    }
}

/// A batch longer than the query set covers: the first `MAX_TIMED_STEPS_PER_BATCH`
/// steps are timed (a full query set), the rest run as usual; times accumulate over
/// batches.
#[test]
fn kernel_timing_fills_the_query_set_and_accumulates() {
    let test = "kernel_timing_fills_the_query_set_and_accumulates";
    if common::gpu_or_skip(test).is_none() {
        return;
    }
    let ctx = GpuContext::with_timestamps().expect("context");
    if !ctx.timestamps {
        loud(&format!(
            "{test}: SKIPPED, the adapter has no TIMESTAMP_QUERY"
        ));
        return;
    }
    let mut s = Scenario::from_toml("mixed", common::MIXED).expect("scenario");
    let batch = MAX_TIMED_STEPS_PER_BATCH + 88;
    s.duration_ms = 2.0 * batch as f64 * s.dt_ms;
    let net = Network::build(&s, batch).expect("network");
    let interval = net.params.sim.sample_interval as u64;
    let mut gpu = GpuBackend::new(ctx, &net).expect("gpu");
    assert!(gpu.enable_kernel_timing().expect("enable"));
    let first = gpu.run_batch(batch).expect("batch");
    let want1 = expected_dispatches(batch as u64, batch, MAX_TIMED_STEPS_PER_BATCH, interval);
    check_times(&gpu, want1, "first batch");
    assert_eq!(
        gpu.kernel_times()[0].dispatches,
        MAX_TIMED_STEPS_PER_BATCH as u64
    );
    let total1: Vec<f64> = gpu.kernel_times().iter().map(|t| t.total_ns).collect();
    let second = gpu.run_batch(batch).expect("batch");
    let want2 = expected_dispatches(2 * batch as u64, batch, MAX_TIMED_STEPS_PER_BATCH, interval);
    check_times(&gpu, want2, "two batches");
    for (t, before) in gpu.kernel_times().iter().zip(total1) {
        assert!(t.total_ns > before, "{} did not accumulate", t.name);
    }
    // Samples cover the timed and the untimed part of each batch, in step order.
    for out in [&first, &second] {
        let steps: Vec<u64> = out.samples.iter().map(|x| x.step).collect();
        let want: Vec<u64> = (out.first_step..out.first_step + batch as u64)
            .filter(|t| (t + 1).is_multiple_of(interval))
            .collect();
        assert_eq!(steps, want);
    }
    // Enabling again starts from zero.
    assert!(gpu.enable_kernel_timing().expect("enable"));
    assert!(gpu.kernel_times().iter().all(|t| t.dispatches == 0));
}

/// `bench --suite quick` on the GPU: rows that ran carry `kernel_times` (one entry
/// per kernel, dispatches of the timed warm-up steps) and the neuron_update figures
/// where the adapter has timestamps, nulls where it has not; the Markdown gains the
/// per-kernel table only then.
#[test]
fn quick_suite_on_gpu_reports_kernel_times() {
    use ketasim::bench::{self, Suite};
    use ketasim::run::BackendChoice;
    let test = "quick_suite_on_gpu_reports_kernel_times";
    if common::gpu_or_skip(test).is_none() {
        return;
    }
    let supported = GpuContext::with_timestamps()
        .expect("context with timestamps")
        .timestamps;
    let report = bench::run_suite(Suite::Quick, &[BackendChoice::Gpu], false).expect("suite");
    assert_eq!(report.failed(), 0, "{report:#?}");
    // Unless KETASIM_ADAPTER names one, the suite benches the adapters
    // suite_adapters picks (here the one software adapter, so it is plain "gpu").
    if std::env::var_os(ketasim::gpu::ADAPTER_ENV).is_none() {
        let picked: Vec<usize> = ketasim::gpu::suite_adapters(&ketasim::gpu::list_adapters())
            .iter()
            .map(|p| p.index)
            .collect();
        let benched: Vec<Option<usize>> = report.backends.iter().map(|b| b.adapter_index).collect();
        assert_eq!(
            benched,
            picked.iter().map(|&i| Some(i)).collect::<Vec<_>>(),
            "{report:#?}"
        );
    }
    let ok: Vec<_> = report.results.iter().filter(|r| r.status == "ok").collect();
    assert!(!ok.is_empty(), "{report:#?}");
    let timed = Suite::Quick.warmup_steps() - Suite::Quick.warmup_steps() / 2;
    for r in &ok {
        assert_eq!(r.backend, "gpu");
        // The host's recording time, over the untimed half of the warm-up run.
        let (record, exposed) = (r.host_record_us.unwrap(), r.host_exposed_us.unwrap());
        let submit = r.host_submit_us.unwrap();
        assert!(
            record.is_finite() && exposed > 0.0 && exposed <= record && submit >= 0.0,
            "{r:#?}"
        );
        if !supported {
            assert!(
                r.kernel_times.is_none() && r.neuron_update_us.is_none(),
                "{r:#?}"
            );
            continue;
        }
        let times = r.kernel_times.as_ref().expect("kernel_times");
        assert_eq!(times.len(), KERNEL_NAMES.len(), "{r:#?}");
        assert_eq!(r.kernel_timed_steps, Some(timed), "{r:#?}");
        for (t, name) in times.iter().zip(KERNEL_NAMES) {
            assert_eq!(t.name, name);
            if name != "reduce_stats" {
                // One dispatch per chunk of fused steps (pfc_ketamine's 0.5 ms delays
                // allow 5 steps per chunk; COBA's 0.1 ms, one).
                let fuse = r.fuse_steps.expect("fuse_steps") as u64;
                assert_eq!(t.steps, timed, "{r:#?}");
                assert_eq!(t.dispatches, timed.div_ceil(fuse), "{r:#?}");
            }
            assert!(t.total_ns.is_finite() && t.total_ns >= 0.0, "{r:#?}");
        }
        let us = r.neuron_update_us.expect("neuron_update_us");
        let gb = r.neuron_update_gb_per_s.expect("neuron_update_gb_per_s");
        assert!(
            us.is_finite() && us > 0.0 && gb.is_finite() && gb > 0.0,
            "{r:#?}"
        );
        let want = r.bytes_per_neuron_step.unwrap() * r.neurons.unwrap() as f64 / (us * 1e3);
        assert!((gb - want).abs() <= 1e-9 * want, "{r:#?}");
    }
    for r in report.results.iter().filter(|r| r.status != "ok") {
        assert!(r.kernel_times.is_none(), "{r:#?}");
        assert!(r.host_record_us.is_none(), "{r:#?}");
    }
    let md = bench::suite_markdown(&report);
    assert!(md.contains("| recording µs/step |"), "{md}");
    // The dispatch probe ran on the GPU, before the networks.
    assert_eq!(report.dispatch.len(), 1, "{:#?}", report.dispatch);
    let d = report.dispatch[0].result.as_ref().expect("dispatch probe");
    assert_eq!(
        (d.dispatches, d.passes),
        Suite::Quick.dispatch_probe(),
        "{d:?}"
    );
    assert!(d.direct_us > 0.0 && d.indirect_us > 0.0, "{d:?}");
    assert!(md.contains("| direct µs | indirect µs |"), "{md}");
    // The bandwidth probe ran on the GPU, and each timed row's neuron update is set
    // against its median.
    assert_eq!(report.stream.len(), 1, "{:#?}", report.stream);
    let probe = report.stream[0].result.as_ref().expect("probe result");
    assert_eq!(probe.backend, "gpu");
    for r in &ok {
        match (r.neuron_update_gb_per_s, r.neuron_update_stream_fraction) {
            (Some(gb), Some(f)) => {
                assert!((f - gb / probe.median_gb_per_s).abs() <= 1e-9 * f, "{r:#?}")
            }
            (None, None) => assert!(!supported, "{r:#?}"),
            _ => panic!("fraction without bandwidth or the reverse: {r:#?}"),
        }
    }
    let md = bench::suite_markdown(&report);
    assert_eq!(md.contains("| kernel |"), supported, "{md}");
    if supported {
        assert_eq!(
            bench::kernel_table(&report).lines().count(),
            2 + KERNEL_NAMES.len() * ok.len(),
            "{md}"
        );
    }
}

/// A batch reaches the device in submissions of `CHUNKS_PER_SUBMIT` chunks of fused
/// steps (the device starts on the first while the host records the rest), and the
/// host's recording time is counted: all of it, and the part before the first
/// submission. That the split changes no result is `gpu_vs_cpu`'s (its batches of 73
/// to 500 chunks are compared with the CPU twin bit for bit).
#[test]
fn batches_are_submitted_in_parts_and_the_host_time_is_counted() {
    let test = "batches_are_submitted_in_parts_and_the_host_time_is_counted";
    let Some(ctx) = common::gpu_or_skip(test) else {
        return;
    };
    let s = Scenario::from_toml("mixed", common::MIXED).expect("scenario");
    let batch = 250u32;
    let net = Network::build(&s, batch).expect("network");
    let mut gpu = GpuBackend::new(ctx, &net).expect("gpu");
    assert_eq!(gpu.host_times(), HostTimes::default());
    if std::env::var_os(ketasim::gpu::SUBMIT_ENV).is_none() {
        assert_eq!(gpu.chunks_per_submit(), CHUNKS_PER_SUBMIT);
    }
    let mut sim = net.params.sim;
    sim.fuse_steps = gpu.fuse_steps();
    let steps = net.steps.min(600);
    let (mut done, mut batches, mut want_submits) = (0u64, 0u64, 0u64);
    while done < steps {
        let n = (steps - done).min(batch as u64) as u32;
        let end = (done + n as u64) as u32;
        let (mut t, mut chunks) = (done as u32, 0usize);
        while t < end {
            t += chunk_len(&sim, t, end);
            chunks += 1;
        }
        want_submits += chunks.div_ceil(gpu.chunks_per_submit()) as u64;
        gpu.run_batch(n).expect("batch");
        done += n as u64;
        batches += 1;
    }
    let h = gpu.host_times();
    assert_eq!(
        (h.batches, h.steps, h.submits),
        (batches, steps, want_submits)
    );
    assert!(
        want_submits > batches,
        "the test should split its batches: {h:?}"
    );
    assert!(
        h.exposed_ns > 0.0 && h.exposed_ns < h.record_ns && h.submit_ns > 0.0,
        "only the first submission's recording is exposed: {h:?}"
    );
}
