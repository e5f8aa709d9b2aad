//! The WGSL helper functions of `shaders/common.wgsl` against their Rust twins on
//! random inputs run through a small test kernel on the adapter: `pool_step`
//! (ketamine receptor kinetics), `exp_f32`, `ln_f32`, `one_minus_exp_neg`,
//! `mg_block` and `div_rn` (against Rust's `/`, through each of its paths: the
//! corrected estimate, the fallback long division, and the long division alone). The
//! kernel is built as the
//! simulation's are (`strict::compute_pipeline`): where the context has strict float
//! (no contraction, exact division) every result must be bit for bit the CPU's; on
//! the plain WGSL path a GPU compiler may fuse a multiply and an add into one
//! rounding and divide to 2.5 ulp, so agreement is required to a few ulp (relative
//! 2e-6) there; the counts of exact matches are printed.

mod common;

use bytemuck::{Pod, Zeroable};
use glam::UVec2;
use ketasim::gpu::shaders::{self, Division};
use ketasim::gpu::{strict, GpuContext};
use ketasim::model::ketamine::{pool_step, PoolRates, PoolState};
use ketasim::model::layout::PoolParams;
use ketasim::model::mg_block;
use ketasim::rng::{exp_f32, ln_f32, one_minus_exp_neg, threefry2x32, uniform01};
use ketasim::scenario::Subunit;
use wgpu::util::DeviceExt;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Case {
    st: [f32; 4],
    x: f32,
    v: f32,
    mg_free: f32,
    conc: f32,
    e_arg: f32,
    l_arg: f32,
    div_a: f32,
    div_b: f32,
    pl: PoolParams,
}

const KERNEL: &str = r#"
struct Case {
    st: vec4<f32>,
    x: f32,
    v: f32,
    mg_free: f32,
    conc: f32,
    e_arg: f32,
    l_arg: f32,
    div_a: f32,
    div_b: f32,
    pl: PoolParams,
}
// Bindings 0 and 1 are common.wgsl's (unused here, so not in the layout).
@group(0) @binding(2) var<storage, read> cases: array<Case>;
@group(0) @binding(3) var<storage, read_write> outs: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&cases)) {
        return;
    }
    let c = cases[i];
    outs[3u * i] = pool_step(c.st, c.pl, c.x, c.v, c.mg_free, c.conc);
    outs[3u * i + 1u] = vec4<f32>(exp_f32(c.e_arg), ln_f32(c.l_arg), one_minus_exp_neg(abs(c.e_arg)), mg_block(c.v, c.pl.mg_over_k0));
    outs[3u * i + 2u] = vec4<f32>(div_rn(c.div_a, c.div_b), div_rn(c.div_b, c.div_a), div_rn(1.0, c.div_b), div_rn(c.div_a, 3.0));
}
"#;

fn cases(n: u32) -> Vec<Case> {
    let subunits = [Subunit::N2A, Subunit::N2B, Subunit::N2C, Subunit::N2D];
    (0..n)
        .map(|i| {
            let r = |k: u32| {
                let w = threefry2x32(UVec2::new(i, k), UVec2::new(99, 7));
                (uniform01(w.x), uniform01(w.y))
            };
            let (u0, u1) = r(0);
            let (u2, u3) = r(1);
            let (u4, u5) = r(2);
            let (u6, u7) = r(3);
            let sub = subunits[(i % 4) as usize];
            let dt = [0.05, 0.1, 0.25][(i % 3) as usize];
            let rates = PoolRates::new(sub, dt, 0.5, sub.tau_decay_ms());
            // Fractions: O, B, T with O + B + T <= 1.
            let o = u0 * 0.6;
            let b = u1 * (1.0 - o) * 0.5;
            let t = u2 * (1.0 - o - b);
            let v = -90.0 + 130.0 * u3;
            let mg_over_k0 = (1.0 / sub.k0_mg_mM()) as f32;
            Case {
                st: [o, b, t, 0.0],
                x: if i % 5 == 0 {
                    0.0
                } else {
                    10.0f32.powf(-3.0 + 4.0 * u4)
                },
                v,
                mg_free: mg_block(v, mg_over_k0),
                conc: if i % 7 == 0 {
                    0.0
                } else {
                    10.0f32.powf(-2.0 + 5.0 * u5)
                },
                e_arg: -80.0 + 160.0 * u6,
                l_arg: 10.0f32.powf(-7.0 + 12.0 * u7),
                div_a: div_operand(i, 4),
                div_b: div_operand(i, 5),
                pl: PoolParams {
                    fraction: 1.0,
                    mg_over_k0,
                    alpha_dt: rates.alpha_dt,
                    beta_dt: rates.beta_dt,
                    kon_dt: rates.kon_dt,
                    kd_ref_um: rates.kd_ref_um,
                    kd_slope_per_mv: rates.kd_slope_per_mv,
                    _pad0: 0.0,
                },
            }
        })
        .collect()
}

