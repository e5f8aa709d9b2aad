//! The CPU backend's compact connectivity cache (`cpu::cache`) holds exactly the
//! synapses the shader regenerates at every spike: a network run with every
//! procedural projection cached, with some cached, and with none gives the same
//! spikes, samples and state, bit for bit, on one thread and on two.

mod common;

use ketasim::backend::{Backend, BatchOutput};
use ketasim::cpu::{CpuBackend, ParallelThresholds};
use ketasim::model::{Network, NeuronState};
use ketasim::scenario::Scenario;

/// Budget large enough for every projection of the test networks (bytes).
const ALL_BYTES: usize = 1 << 30;
/// Steps per batch (not a divisor of the run, so the last batch is short).
const BATCH_STEPS: u32 = 97;

fn run(b: &mut CpuBackend, steps: u64) -> (Vec<BatchOutput>, NeuronState) {
    let mut outs = Vec::new();
    let mut done = 0u64;
    while done < steps {
        let n = (steps - done).min(BATCH_STEPS as u64) as u32;
        outs.push(b.run_batch(n).expect("batch"));
        done += n as u64;
    }
    (outs, b.state().expect("state"))
}

fn assert_same(
    name: &str,
    what: &str,
    a: &(Vec<BatchOutput>, NeuronState),
    b: &(Vec<BatchOutput>, NeuronState),
) {
    assert_eq!(a.0.len(), b.0.len(), "{name} {what}: batch counts differ");
    for (x, y) in a.0.iter().zip(&b.0) {
        if let Some(i) = x.spikes.iter().zip(&y.spikes).position(|(p, q)| p != q) {
            panic!(
                "{name} {what}: spike {i} of the batch at step {} differs: {:?} vs {:?}",
                x.first_step, x.spikes[i], y.spikes[i]
            );
        }
        assert_eq!(
            x, y,
            "{name} {what}: batch at step {} differs",
            x.first_step
        );
    }
    assert_eq!(a.1, b.1, "{name} {what}: final state differs");
}

#[test]
fn cached_synapses_are_the_regenerated_ones() {
    let forced = ParallelThresholds {
        update_min_cost: 0.0,
        block_cost: 0.0,
        propagate_min_cost: 0.0,
    };
    let mc = common::microcircuit_small(3000);
    for (name, text) in [("microcircuit", mc.as_str()), ("mixed", common::MIXED)] {
        let mut s = Scenario::from_toml(name, text).expect("scenario");
        s.duration_ms = 40.0;
        s.record.spikes = s.populations.iter().map(|p| p.name.clone()).collect();
        let net = Network::build(&s, BATCH_STEPS).expect("net");
        let mut none = CpuBackend::with_cache_bytes(&net, 1, 0).expect("uncached");
        assert_eq!(
            none.cache_bytes(),
            0,
            "{name}: a budget of 0 cached something"
        );
        let regenerated = run(&mut none, net.steps);
        let spikes: usize = regenerated.0.iter().map(|o| o.spikes.len()).sum();
        assert!(spikes > 100, "{name}: only {spikes} spikes");

        let mut all = CpuBackend::with_cache_bytes(&net, 1, ALL_BYTES).expect("cached");
        let all_bytes = all.cache_bytes();
        assert!(all_bytes > 0, "{name}: nothing cached");
        assert_same(
            name,
            "all cached vs none",
            &regenerated,
            &run(&mut all, net.steps),
        );

        // About half the budget: the first projections cached, the rest regenerated.
        // The network's own tables come out of the budget first (4 bytes per row
        // pointer and column; these networks draw no weights for them).
        let own_tables = 4 * (net.tables.rows.len() + net.tables.cols.len());
        let half = own_tables + all_bytes / 2;
        let mut part = CpuBackend::with_cache_bytes(&net, 1, half).expect("part");
        assert!(
            part.cache_bytes() > 0 && part.cache_bytes() < all_bytes,
            "{name}: half the budget cached {} of {all_bytes} bytes",
            part.cache_bytes()
        );
        assert_same(
            name,
            "half cached vs none",
            &regenerated,
            &run(&mut part, net.steps),
        );

        // Two threads, every step split: the atomic delivery from the tables.
        let mut two = CpuBackend::with_cache_bytes(&net, 2, ALL_BYTES)
            .expect("two threads")
            .with_parallel_thresholds(forced);
        assert_same(
            name,
            "all cached on 2 threads vs none",
            &regenerated,
            &run(&mut two, net.steps),
        );
    }
}

/// The microcircuit's synapses take one 4-byte word each, and a few skip words.
#[test]
fn microcircuit_cache_takes_four_bytes_per_synapse() {
    let s =
        Scenario::from_toml("microcircuit", &common::microcircuit_small(3000)).expect("scenario");
    let net = Network::build(&s, BATCH_STEPS).expect("net");
    let synapses: f64 = net.projections.iter().map(|p| p.synapses).sum();
    let b = CpuBackend::with_cache_bytes(&net, 1, ALL_BYTES).expect("cached");
    let per_synapse = b.cache_bytes() as f64 / synapses;
    assert!(
        (4.0..4.1).contains(&per_synapse),
        "{per_synapse} bytes per synapse ({} bytes, {synapses} synapses)",
        b.cache_bytes()
    );
}
