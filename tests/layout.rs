//! Offline shader checks (no GPU needed): every kernel parses and validates with naga,
//! and every struct shared with Rust has the same member offsets and size as its
//! `#[repr(C)]` twin.

use std::mem::{offset_of, size_of};

use ketasim::gpu::shaders::{self, KERNELS};
use ketasim::model::layout::*;

fn parse(kernel: &shaders::Kernel) -> naga::Module {
    let src = shaders::source(kernel);
    let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| {
        panic!(
            "{}.wgsl does not parse:\n{}",
            kernel.name,
            e.emit_to_string(&src)
        )
    });
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .unwrap_or_else(|e| {
        panic!(
            "{}.wgsl does not validate:\n{}",
            kernel.name,
            e.emit_to_string(&src)
        )
    });
    module
}

/// (member name, offset) pairs and the span of WGSL struct `name`.
fn wgsl_struct(module: &naga::Module, name: &str) -> (Vec<(String, u32)>, u32) {
    for (_, ty) in module.types.iter() {
        if ty.name.as_deref() == Some(name) {
            if let naga::TypeInner::Struct { members, span } = &ty.inner {
                let m = members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                    .collect();
                return (m, *span);
            }
        }
    }
    panic!("struct {name} not found in WGSL");
}

macro_rules! check_struct {
    ($module:expr, $ty:ident, [$($field:ident),* $(,)?]) => {
        check_struct!($module, $ty as stringify!($ty), [$($field),*])
    };
    ($module:expr, $ty:ident as $wgsl:expr, [$($field:ident),* $(,)?]) => {{
        let (members, span) = wgsl_struct($module, $wgsl);
        let rust: Vec<(String, u32)> = vec![$((stringify!($field).to_string(), offset_of!($ty, $field) as u32)),*];
        assert_eq!(members, rust, "member names/offsets of {} differ between WGSL and Rust", stringify!($ty));
        assert_eq!(span as usize, size_of::<$ty>(), "size of {} differs", stringify!($ty));
    }};
}

#[test]
fn every_kernel_parses_and_validates() {
    for k in &KERNELS {
        parse(k);
    }
}

