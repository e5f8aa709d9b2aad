//! The memory-bandwidth probe (`ketasim::stream`, `shaders/stream.wgsl`): the
//! kernel against its CPU twin on a buffer whose grid spills into a second row of
//! workgroups, and the measurements' shape on both backends; the dispatch probe
//! (`shaders/chain.wgsl`): every dispatch counted, direct and indirect (no speed is
//! asserted).

mod common;

use ketasim::cpu::stream::{copy, Element};
use ketasim::gpu::stream::{copy_timed, dispatch_chain_timed, max_buffer_bytes, MAX_CHAIN_PASSES};
use ketasim::stream::{measure_cpu, measure_dispatch, measure_gpu};

/// Distinct words per element (the same as no neighbour's).
fn source(n: usize) -> Vec<Element> {
    (0..n as u32)
        .map(|i| [i, i ^ 0xdead_beef, i.wrapping_mul(2_654_435_761), !i])
        .collect()
}

/// 65,535 x 64 + 37 elements need a second row of workgroups (64 per workgroup): the
/// shader's copy must equal the twin's everywhere, in both rows and at the ragged
/// end, and two timed passes must give two times.
#[test]
fn stream_kernel_copies_as_its_twin_does() {
    let Some(ctx) = common::gpu_or_skip("stream_kernel_copies_as_its_twin_does") else {
        return;
    };
    let n = 65_535 * 64 + 37;
    let src = source(n);
    let mut want = vec![[0u32; 4]; n];
    copy(&src, &mut want);
    assert_eq!(want, src);
    let t = copy_timed(&ctx, &src, 2).expect("copy");
    assert_eq!(t.dst.len(), n);
    if let Some(i) = (0..n).find(|&i| t.dst[i] != want[i]) {
        panic!("element {i}: gpu {:?} cpu {:?}", t.dst[i], want[i]);
    }
    assert_eq!(t.pass_s.len(), 2);
    assert!(t.pass_s.iter().all(|s| s.is_finite() && *s >= 0.0));
}

#[test]
fn probe_reports_what_it_measured() {
    let r = measure_cpu(1 << 20 | 5, 3).expect("cpu probe");
    assert_eq!(r.backend, "cpu");
    // Rounded down to 16-byte elements.
    assert_eq!(r.buffer_bytes, 1 << 20);
    assert_eq!(r.passes, 3);
    assert!(r.best_gb_per_s.is_finite() && r.best_gb_per_s > 0.0);
    assert!(r.median_gb_per_s > 0.0 && r.median_gb_per_s <= r.best_gb_per_s);
    assert!(measure_cpu(8, 3).is_err(), "no whole element");
    assert!(measure_cpu(1024, 0).is_err(), "no pass");
    let Some(ctx) = common::gpu_or_skip("probe_reports_what_it_measured (gpu)") else {
        return;
    };
    let r = measure_gpu(&ctx, 1 << 20, 2).expect("gpu probe");
    assert_eq!(r.backend, "gpu");
    assert_eq!(r.buffer_bytes, 1 << 20);
    assert_eq!(
        r.timing,
        if ctx.timestamps {
            "gpu timestamps"
        } else {
            "wall clock with submission"
        }
    );
    assert!(r.median_gb_per_s > 0.0 && r.median_gb_per_s <= r.best_gb_per_s);
    // A request beyond the device's binding is capped at it.
    let limit = max_buffer_bytes(&ctx);
    assert!(copy_timed(&ctx, &vec![[0u32; 4]; (limit / 16 + 1) as usize], 1).is_err());
}

/// The chain kernel advances its counter once per dispatch, direct and indirect, so
/// that the probe's count is the number of dispatches (its twin); the measurement
/// reports per-dispatch times of both kinds; bad sizes are errors.
#[test]
fn dispatch_probe_counts_every_dispatch() {
    if common::gpu_or_skip("dispatch_probe_counts_every_dispatch").is_none() {
        return;
    }
    // GPU timestamps where the adapter has them (lavapipe does).
    let mut ctx = ketasim::gpu::GpuContext::with_timestamps().expect("context");
    let t = dispatch_chain_timed(&ctx, 40, 3).expect("chain");
    // One untimed pass and three timed of each kind, 40 dispatches each.
    assert_eq!(t.expected, 2 * 4 * 40);
    assert_eq!(u64::from(t.count), t.expected);
    assert_eq!((t.direct_s.len(), t.indirect_s.len()), (3, 3));
    assert!(t
        .direct_s
        .iter()
        .chain(&t.indirect_s)
        .all(|s| s.is_finite() && *s >= 0.0));
    let r = measure_dispatch(&ctx, 40, 3).expect("probe");
    assert_eq!((r.backend.as_str(), r.dispatches, r.passes), ("gpu", 40, 3));
    let timing = if ctx.timestamps {
        "gpu timestamps"
    } else {
        "wall clock with submission"
    };
    assert_eq!(r.timing, timing);
    assert!(
        r.direct_us > 0.0 && r.direct_best_us <= r.direct_us,
        "{r:?}"
    );
    assert!(
        r.indirect_us > 0.0 && r.indirect_best_us <= r.indirect_us,
        "{r:?}"
    );
    assert!(dispatch_chain_timed(&ctx, 0, 3).is_err(), "no dispatch");
    assert!(dispatch_chain_timed(&ctx, 10, 0).is_err(), "no pass");
    assert!(dispatch_chain_timed(&ctx, 10, MAX_CHAIN_PASSES + 1).is_err());
    // Without timestamp queries, by the wall clock.
    ctx.timestamps = false;
    let r = measure_dispatch(&ctx, 10, 2).expect("probe by wall clock");
    assert_eq!(r.timing, "wall clock with submission");
}
