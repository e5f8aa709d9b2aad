//! Criterion benches of the CPU backend's hot paths: the counter-based RNG, the
//! Cephes logarithm, one COBA step (population update + propagation), a batch of
//! the 4000-neuron COBA network, and the population sums of a sample (with their
//! clip mask) over 65,536 neurons of the ketamine network's E population. `cargo bench` times them; `cargo test --benches`
//! runs each once as a smoke test.

use criterion::{criterion_group, criterion_main, Criterion};
use glam::UVec2;
use ketasim::backend::Backend;
use ketasim::cpu::{range_sums, CpuBackend};
use ketasim::model::Network;
use ketasim::rng::{key, ln_f32, threefry2x32, uniform_open0};
use ketasim::scenario::Scenario;
use std::hint::black_box;

fn rng(c: &mut Criterion) {
    let k = key(1, 2);
    c.bench_function("threefry2x32_20", |b| {
        let mut i = 0u32;
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(threefry2x32(UVec2::new(i, 7), k))
        })
    });
    c.bench_function("ln_f32", |b| {
        let mut i = 1u32;
        b.iter(|| {
            i = i.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            black_box(ln_f32(uniform_open0(i)))
        })
    });
}

fn coba(c: &mut Criterion) {
    let s = Scenario::from_toml("coba", ketasim::bench::COBA).expect("coba");
    let net = Network::build(&s, 100).expect("net");
    let mut cpu = CpuBackend::new(&net).expect("cpu");
    c.bench_function("coba_4000_step", |b| {
        b.iter(|| black_box(cpu.run_batch(1).expect("step")))
    });
    c.bench_function("coba_4000_100_steps", |b| {
        b.iter(|| black_box(cpu.run_batch(100).expect("batch")))
    });
}

/// Neurons in the sample-sum bench.
const SUM_NEURONS: usize = 65_536;

fn sample_sums(c: &mut Criterion) {
    let src = ketasim::scenario::Source::locate(Some("pfc_ketamine")).expect("embedded");
    let s = Scenario::load(&src, &[]).expect("pfc_ketamine");
    let net = Network::build(&s, 100).expect("net");
    let p = net
        .pops()
        .iter()
        .max_by_key(|p| p.n_pools)
        .expect("a population");
    // Values in the ranges a running network holds: V -70..-50 mV, conductances
    // 0..20 nS, NMDA fractions below 0.2.
    let u = |i: usize, k: u32| {
        let x = threefry2x32(UVec2::new(i as u32, k), key(3, 4)).x;
        uniform_open0(x)
    };
    let v: Vec<f32> = (0..SUM_NEURONS).map(|i| -70.0 + 20.0 * u(i, 0)).collect();
    let ga: Vec<f32> = (0..SUM_NEURONS).map(|i| 20.0 * u(i, 1)).collect();
    let gg: Vec<f32> = (0..SUM_NEURONS).map(|i| 20.0 * u(i, 2)).collect();
    let pool: Vec<[f32; 4]> = (0..SUM_NEURONS)
        .map(|i| [0.2 * u(i, 3), 0.1 * u(i, 4), 0.05 * u(i, 5), 0.0])
        .collect();
    c.bench_function("sample_sums_65536", |b| {
        b.iter(|| black_box(range_sums(p, &v, &ga, &gg, [&pool, &pool])))
    });
}

criterion_group!(benches, rng, coba, sample_sums);
criterion_main!(benches);