/// A division operand: any sign and significand, exponents over most of the normal
/// range (quotients of two such stay normal, where `div_rn` divides exactly); every
/// 8th a significand near 1 (quotients at the rounding boundaries), every 16th 0.
fn div_operand(i: u32, k: u32) -> f32 {
    let w = threefry2x32(UVec2::new(i, k), UVec2::new(99, 7));
    if i % 16 == 15 {
        return 0.0;
    }
    let sign = w.x & 0x8000_0000;
    let exponent = 64 + w.y % 128;
    let significand = if i % 8 == 7 {
        (w.x & 0x7) | if w.x & 0x10 != 0 { 0x7f_fff8 } else { 0 }
    } else {
        w.x & 0x7f_ffff
    };
    f32::from_bits(sign | (exponent << 23) | significand)
}

fn cpu(c: &Case) -> [[f32; 4]; 3] {
    let s = pool_step(
        PoolState {
            o: c.st[0],
            b: c.st[1],
            t: c.st[2],
        },
        &ketasim::model::layout::PoolParams::rates(&c.pl),
        c.x,
        c.v,
        c.mg_free,
        c.conc,
    );
    [
        [s.o, s.b, s.t, 0.0],
        [
            exp_f32(c.e_arg),
            ln_f32(c.l_arg),
            one_minus_exp_neg(c.e_arg.abs()),
            mg_block(c.v, c.pl.mg_over_k0),
        ],
        [
            c.div_a / c.div_b,
            c.div_b / c.div_a,
            1.0 / c.div_b,
            c.div_a / 3.0,
        ],
    ]
}