#[test]
fn shared_structs_match_rust_layout() {
    for k in &KERNELS {
        let m = parse(k);
        check_struct!(
            &m,
            SimParams,
            [
                n_total,
                n_pop,
                n_proj,
                ring_slots,
                seed_lo,
                seed_hi,
                count_capacity,
                sample_interval,
                sample_capacity,
                rec_capacity,
                fuse_steps,
                parity,
                spike_groups,
                _pad0,
                _pad1,
                _pad2,
                inv_scale,
            ]
        );
        check_struct!(
            &m,
            PopParams,
            [
                offset,
                size,
                ref_steps,
                drive_start,
                n_drives,
                record_spikes,
                n_pools,
                glu_on,
                dt_over_c,
                g_l,
                e_l,
                v_th,
                v_reset,
                i_ext,
                e_ampa,
                e_gaba,
                e_nmda,
                g_nmda_max,
                decay_ampa,
                decay_gaba,
                decay_nmda_rise,
                glu_p_release,
                glu_sites,
                glu_rec_rate,
                glu_um_per_vesicle,
                glu_vmax_dt,
                glu_km_um,
                sig_on,
                syn_current,
                cur_p22,
                cur_p21ex,
                cur_p21in,
                cur_p20,
                proj_first,
                proj_count,
                _pad_cur2,
                pools,
            ]
        );
        check_struct!(
            &m,
            PoolParams,
            [
                fraction,
                mg_over_k0,
                alpha_dt,
                beta_dt,
                kon_dt,
                kd_ref_um,
                kd_slope_per_mv,
                _pad0,
            ]
        );
        check_struct!(
            &m,
            DrugParams,
            [conc0_um, slope_um_per_step, step0, ampa_block]
        );
        check_struct!(
            &m,
            SlowPop,
            [on, _pad0, _pad1, _pad2, a_start, a_end, s_set, _pad3]
        );
        check_struct!(
            &m,
            SlowParams,
            [
                mode,
                n_sub,
                hill_n,
                _pad0,
                inv_interval_s,
                adapt_rate,
                bdnf_rate,
                mtor_rate,
                protein_rate,
                hill_k_pow,
                m_rest,
                mtor_gain,
                bdnf_gain,
                growth_per_h,
                threshold,
                max_density,
                loss_per_h,
                h_hours,
                _pad1,
                _pad2,
            ]
        );
        check_struct!(
            &m,
            ProjParams,
            [
                pre_offset,
                pre_size,
                post_offset,
                post_size,
                rule,
                receptor,
                delay_steps,
                k,
                weight_fixed,
                stream,
                autapses,
                table_base,
                inv_ln_1mp,
                same_pop,
                seed_lo,
                seed_hi,
                w_mean_fixed,
                w_sd_fixed,
                d_mean_steps,
                d_sd_steps,
            ]
        );
        check_struct!(
            &m,
            DriveParams,
            [
                receptor,
                index,
                key_lo,
                key_hi,
                mean,
                exp_neg_mean,
                weight,
                neuron_base
            ]
        );
        check_struct!(&m, IsiStat, [last_step, count, sum_steps, sum_sq]);
        // The chunk-control words (the neuron update declares atomic twins of
        // them, checked below).
        check_struct!(
            &m,
            ChunkCtrl,
            [dispatch_x, dispatch_y, dispatch_z, n_spikes, step, _pad0, _pad1, _pad2]
        );
        check_struct!(&m, GpuCtrl, [chunks, n_rec, batch_end, _pad1, _pad2]);
        if k.name == shaders::NEURON_UPDATE.name {
            check_struct!(
                &m,
                ChunkCtrl as "ChunkCtrlAtomic",
                [dispatch_x, dispatch_y, dispatch_z, n_spikes, step, _pad0, _pad1, _pad2]
            );
            check_struct!(
                &m,
                GpuCtrl as "GpuCtrlAtomic",
                [chunks, n_rec, batch_end, _pad1, _pad2]
            );
        }
    }
}

/// `ParamsBlock` is uploaded as a `SimParams` uniform (binding 0 of every kernel) and
/// storage arrays; each array's element stride must be its Rust struct's size, since
/// the host uploads `Vec`s of them as raw bytes.
#[test]
fn parameter_arrays_match_rust_strides() {
    let expect = [
        ("pops", size_of::<PopParams>()),
        ("projs", size_of::<ProjParams>()),
        ("drives", size_of::<DriveParams>()),
        ("slow_pops", size_of::<SlowPop>()),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for k in &KERNELS {
        let m = parse(k);
        for (_, g) in m.global_variables.iter() {
            let name = g.name.clone().unwrap_or_default();
            let binding = g.binding.as_ref().map(|b| (b.group, b.binding));
            if name == "sim" {
                assert_eq!(binding, Some((0, 0)), "{}: sim binding", k.name);
                assert_eq!(g.space, naga::AddressSpace::Uniform, "{}: sim", k.name);
            }
            if name == "pops" {
                assert_eq!(binding, Some((0, 1)), "{}: pops binding", k.name);
            }
            let Some(&(_, size)) = expect.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            match &m.types[g.ty].inner {
                naga::TypeInner::Array {
                    size: naga::ArraySize::Dynamic,
                    stride,
                    ..
                } => assert_eq!(*stride as usize, size, "{}: stride of {name}", k.name),
                other => panic!("{}: {name} is not a runtime-sized array: {other:?}", k.name),
            }
            seen.insert(name);
        }
    }
    assert_eq!(seen.len(), expect.len(), "arrays found: {seen:?}");
}

/// The adapter check asks for as many storage buffers per stage as the hungriest
/// kernel binds.
#[test]
fn storage_buffers_needed_matches_the_kernels() {
    let most = KERNELS
        .iter()
        .map(|k| {
            parse(k)
                .global_variables
                .iter()
                .filter(|(_, g)| matches!(g.space, naga::AddressSpace::Storage { .. }))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert_eq!(most as u32, ketasim::gpu::STORAGE_BUFFERS_NEEDED);
}
