//! The memory-bandwidth probe (`ketasim::stream`, `shaders/stream.wgsl`): the
//! kernel against its CPU twin on a buffer whose grid spills into a second row of
//! workgroups, and the measurements' shape on both backends (no speed is asserted).

mod common;

use ketasim::cpu::stream::{copy, Element};
use ketasim::gpu::stream::{copy_timed, max_buffer_bytes};
use ketasim::stream::{measure_cpu, measure_gpu};

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
