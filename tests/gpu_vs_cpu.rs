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
             final state of neuron {n}: cpu v={} g_ampa={} g_gaba={} x={} pool0={:?} refrac={}; gpu v={} g_ampa={} g_gaba={} x={} pool0={:?} refrac={}",
            c, g, cpu.len(), gpu.len(),
            cs.v[n], cs.g_ampa[n], cs.g_gaba[n], cs.x_nmda[n], cs.pools[0][n], cs.refrac[n],
            gs.v[n], gs.g_ampa[n], gs.g_gaba[n], gs.x_nmda[n], gs.pools[0][n], gs.refrac[n],
        );
    }
}

/// How closely the backends must agree. Spikes always identically (short runs);
/// `Exact`: every sum and state bit too, wherever the kernels run without float
/// contraction (`GpuContext::strict_float`: every Vulkan adapter with SPIR-V
/// passthrough, `src/gpu/strict.rs`); `Close`: continuous state within a few ulp-scale
/// tolerances, on the plain WGSL path, where a GPU compiler may fuse multiply-adds
/// (NVIDIA's does: the COBA sums differed by 1-10 fixed-point units on an H200).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Agreement {
    Exact,
    Close,
}

fn close(a: f32, b: f32, rel: f32, abs: f32) -> bool {
    (a - b).abs() <= abs + rel * a.abs().max(b.abs())
}

/// Which kernel translation the GPU runs.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    /// What the context chose: strict SPIR-V where the adapter allows it.
    Default,
    /// WGSL compiled by wgpu (`KETASIM_GPU_CONTRACT=1`), contraction allowed.
    Wgsl,
    /// What the context chose, with this many threads per workgroup in the
    /// per-neuron kernels (`GpuContext::workgroup_size`).
    Workgroup(u32),
    /// What the context chose, with every code path compiled in
    /// (`GpuContext::all_paths`), not only the network's.
    AllPaths,
    /// What the context chose, with the neuron update holding its population's
    /// parameters across fused steps (`GpuContext::hold_params`) instead of reading
    /// them in every step, as the other paths do.
    HoldParams,
}

fn check_identical(scenario: &Scenario, batch: u32, test: &str) {
    check(scenario, batch, test, Path::Default)
}

