//! Criterion benches of the CPU backend's hot paths: the counter-based RNG, the
//! Cephes logarithm, one COBA step (population update + propagation) and a batch of
//! the 4000-neuron COBA network. `cargo bench` times them; `cargo test --benches`
//! runs each once as a smoke test.

use criterion::{criterion_group, criterion_main, Criterion};
use glam::UVec2;
use ketasim::backend::Backend;
use ketasim::cpu::CpuBackend;
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

criterion_group!(benches, rng, coba);
criterion_main!(benches);