/// The test kernel built as the simulation's kernels are, with `division` for
/// `div_rn` where the context has strict float, run once over `cs`: three vec4
/// results per case.
fn run_kernel(ctx: &GpuContext, division: Division, cs: &[Case]) -> Vec<[f32; 4]> {
    let n = cs.len() as u32;
    let device = &ctx.device;
    let pipeline = strict::compute_pipeline(device, "twins", ctx.strict_float, division, |d| {
        format!(
            "{}\n{}\n{}",
            shaders::header_for(d, &shaders::KernelConfig::DEFAULT),
            shaders::COMMON,
            KERNEL
        )
    })
    .expect("pipeline");
    let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("cases"),
        contents: bytemuck::cast_slice(cs),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let out_bytes = (n as u64) * 48;
    let out = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("outs"),
        size: out_bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("staging"),
        size: out_bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("twins"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 2,
                resource: input.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: out.as_entire_binding(),
            },
        ],
    });
    let mut enc = device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(n.div_ceil(64), 1, 1);
    }
    enc.copy_buffer_to_buffer(&out, 0, &staging, 0, out_bytes);
    ctx.queue.submit([enc.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
    rx.recv().expect("callback").expect("map");
    ctx.check_uncaptured().expect("no wgpu error");
    let gpu: Vec<[f32; 4]> =
        bytemuck::pod_collect_to_vec(&staging.get_mapped_range(..).expect("range"));
    gpu
}

#[test]
fn wgsl_helpers_match_their_rust_twins() {
    let Some(ctx) = common::gpu_or_skip("wgsl_helpers_match_their_rust_twins") else {
        return;
    };
    let n = 20_000u32;
    let cs = cases(n);
    let gpu = run_kernel(&ctx, Division::EXACT, &cs);
    let names = [
        "pool_step",
        "exp_f32 / ln_f32 / one_minus_exp_neg / mg_block",
        "div_rn",
    ];
    let mut bad = Vec::new();
    let mut exact = [0usize; 3];
    // Fractions: absolute 2e-6 (a few ulp of 1); the other functions: relative 2e-6;
    // nothing but the same bits with strict float.
    let strict = ctx.strict_float;
    let close = |k: usize, a: f32, b: f32| {
        if strict {
            a.to_bits() == b.to_bits()
        } else if k == 0 {
            (a - b).abs() <= 2e-6
        } else {
            (a - b).abs() <= 2e-6 * a.abs().max(b.abs())
        }
    };
    for (i, c) in cs.iter().enumerate() {
        let want = cpu(c);
        for k in 0..3 {
            let got = gpu[3 * i + k];
            if got
                .iter()
                .zip(&want[k])
                .all(|(a, b)| a.to_bits() == b.to_bits())
            {
                exact[k] += 1;
            } else if !got.iter().zip(&want[k]).all(|(a, b)| close(k, *a, *b)) {
                bad.push(format!(
                    "case {i} {}: gpu {got:?} cpu {:?}",
                    names[k], want[k]
                ));
            }
        }
    }
    eprintln!(
        "bit-identical: pool_step {}/{n}, elementary functions {}/{n}, division {}/{n} (on {}, strict float {strict})",
        exact[0],
        exact[1],
        exact[2],
        ctx.describe()
    );
    assert!(
        bad.is_empty(),
        "{} mismatches beyond tolerance, first: {:#?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}

/// `div_rn` gives IEEE division's bits through every path, on all the cases' four
/// divisions. llvmpipe divides exactly, so its truncated estimate is Q or Q + 1 (Q
/// the exact quotient's significand); moved by -3 to +2 units it covers every
/// estimate that Vulkan's 2.5 ulp allows (Q - 2 to Q + 3, `div_rn`'s comment) and
/// more, with the fallback switched off, so the corrections alone must fix it. Moved
/// further, the exact check must catch it and the long division take over, as on a
/// driver outside the bound. Last, the long division alone (`KETASIM_GPU_DIV=long`).
/// A correction step or the check removed from `div_rn` fails here, though
/// llvmpipe's own division is exact.
#[test]
fn div_rn_is_exact_through_every_path() {
    let Some(ctx) = common::gpu_or_skip("div_rn_is_exact_through_every_path") else {
        return;
    };
    if !ctx.strict_float {
        eprintln!("div_rn is the native division on the plain WGSL path; nothing to check");
        return;
    }
    let cs = cases(20_000);
    let within = [-3, -2, -1, 0, 1, 2].map(|offset| Division::Estimated {
        offset,
        fallback: false,
    });
    let beyond = [3, 4, -4, 100, -129, 1 << 20, i32::MIN].map(|offset| Division::Estimated {
        offset,
        fallback: true,
    });
    for division in within.into_iter().chain(beyond).chain([Division::Long]) {
        let gpu = run_kernel(&ctx, division, &cs);
        let bad: Vec<String> = cs
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let want = cpu(c)[2];
                let got = gpu[3 * i + 2];
                (got.iter()
                    .zip(&want)
                    .any(|(a, b)| a.to_bits() != b.to_bits()))
                .then(|| {
                    format!(
                        "case {i} ({}, {}): gpu {got:?} cpu {want:?}",
                        c.div_a, c.div_b
                    )
                })
            })
            .collect();
        assert!(
            bad.is_empty(),
            "{division:?}: {} divisions differ, first: {:#?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        );
    }
}