fn check(scenario: &Scenario, batch: u32, test: &str, path: Path) {
    let Some(mut ctx) = common::gpu_or_skip(test) else {
        return;
    };
    // Spikes spread over several workgroups, as on a GPU, also on a CPU adapter.
    ctx.split_spikes = true;
    match path {
        Path::Default => {}
        Path::Wgsl => ctx.strict_float = false,
        Path::Workgroup(n) => ctx.workgroup_size = n,
        Path::AllPaths => ctx.all_paths = true,
        Path::HoldParams => ctx.hold_params = true,
    }
    let agreement = if ctx.strict_float {
        Agreement::Exact
    } else {
        Agreement::Close
    };
    eprintln!(
        "{test}: {}, strict float {}, expecting {agreement:?}",
        ctx.describe(),
        ctx.strict_float
    );
    let net = Network::build(scenario, batch).expect("network");
    let mut cpu = CpuBackend::new(&net).expect("cpu");
    let mut gpu = GpuBackend::new(ctx, &net).expect("gpu");
    if let Path::Workgroup(n) = path {
        // KETASIM_WG_SIZE, where set, takes precedence by design.
        if std::env::var_os("KETASIM_WG_SIZE").is_none() {
            assert_eq!(
                gpu.workgroup_size(),
                n,
                "the workgroup size was not applied"
            );
        }
    }
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
        if agreement == Agreement::Exact {
            assert_eq!(
                a.samples, b.samples,
                "population sums differ in batch at step {}",
                a.first_step
            );
        } else {
            // Release: rounded once per spike from p R, R from exp_f32: a few LSB per
            // spike at most.
            for (x, y) in a.release_fixed.iter().zip(&b.release_fixed) {
                assert!(
                    x.abs_diff(*y) <= 64,
                    "glutamate release (fixed point) cpu {x} gpu {y}"
                );
            }
            for (x, y) in a.glutamate_um.iter().zip(&b.glutamate_um) {
                assert!(close(*x, *y, 1e-5, 1e-7), "glutamate cpu {x} gpu {y} µM");
            }
            for (sa, sb) in a.samples.iter().zip(&b.samples) {
                for (p, (x, y)) in sa.sums.iter().zip(&sb.sums).enumerate() {
                    let size = net.pops()[p].size as i64;
                    for k in 0..x.len() {
                        // One LSB per neuron, or 1e-5 relative.
                        let tol = size + (x[k].abs() as f64 * 1e-5) as i64;
                        assert!(
                            (x[k] - y[k]).abs() <= tol,
                            "sum {k} of population {p} at step {}: cpu {} gpu {}",
                            sa.step,
                            x[k],
                            y[k]
                        );
                    }
                }
            }
        }
        assert_eq!(a.spikes_dropped, b.spikes_dropped);
        // Values past the samples' fixed-point limit are flagged alike (the scaled
        // microcircuit with fused steps passes it in I_AMPA and I_GABA at times).
        let clips = |o: &BatchOutput| {
            o.samples
                .iter()
                .map(|s| s.clipped.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            clips(a),
            clips(b),
            "clip masks in batch at step {}",
            a.first_step
        );
        // The networks compared here are sound: no unstable membrane step anywhere.
        assert!(
            a.unstable
                .iter()
                .chain(&b.unstable)
                .all(|u| u.first_step.is_none()),
            "unstable steps in batch at step {}: cpu {:?} gpu {:?}",
            a.first_step,
            a.unstable,
            b.unstable
        );
    }
    for (name, x, y, rel, abs) in [
        ("v", &cs.v, &gs.v, 0.0, 1e-3),
        ("g_ampa", &cs.g_ampa, &gs.g_ampa, 1e-5, 1e-6),
        ("g_gaba", &cs.g_gaba, &gs.g_gaba, 1e-5, 1e-6),
        ("x_nmda", &cs.x_nmda, &gs.x_nmda, 1e-5, 1e-7),
    ] {
        for (i, (a, b)) in x.iter().zip(y.iter()).enumerate() {
            let ok = match agreement {
                Agreement::Exact => a.to_bits() == b.to_bits(),
                Agreement::Close => close(*a, *b, rel, abs),
            };
            assert!(ok, "final {name} differs at neuron {i}: cpu {a} gpu {b}");
        }
    }
    for k in 0..2 {
        for (i, (a, b)) in cs.pools[k].iter().zip(&gs.pools[k]).enumerate() {
            let ok = match agreement {
                Agreement::Exact => a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                Agreement::Close => a.iter().zip(b).all(|(x, y)| close(*x, *y, 0.0, 1e-5)),
            };
            assert!(
                ok,
                "final NMDA pool {k} differs at neuron {i}: cpu {a:?} gpu {b:?}"
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

/// The mixed network with one NMDA pool in every population: the kernels are then
/// compiled without the second pool's code (`NMDA_POOLS` = 1), the one count of
/// pools that the other networks here do not have.
fn mixed_with_one_pool() -> Scenario {
    let two = r#"pools = [{ subunit = "2A", fraction = 0.4 }, { subunit = "2B", fraction = 0.6 }]"#;
    assert!(common::MIXED.contains(two), "common::MIXED changed");
    let text = common::MIXED.replace(two, r#"subunit = "2B""#);
    Scenario::from_toml("mixed-one-pool", &text).expect("scenario")
}

#[test]
fn mixed_network_with_one_pool_per_population_is_identical_on_gpu_and_cpu() {
    check_identical(
        &mixed_with_one_pool(),
        73,
        "mixed_network_with_one_pool_per_population_is_identical_on_gpu_and_cpu",
    );
}

/// The mixed circuit with two unlike pools in I too (GluN2B and 2D: different Mg2+
/// and ketamine constants), driven through NMDA receptors, beside E's 2A and 2B,
/// which share [Mg]/K0 and so one Mg2+ block (shaders/neuron_update.wgsl computes it
/// once for both).
fn mixed_with_unlike_pools() -> Scenario {
    let one = "subunit = \"2D\"\ng_max_nS = 4.0";
    let record = "[record]";
    assert!(
        common::MIXED.contains(one) && common::MIXED.contains(record),
        "common::MIXED changed"
    );
    let text = common::MIXED
        .replace(
            one,
            "pools = [{ subunit = \"2B\", fraction = 0.2 }, { subunit = \"2D\", fraction = 0.8 }]\ng_max_nS = 4.0",
        )
        .replace(
            record,
            "[[drives]]\npopulation = \"I\"\nrate_hz = 300.0\nreceptor = \"nmda\"\ndrive = 0.02\n\n[record]",
        );
    Scenario::from_toml("mixed-unlike-pools", &text).expect("scenario")
}

#[test]
fn mixed_network_with_unlike_pools_is_identical_on_gpu_and_cpu() {
    check_identical(
        &mixed_with_unlike_pools(),
        73,
        "mixed_network_with_unlike_pools_is_identical_on_gpu_and_cpu",
    );
}

#[test]
fn coba_is_identical_on_gpu_and_cpu() {
    let mut s = Scenario::from_toml("coba", ketasim::bench::COBA).expect("coba");
    s.duration_ms = 100.0;
    s.record.spikes = vec!["E".into(), "I".into()];
    check_identical(&s, 500, "coba_is_identical_on_gpu_and_cpu");
}

/// The kernels as written, with every code path (`KETASIM_GPU_ALL_PATHS=1`), as
/// before they were compiled per network: still the CPU's bit for bit.
#[test]
fn coba_with_every_code_path_is_identical_on_gpu_and_cpu() {
    let mut s = Scenario::from_toml("coba", ketasim::bench::COBA).expect("coba");
    s.duration_ms = 100.0;
    s.record.spikes = vec!["E".into(), "I".into()];
    check(
        &s,
        500,
        "coba_with_every_code_path_is_identical_on_gpu_and_cpu",
        Path::AllPaths,
    );
}

/// The kernels are compiled with only the code paths a network can take
/// (`shaders::Features`). The networks compared here take each path and leave each
/// out, so a path that were left out wrongly, or kept but taken wrongly, shows as a
/// difference from the CPU twin in one of these tests.
#[test]
fn the_networks_compared_here_take_and_leave_out_every_code_path() {
    use ketasim::gpu::shaders::Features;
    let mut mc = Scenario::from_toml("microcircuit", &common::microcircuit_small(800))
        .expect("microcircuit");
    mc.duration_ms = 60.0;
    let coba = Scenario::from_toml("coba", ketasim::bench::COBA).expect("coba");
    let mixed = Scenario::from_toml("mixed", common::MIXED).expect("mixed");
    let features: Vec<Features> = [mixed, mixed_with_one_pool(), coba, mc]
        .iter()
        .map(|s| Features::of(&Network::build(s, 250).expect("network").params))
        .collect();
    type Takes = fn(&Features) -> bool;
    let paths: [(&str, Takes); 15] = [
        ("conductance", |f| f.conductance),
        ("current", |f| f.current),
        ("no NMDA pool", |f| f.nmda_pools == 0),
        ("at most one NMDA pool", |f| f.nmda_pools == 1),
        ("two NMDA pools", |f| f.nmda_pools == 2),
        ("drives", |f| f.drives),
        ("NMDA input", |f| f.nmda_input),
        ("glutamate", |f| f.glutamate),
        ("record", |f| f.record),
        ("probability rule", |f| f.rules[0]),
        ("out-degree rule", |f| f.rules[1]),
        ("table rule", |f| f.rules[2]),
        ("total-number rule", |f| f.rules[3]),
        ("drawn synapses", |f| f.drawn_synapses),
        ("signalling", |f| f.signalling),
    ];
    for (name, on) in paths {
        // Slow signalling has its own GPU-vs-CPU tests (tests/signalling.rs).
        if name != "signalling" {
            assert!(
                features.iter().any(on),
                "no network takes {name}: {features:?}"
            );
        }
        assert!(
            features.iter().any(|f| !on(f)),
            "every network takes {name}: {features:?}"
        );
    }
}

/// Current-based synapses with per-synapse normal weights and delays (the
/// microcircuit, scaled down): identical spikes and per-synapse draws (the drawn
/// integer weights and delays decide every arrival), and identical state. On the
/// WGSL path the exact-integration step `I P11 + arrivals` and the propagator sum are
/// multiply-adds a GPU compiler may fuse (lavapipe did, by an ulp; on an H200 a
/// population sum then drifted past the `Close` tolerance by step 439).
#[test]
fn microcircuit_agrees_on_gpu_and_cpu() {
    let text = common::microcircuit_small(800);
    let mut s = Scenario::from_toml("microcircuit", &text).expect("scenario");
    s.duration_ms = 60.0;
    s.record.spikes = s.populations.iter().map(|p| p.name.clone()).collect();
    // Each spike's synapses are spread over several workgroups
    // (SimParams::spike_groups), as at full scale.
    let groups = Network::build(&s, 250)
        .expect("network")
        .params
        .sim
        .spike_groups;
    eprintln!("spike_groups {groups}");
    assert!(groups > 1, "spike_groups {groups}");
    check_identical(&s, 250, "microcircuit_agrees_on_gpu_and_cpu");
}

/// The plain WGSL path, which wgpu compiles and a driver may contract
/// (`KETASIM_GPU_CONTRACT=1`), still runs the whole network (NMDA pools, glutamate,
/// tables, every connection rule) and agrees within the `Close` tolerances; bit for
/// bit where the context has no strict float either.
#[test]
fn mixed_network_on_the_wgsl_path_agrees_on_gpu_and_cpu() {
    let s = Scenario::from_toml("mixed", common::MIXED).expect("scenario");
    check(
        &s,
        73,
        "mixed_network_on_the_wgsl_path_agrees_on_gpu_and_cpu",
        Path::Wgsl,
    );
}

/// The per-neuron kernels' workgroup size changes no result: the mixed circuit (every
/// rule, NMDA pools, glutamate, uneven 73-step batches) with 256 threads per
/// workgroup instead of 64 is bit for bit the CPU's, as with 64.
#[test]
fn mixed_network_with_256_thread_workgroups_is_identical_on_gpu_and_cpu() {
    let s = Scenario::from_toml("mixed", common::MIXED).expect("scenario");
    check(
        &s,
        73,
        "mixed_network_with_256_thread_workgroups_is_identical_on_gpu_and_cpu",
        Path::Workgroup(256),
    );
}

/// The same for the microcircuit, whose L6E population sits at the statistics
/// clamp: with 128 threads per workgroup the population sums' 32-bit workgroup
/// accumulator wrapped by 2^32, until the sum kernel kept its own 64
/// (`REDUCE_WORKGROUP_SIZE`).
#[test]
fn microcircuit_with_256_thread_workgroups_is_identical_on_gpu_and_cpu() {
    let text = common::microcircuit_small(800);
    let mut s = Scenario::from_toml("microcircuit", &text).expect("scenario");
    s.duration_ms = 60.0;
    s.record.spikes = s.populations.iter().map(|p| p.name.clone()).collect();
    check(
        &s,
        250,
        "microcircuit_with_256_thread_workgroups_is_identical_on_gpu_and_cpu",
        Path::Workgroup(256),
    );
}

/// Set every projection's delay to at least `min_ms` (and fixed: no drawn delays), so
/// that the GPU fuses several steps per neuron-update dispatch.
fn with_min_delay(mut s: Scenario, min_ms: f64) -> Scenario {
    for p in &mut s.projections {
        p.delay_ms = p.delay_ms.max(min_ms);
        p.delay_sd_ms = None;
    }
    s
}

fn fused(s: &Scenario, batch: u32) -> u32 {
    Network::build(s, batch)
        .expect("network")
        .params
        .sim
        .fuse_steps
}

/// Several steps per dispatch (COBA with 0.5 ms delays: chunks of 5 steps, cut at
/// the 1 ms sample steps and at the uneven 137-step batch ends): bit for bit the CPU
/// twin, which steps one at a time.
#[test]
fn coba_with_fused_steps_is_identical_on_gpu_and_cpu() {
    let mut s = Scenario::from_toml("coba", ketasim::bench::COBA).expect("coba");
    s.duration_ms = 100.0;
    s.record.spikes = vec!["E".into(), "I".into()];
    let s = with_min_delay(s, 0.5);
    assert_eq!(fused(&s, 137), 5);
    check_identical(&s, 137, "coba_with_fused_steps_is_identical_on_gpu_and_cpu");
}

/// Several steps per dispatch with NMDA pools, glutamate, tables and every rule
/// (mixed circuit, delays of at least 0.4 ms: chunks of 4, the I cells' 1 ms
/// refractory period allows up to 11).
#[test]
fn mixed_network_with_fused_steps_agrees_on_gpu_and_cpu() {
    let s = Scenario::from_toml("mixed", common::MIXED).expect("scenario");
    let s = with_min_delay(s, 0.4);
    assert_eq!(fused(&s, 73), 4);
    check_identical(
        &s,
        73,
        "mixed_network_with_fused_steps_agrees_on_gpu_and_cpu",
    );
}

/// The same with the population parameters held across the fused steps
/// (`KETASIM_GPU_HOLD_PARAMS=1`) instead of read in every step.
#[test]
fn mixed_network_with_fused_steps_and_held_parameters_is_identical_on_gpu_and_cpu() {
    let s = with_min_delay(
        Scenario::from_toml("mixed", common::MIXED).expect("scenario"),
        0.4,
    );
    check(
        &s,
        73,
        "mixed_network_with_fused_steps_and_held_parameters_is_identical_on_gpu_and_cpu",
        Path::HoldParams,
    );
}

/// Several steps per dispatch for current-based populations (the microcircuit with
/// fixed delays of at least 1.5 ms, normal weights kept: fusion of up to 15 steps,
/// chunks cut at the sample steps).
#[test]
fn microcircuit_with_fused_steps_agrees_on_gpu_and_cpu() {
    let text = common::microcircuit_small(800);
    let mut s = Scenario::from_toml("microcircuit", &text).expect("scenario");
    s.duration_ms = 60.0;
    s.record.spikes = s.populations.iter().map(|p| p.name.clone()).collect();
    let s = with_min_delay(s, 1.5);
    assert_eq!(fused(&s, 250), 15);
    check_identical(
        &s,
        250,
        "microcircuit_with_fused_steps_agrees_on_gpu_and_cpu",
    );
}

/// Fusing steps changes no result on the GPU either: the mixed circuit with 0.4 ms
/// delays gives the same spikes, sums and state bit for bit with chunks of 4 steps
/// and with one step per dispatch.
#[test]
fn fused_and_single_steps_are_identical_on_the_gpu() {
    let Some(ctx) = common::gpu_or_skip("fused_and_single_steps_are_identical_on_the_gpu") else {
        return;
    };
    let s = with_min_delay(
        Scenario::from_toml("mixed", common::MIXED).expect("scenario"),
        0.4,
    );
    let net = Network::build(&s, 73).expect("network");
    let ctx2 = common::gpu_or_skip("fused_and_single_steps_are_identical_on_the_gpu")
        .expect("a second context");
    let mut fused = GpuBackend::new(ctx, &net).expect("gpu");
    let mut single = GpuBackend::new(ctx2, &net).expect("gpu");
    single.limit_fuse_steps(1);
    assert_eq!((fused.fuse_steps(), single.fuse_steps()), (4, 1));
    let a = run_all(&mut fused, net.steps, 73);
    let b = run_all(&mut single, net.steps, 73);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x.spikes, y.spikes,
            "spikes of the batch at step {}",
            x.first_step
        );
        assert_eq!(x.pop_counts, y.pop_counts);
        assert_eq!(x.samples, y.samples);
        assert_eq!(x.release_fixed, y.release_fixed);
        assert_eq!(x.glutamate_um, y.glutamate_um);
    }
    assert!(a.iter().map(|o| o.spikes.len()).sum::<usize>() > 50);
    let (fs, ss) = (
        fused.state().expect("state"),
        single.state().expect("state"),
    );
    assert_eq!(fs.v, ss.v);
    assert_eq!(fs.g_ampa, ss.g_ampa);
    assert_eq!(fs.pools, ss.pools);
    assert_eq!(fs.isi, ss.isi);
}

/// A long run (3000 steps) with a concentration that ramps up and down across
/// batches (0 -> 30 µM -> 0): receptor states agree within 1e-3 (absolute, fractions)
/// and population spike counts per 25 ms batch within 5% + 3 spikes, although
/// single spikes may differ after many steps (the dynamics amplify ulp-level
/// differences of fused multiply-adds).
#[test]
fn ketamine_ramp_agrees_on_gpu_and_cpu() {
    let Some(ctx) = common::gpu_or_skip("ketamine_ramp_agrees_on_gpu_and_cpu") else {
        return;
    };
    // Without float contraction the two are bit for bit the same; on the WGSL path
    // the tolerances below apply.
    let exact = ctx.strict_float;
    let mut s = Scenario::from_toml("mixed", common::MIXED).expect("scenario");
    s.duration_ms = 300.0;
    let batch = 250u32;
    let net = Network::build(&s, batch).expect("network");
    let mut cpu = CpuBackend::new(&net).expect("cpu");
    let mut gpu = GpuBackend::new(ctx, &net).expect("gpu");
    let mut step = 0u32;
    let mut max_blocked = 0.0f32;
    let mut worst = 0.0f32;
    while (step as u64) < net.steps {
        // Up 0.02 µM per step for 1500 steps, then down.
        let up = step < 1500;
        let drug = ketasim::model::layout::DrugParams {
            conc0_um: if up {
                0.02 * step as f32
            } else {
                30.0 - 0.02 * (step - 1500) as f32
            },
            slope_um_per_step: if up { 0.02 } else { -0.02 },
            step0: step,
            ampa_block: 0.0,
        };
        cpu.set_drug(drug).expect("cpu drug");
        gpu.set_drug(drug).expect("gpu drug");
        let a = cpu.run_batch(batch).expect("cpu");
        let b = gpu.run_batch(batch).expect("gpu");
        let n_pop = net.pops().len();
        for p in 0..n_pop {
            let ca: u32 = a.pop_counts.iter().skip(p).step_by(n_pop).sum();
            let cb: u32 = b.pop_counts.iter().skip(p).step_by(n_pop).sum();
            let tol = if exact { 0.0 } else { 3.0 + 0.05 * ca as f64 };
            assert!(
                (ca as f64 - cb as f64).abs() <= tol,
                "population {p}, batch at step {step}: cpu {ca} gpu {cb} spikes"
            );
        }
        step += batch;
        let (cs, gs) = (cpu.state().expect("state"), gpu.state().expect("state"));
        for k in 0..2 {
            for (x, y) in cs.pools[k].iter().zip(&gs.pools[k]) {
                for j in 0..3 {
                    worst = worst.max((x[j] - y[j]).abs());
                }
            }
        }
        max_blocked = max_blocked.max(cs.pools[0].iter().map(|p| p[1] + p[2]).fold(0.0, f32::max));
    }
    assert!(
        max_blocked > 0.1,
        "the ramp must block receptors (max blocked {max_blocked})"
    );
    let tol = if exact { 0.0 } else { 1e-3 };
    assert!(worst <= tol, "receptor fractions differ by up to {worst}");
    eprintln!("largest receptor-state difference over the run: {worst:e}");
}

/// More spikes in one chunk than one row of workgroups holds (`MAX_WG_DIM`): 70,000
/// identical neurons driven by a constant current fire in the same step, again and
/// again, so the neuron update must size the propagation's indirect dispatch over two
/// rows (`ChunkCtrl`), and every spike beyond the first row must still arrive. With
/// 0.5 ms delays the chunks are fused too.
#[test]
fn volleys_beyond_one_row_of_workgroups_propagate_every_spike() {
    let n = ketasim::model::limits::MAX_WORKGROUPS_PER_DIM + 4465;
    let text = format!(
        r#"
name = "volley"
dt_ms = 0.1
duration_ms = 8.0
seed = 3
[[populations]]
name = "E"
size = {n}
[populations.neuron]
c_pF = 200.0
g_l_nS = 10.0
e_l_mV = -60.0
v_th_mV = -50.0
v_reset_mV = -60.0
t_ref_ms = 1.0
i_ext_pA = 400.0
[populations.init]
v_mean_mV = -50.5
v_sd_mV = 0.0
[[projections]]
pre = "E"
post = "E"
receptor = "gaba_a"
rule = "fixed_outdegree"
k = 2
weight_nS = 0.5
delay_ms = 0.5
[record]
spikes = ["E"]
"#
    );
    let s = Scenario::from_toml("volley", &text).expect("scenario");
    let net = Network::build(&s, 40).expect("network");
    assert!(net.params.sim.fuse_steps > 1, "chunks should be fused");
    check_identical(
        &s,
        40,
        "volleys_beyond_one_row_of_workgroups_propagate_every_spike",
    );
    // The comparison above covers the case: the first volley is one step of more
    // than MAX_WG_DIM spikes, and its inhibition reached (nearly) every neuron, so a
    // spike lost beyond the first row would change the final g_GABA compared.
    let mut cpu = CpuBackend::new(&net).expect("cpu");
    let out = run_all(&mut cpu, net.steps, 40);
    let spikes: Vec<_> = out.iter().flat_map(|o| o.spikes.clone()).collect();
    let first_step = spikes[0].0;
    let first = spikes.iter().filter(|s| s.0 == first_step).count() as u32;
    assert_eq!(first, n, "the first volley holds every neuron");
    let inhibited = cpu
        .state()
        .expect("state")
        .g_gaba
        .iter()
        .filter(|&&g| g > 0.0)
        .count() as f64;
    assert!(
        inhibited > 0.8 * n as f64,
        "only {inhibited} of {n} neurons received the volley's inhibition"
    );
}

/// Unstable membrane steps (`backend::Unstable`: the forward-Euler step factor past
/// `MAX_EULER_STEP_FACTOR`, here through the NMDA term in the middle of the run) are
/// counted alike by the shader's `check_step` and the CPU twin: count, first step and
/// the largest factor's bits; and the runner's check names the population.
#[test]
fn unstable_steps_are_counted_alike_on_gpu_and_cpu() {
    let test = "unstable_steps_are_counted_alike_on_gpu_and_cpu";
    let Some(ctx) = common::gpu_or_skip(test) else {
        return;
    };
    let strict = ctx.strict_float;
    let s = Scenario::from_toml("mixed-unstable", &common::mixed_unstable()).expect("scenario");
    let net = Network::build(&s, 40).expect("network");
    let mut cpu = CpuBackend::new(&net).expect("cpu");
    let mut gpu = GpuBackend::new(ctx, &net).expect("gpu");
    let c = run_all(&mut cpu, 120, 40);
    let g = run_all(&mut gpu, 120, 40);
    for (a, b) in c.iter().zip(&g) {
        if strict {
            assert_eq!(a.unstable, b.unstable, "batch at step {}", a.first_step);
        } else {
            let firsts =
                |o: &BatchOutput| o.unstable.iter().map(|u| u.first_step).collect::<Vec<_>>();
            assert_eq!(firsts(a), firsts(b), "batch at step {}", a.first_step);
        }
    }
    let hit = g
        .iter()
        .find(|o| o.unstable[0].first_step.is_some())
        .expect("the GPU counted E's unstable steps");
    assert_eq!(hit.unstable[0].first_step, Some(54));
    assert_eq!(hit.unstable[1], Default::default(), "I has none");
    let sizes: Vec<u32> = net.pops().iter().map(|p| p.size).collect();
    let err = ketasim::backend::check_stable(hit, &net.pop_names, &sizes, s.dt_ms)
        .expect_err("the check refuses the batch")
        .to_string();
    assert!(
        err.contains("population `E`") && err.contains("step 54") && err.contains("dt_ms"),
        "{err}"
    );
}

/// A sampled value past the fixed-point limit sets the same clip bits on the GPU as on
/// the CPU (the shader's `clip_bit` and its twin), with the same clamped sums.
#[test]
fn clipped_samples_are_flagged_alike_on_gpu_and_cpu() {
    let test = "clipped_samples_are_flagged_alike_on_gpu_and_cpu";
    let Some(ctx) = common::gpu_or_skip(test) else {
        return;
    };
    let strict = ctx.strict_float;
    let s = Scenario::from_toml("mixed-clipped", &common::mixed_clipped()).expect("scenario");
    let net = Network::build(&s, 40).expect("network");
    let mut cpu = CpuBackend::new(&net).expect("cpu");
    let mut gpu = GpuBackend::new(ctx, &net).expect("gpu");
    let c = run_all(&mut cpu, 120, 40);
    let g = run_all(&mut gpu, 120, 40);
    let masks = |o: &[BatchOutput]| {
        o.iter()
            .flat_map(|b| b.samples.iter().map(|x| (x.step, x.clipped.clone())))
            .collect::<Vec<_>>()
    };
    assert_eq!(masks(&c), masks(&g));
    let m = masks(&g);
    // A sample every 0.5 ms; E's AMPA current is past the limit up to 3.5 ms.
    assert_eq!(m.len(), 24, "{m:?}");
    assert!(
        m[..7].iter().all(|(_, x)| x == &[common::CLIP_I_AMPA, 0]),
        "{m:?}"
    );
    assert!(m[7..].iter().all(|(_, x)| x == &[0, 0]), "{m:?}");
    if strict {
        for (a, b) in c.iter().zip(&g) {
            assert_eq!(a.samples, b.samples, "batch at step {}", a.first_step);
        }
    }
}
