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
    for (name, text) in [("mixed", common::MIXED), ("coba", ketasim::bench::COBA)] {
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
