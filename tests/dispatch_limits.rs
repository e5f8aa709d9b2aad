//! The propagation's indirect dispatch without wgpu's check of its arguments (no GPU
//! needed): the instance is created without `VALIDATION_INDIRECT_CALL`, so the host
//! must size `SimParams::spike_groups` so that the neuron update's clamp of the
//! dispatch to `MAX_WG_DIM` x `MAX_WG_DIM` workgroups never cuts a chunk's spikes off
//! (`gpu::dispatch_bounded_spike_groups`; docs/performance.md, "The indirect dispatch
//! without wgpu's check").

use ketasim::gpu::{dispatch_bounded_spike_groups, instance_descriptor};
use ketasim::model::limits::{MAX_SPIKE_GROUPS, MAX_WORKGROUPS_PER_DIM};

/// Workgroups a dispatch can hold once the shader clamps x and y to `MAX_WG_DIM`.
const MOST: u64 = MAX_WORKGROUPS_PER_DIM as u64 * MAX_WORKGROUPS_PER_DIM as u64;

/// A chunk in which every neuron fired needs n x g workgroups; the bound gives the
/// most g (up to the one asked for) for which that fits, never fewer than it could.
#[test]
fn spike_groups_fit_a_chunk_in_which_every_neuron_fires() {
    let dim = MAX_WORKGROUPS_PER_DIM;
    // Every size the simulator meets in practice keeps what the network asked for:
    // the microcircuit's 61 at 10^7 neurons, the most at 6.7e7.
    for (n, g) in [
        (1u32, 1u32),
        (77_169, 61),
        (10_000_000, 61),
        (67_000_000, 64),
    ] {
        assert_eq!(
            dispatch_bounded_spike_groups(g, n, dim).unwrap(),
            g,
            "n {n}"
        );
    }
    for n in [
        67_108_864u32, // 2^26: 64 groups would need 4,294,967,296 workgroups
        100_000_000,
        1_000_000_000,
        (MOST / 2) as u32,
        MOST as u32,
    ] {
        let g = dispatch_bounded_spike_groups(MAX_SPIKE_GROUPS, n, dim).unwrap();
        assert!((1..MAX_SPIKE_GROUPS).contains(&g), "n {n}: {g}");
        assert!(
            u64::from(n) * u64::from(g) <= MOST,
            "n {n}: {g} does not fit"
        );
        assert!(
            u64::from(n) * u64::from(g + 1) > MOST,
            "n {n}: {g} is fewer than fit"
        );
    }
    // A larger device limit does not raise the bound: the shader clamps to MAX_WG_DIM.
    assert_eq!(
        dispatch_bounded_spike_groups(64, 100_000_000, u32::MAX).unwrap(),
        dispatch_bounded_spike_groups(64, 100_000_000, dim).unwrap()
    );
}

/// Beyond what one workgroup per spike can cover, and on a device below WebGPU's
/// minimum, the answer is an error that says why, not a dispatch that drops spikes.
#[test]
fn impossible_dispatches_are_errors() {
    let e = dispatch_bounded_spike_groups(1, MOST as u32 + 1, MAX_WORKGROUPS_PER_DIM)
        .unwrap_err()
        .to_string();
    assert!(e.contains("neurons per device"), "{e}");
    let e = dispatch_bounded_spike_groups(1, 1000, 1024)
        .unwrap_err()
        .to_string();
    assert!(e.contains("65535") && e.contains("1024"), "{e}");
}

/// wgpu's check of indirect dispatches is off unless its own variable asks for it.
#[test]
fn instances_are_created_without_wgpus_indirect_dispatch_check() {
    let flags = instance_descriptor().flags;
    let on = flags.contains(wgpu::InstanceFlags::VALIDATION_INDIRECT_CALL);
    match std::env::var("WGPU_VALIDATION_INDIRECT_CALL") {
        Ok(v) => assert_eq!(on, v != "0", "WGPU_VALIDATION_INDIRECT_CALL={v}"),
        Err(_) => assert!(!on, "{flags:?}"),
    }
}
