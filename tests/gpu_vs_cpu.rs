//! The WGSL kernels against their CPU twins on the same network: spike trains,
//! population sums and the final state must be identical bit for bit.

mod common;

use ketasim::backend::{Backend, BatchOutput};
use ketasim::cpu::CpuBackend;
use ketasim::gpu::GpuBackend;
use ketasim::model::{Network, NeuronState};
use ketasim::scenario::Scenario;

fn run_all(b: &mut dyn Backend, steps: u64, batch: u32) -> Vec<BatchOutput> {
    let mut outs = Vec::new();
    let mut done = 0;
    while done < steps {
        let n = (steps - done).min(batch as u64) as u32;
        outs.push(b.run_batch(n).expect("batch"));
        done += n as u64;
    }
    outs
}

/// Panics at the first differing (step, neuron) with both states.
fn compare_spikes(cpu: &[(u32, u32)], gpu: &[(u32, u32)], cs: &NeuronState, gs: &NeuronState) {
    let first = cpu.iter().zip(gpu).position(|(a, b)| a != b);
    if let Some(i) = first.or((cpu.len() != gpu.len()).then(|| cpu.len().min(gpu.len()))) {
        let (c, g) = (cpu.get(i), gpu.get(i));
        let n = c.or(g).map_or(0, |x| x.1) as usize;
        panic!(
            "spike trains differ at entry {i}: cpu {:?} vs gpu {:?} ((step, neuron)); {} vs {} spikes in all.\n\
             final state of neuron {n}: cpu v={} g_ampa={} g_gaba={} x={} s={} refrac={}; gpu v={} g_ampa={} g_gaba={} x={} s={} refrac={}",
            c, g, cpu.len(), gpu.len(),
            cs.v[n], cs.g_ampa[n], cs.g_gaba[n], cs.x_nmda[n], cs.s_nmda[n], cs.refrac[n],
            gs.v[n], gs.g_ampa[n], gs.g_gaba[n], gs.x_nmda[n], gs.s_nmda[n], gs.refrac[n],
        );
    }
}

fn check_identical(scenario: &Scenario, batch: u32, test: &str) {
    let Some(ctx) = common::gpu_or_skip(test) else {
        return;
    };
    let net = Network::build(scenario, batch).expect("network");
    let mut cpu = CpuBackend::new(&net).expect("cpu");
    let mut gpu = GpuBackend::new(ctx, &net).expect("gpu");
    let c = run_all(&mut cpu, net.steps, batch);
    let g = run_all(&mut gpu, net.steps, batch);
    let cs = cpu.state().expect("cpu state");
    let gs = gpu.state().expect("gpu state");
    let cspk: Vec<_> = c.iter().flat_map(|o| o.spikes.clone()).collect();
    let gspk: Vec<_> = g.iter().flat_map(|o| o.spikes.clone()).collect();
    assert!(
        cspk.len() > 50,
        "too few spikes ({}) for a meaningful comparison",
        cspk.len()
    );
    compare_spikes(&cspk, &gspk, &cs, &gs);
    for (a, b) in c.iter().zip(&g) {
        assert_eq!(
            a.pop_counts, b.pop_counts,
            "population counts differ in batch at step {}",
            a.first_step
        );
        assert_eq!(
            a.samples, b.samples,
            "population sums differ in batch at step {}",
            a.first_step
        );
        assert_eq!(a.spikes_dropped, b.spikes_dropped);
    }
    for (name, x, y) in [
        ("v", &cs.v, &gs.v),
        ("g_ampa", &cs.g_ampa, &gs.g_ampa),
        ("g_gaba", &cs.g_gaba, &gs.g_gaba),
        ("x_nmda", &cs.x_nmda, &gs.x_nmda),
        ("s_nmda", &cs.s_nmda, &gs.s_nmda),
    ] {
        if let Some(i) = x
            .iter()
            .zip(y.iter())
            .position(|(a, b)| a.to_bits() != b.to_bits())
        {
            panic!(
                "final {name} differs at neuron {i}: cpu {} gpu {}",
                x[i], y[i]
            );
        }
    }
    assert_eq!(cs.refrac, gs.refrac);
    assert_eq!(cs.isi, gs.isi);
}

#[test]
fn mixed_network_is_identical_on_gpu_and_cpu() {
    let s = Scenario::from_toml("mixed", common::MIXED).expect("scenario");
    // Uneven batches exercise the batch bookkeeping too.
    check_identical(&s, 73, "mixed_network_is_identical_on_gpu_and_cpu");
}

#[test]
fn coba_is_identical_on_gpu_and_cpu() {
    let mut s = Scenario::from_toml("coba", ketasim::bench::COBA).expect("coba");
    s.duration_ms = 100.0;
    s.record.spikes = vec!["E".into(), "I".into()];
    check_identical(&s, 500, "coba_is_identical_on_gpu_and_cpu");
}
