//! Offline checks (no GPU, no Mac, no Windows machine) that the kernels translate for
//! the other backends wgpu runs compute on. Vulkan drivers get the strict SPIR-V
//! (`src/gpu/strict.rs`, checked in its unit tests and by `scripts/shader-stats.sh`);
//! Metal and Direct3D 12 have no SPIR-V, so wgpu hands them the WGSL, which naga
//! translates to the Metal Shading Language (wgpu-hal's Metal device) or to HLSL
//! (its D3D12 device, then DXC or FXC), with `div_rn` compiled to the native division
//! (`Division::Native`, docs/determinism.md). A kernel naga cannot write for one of
//! them would fail only on that vendor's machine, at pipeline creation; here it fails
//! on any machine.
//!
//! Each kernel is checked as a run compiles it for each embedded scenario (only the
//! paths its network takes, `Features::of`) and with every path, at the default
//! workgroup size and at WebGPU's largest, 1024, with the options wgpu-hal 30 passes
//! (bounds checks `Restrict`, workgroup memory zeroed, loops bounded), for the oldest
//! language versions wgpu targets: MSL 2.0 (macOS 10.13, iOS 11) and HLSL shader
//! model 5.1 (FXC). Metal also bounds what a kernel may bind: its buffer argument
//! table holds 31 entries per function (Apple, "Metal feature set tables":
//! "Maximum number of entries in the buffer argument table, per graphics or kernel
//! function"), and naga adds one for the sizes of runtime-sized arrays.

use ketasim::gpu::shaders::{self, Division, Features, Kernel, KernelConfig};
use ketasim::scenario::{Scenario, Source, EMBEDDED};

/// Entries of a Metal function's buffer argument table (Apple's feature set tables).
const METAL_BUFFER_SLOTS: usize = 31;
/// Oldest Metal Shading Language version wgpu-hal 30 selects (macOS 10.13, iOS 11;
/// `msl_version` in wgpu-hal's Metal adapter).
const MSL_OLDEST: (u8, u8) = (2, 0);
/// WebGPU's largest `max_compute_workgroup_size_x`, the most `KETASIM_WG_SIZE` takes.
const LARGEST_WG: u32 = 1024;

/// Every kernel a simulation or a probe compiles.
fn all_kernels() -> Vec<Kernel> {
    let mut k = shaders::KERNELS.to_vec();
    k.push(shaders::STREAM);
    k.push(shaders::CHAIN);
    k
}

/// (label, config) for every embedded scenario's network and for every path, at the
/// default workgroup size and the largest.
fn configs() -> Vec<(String, KernelConfig)> {
    let mut out = Vec::new();
    for (name, _) in EMBEDDED {
        let source = Source::locate(Some(name)).expect("embedded scenario");
        let sc = Scenario::load(&source, &[]).expect("embedded scenario loads");
        let net = ketasim::model::Network::build(&sc, ketasim::run::DEFAULT_BATCH_STEPS)
            .expect("embedded scenario builds");
        out.push((
            name.to_string(),
            KernelConfig {
                features: Features::of(&net.params),
                ..KernelConfig::DEFAULT
            },
        ));
    }
    out.push(("every path".into(), KernelConfig::DEFAULT));
    out.push((
        format!("every path, {LARGEST_WG} threads per workgroup"),
        KernelConfig {
            wg_size: LARGEST_WG,
            ..KernelConfig::DEFAULT
        },
    ));
    out
}

/// WGSL parsed and validated with no optional capability (no 64-bit types, no
/// subgroup operations), which every backend wgpu runs compute on has; the error,
/// with the source location, if not.
fn validated(src: &str) -> Result<(naga::Module, naga::valid::ModuleInfo), String> {
    let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string(src))?;
    Ok((module, info))
}

/// The kernel as wgpu gets it on Metal and D3D12, parsed and validated.
fn module(
    kernel: &Kernel,
    label: &str,
    config: &KernelConfig,
) -> (naga::Module, naga::valid::ModuleInfo) {
    validated(&shaders::source_for(kernel, Division::Native, config))
        .unwrap_or_else(|e| panic!("{} ({label}) does not validate:\n{e}", kernel.name))
}

/// Entries of Metal's buffer argument table the kernel needs: its buffers in slots
/// by binding, as `to_msl` lays them out, and one more for the sizes of its
/// runtime-sized arrays where it has any.
fn metal_slots(module: &naga::Module) -> usize {
    let dynamic = |ty: naga::Handle<naga::Type>| {
        matches!(
            module.types[ty].inner,
            naga::TypeInner::Array {
                size: naga::ArraySize::Dynamic,
                ..
            }
        )
    };
    let sized_at_run_time = module.global_variables.iter().any(|(_, g)| {
        dynamic(g.ty)
            || matches!(&module.types[g.ty].inner, naga::TypeInner::Struct { members, .. }
                if members.last().is_some_and(|m| dynamic(m.ty)))
    });
    let highest = buffers(module)
        .iter()
        .map(|b| b.0 as usize + 1)
        .max()
        .unwrap_or(0);
    highest + usize::from(sized_at_run_time)
}

/// The buffers a kernel binds, as (binding, writable), in group 0.
fn buffers(module: &naga::Module) -> Vec<(u32, bool)> {
    module
        .global_variables
        .iter()
        .filter_map(|(_, g)| {
            let b = g.binding.as_ref()?;
            assert_eq!(b.group, 0, "every kernel binds group 0 only");
            let writable = match g.space {
                naga::AddressSpace::Storage { access } => {
                    access.contains(naga::StorageAccess::STORE)
                }
                naga::AddressSpace::Uniform => false,
                ref other => panic!("binding {} is in {other:?}, not a buffer", b.binding),
            };
            Some((b.binding, writable))
        })
        .collect()
}

/// MSL for every entry point, buffers in slots by binding and the array sizes after
/// them, as wgpu-hal's Metal device lays them out; the source, or why not.
fn to_msl(module: &naga::Module, info: &naga::valid::ModuleInfo) -> Result<String, String> {
    use naga::back::msl;
    let bufs = buffers(module);
    let mut resources = msl::EntryPointResources::default();
    for (binding, writable) in &bufs {
        let slot = u8::try_from(*binding).map_err(|_| format!("binding {binding} past u8"))?;
        resources.resources.insert(
            naga::ResourceBinding {
                group: 0,
                binding: *binding,
            },
            msl::BindTarget {
                buffer: Some(slot),
                mutable: *writable,
                ..Default::default()
            },
        );
    }
    let sizes_slot = bufs.iter().map(|b| b.0 + 1).max().unwrap_or(0);
    resources.sizes_buffer = Some(u8::try_from(sizes_slot).map_err(|e| e.to_string())?);
    let options = msl::Options {
        lang_version: MSL_OLDEST,
        per_entry_point_map: module
            .entry_points
            .iter()
            .map(|ep| (ep.name.clone(), resources.clone()))
            .collect(),
        fake_missing_bindings: false,
        bounds_check_policies: naga::proc::BoundsCheckPolicies {
            index: naga::proc::BoundsCheckPolicy::Restrict,
            buffer: naga::proc::BoundsCheckPolicy::Restrict,
            image_load: naga::proc::BoundsCheckPolicy::Restrict,
            binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
        },
        zero_initialize_workgroup_memory: true,
        force_loop_bounding: true,
        ..Default::default()
    };
    let (src, tinfo) = msl::write_string(module, info, &options, &msl::PipelineOptions::default())
        .map_err(|e| e.to_string())?;
    for ep in tinfo.entry_point_names {
        ep.map_err(|e| e.to_string())?;
    }
    Ok(src)
}

/// HLSL for every entry point at shader model 5.1; the source, or why not.
fn to_hlsl(module: &naga::Module, info: &naga::valid::ModuleInfo) -> Result<String, String> {
    use naga::back::hlsl;
    let options = hlsl::Options {
        shader_model: hlsl::ShaderModel::V5_1,
        zero_initialize_workgroup_memory: true,
        restrict_indexing: true,
        force_loop_bounding: true,
        ..Default::default()
    };
    let mut src = String::new();
    let reflection = hlsl::Writer::new(&mut src, &options, &hlsl::PipelineOptions::default())
        .write(module, info, None)
        .map_err(|e| e.to_string())?;
    for ep in reflection.entry_point_names {
        ep.map_err(|e| e.to_string())?;
    }
    Ok(src)
}

#[test]
fn every_kernel_translates_to_msl_and_hlsl_for_every_network() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (label, config) in configs() {
        for kernel in all_kernels() {
            let (module, info) = module(&kernel, &label, &config);
            match to_msl(&module, &info) {
                Ok(src) => assert!(
                    src.contains("kernel void"),
                    "{} ({label}): MSL without a kernel function",
                    kernel.name
                ),
                Err(e) => failures.push(format!("{} ({label}), MSL: {e}", kernel.name)),
            }
            match to_hlsl(&module, &info) {
                Ok(src) => assert!(
                    src.contains("[numthreads("),
                    "{} ({label}): HLSL without a compute entry point",
                    kernel.name
                ),
                Err(e) => failures.push(format!("{} ({label}), HLSL: {e}", kernel.name)),
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "not translated:\n{}",
        failures.join("\n")
    );
    // Five embedded scenarios plus two every-path builds, seven kernels each.
    assert!(checked >= 7 * 7, "only {checked} kernel builds checked");
}

#[test]
fn every_kernel_fits_a_metal_buffer_argument_table() {
    for kernel in all_kernels() {
        let (module, _) = module(&kernel, "every path", &KernelConfig::DEFAULT);
        let slots = metal_slots(&module);
        assert!(
            slots <= METAL_BUFFER_SLOTS,
            "{}: {slots} buffer slots (bindings and array sizes) exceed Metal's {METAL_BUFFER_SLOTS}",
            kernel.name
        );
    }
}

/// The checks can fail: a kernel with a 64-bit float (which Metal lacks, and naga's
/// MSL writer would not even report but panic on) is refused before translation,
/// and one binding slot 30 with a runtime-sized array needs 32 of Metal's 31 slots.
/// naga's HLSL writer leaves shader-model checks to DXC and FXC, which only a
/// Windows machine has.
#[test]
fn kernels_no_backend_takes_are_refused() {
    let f64_kernel = "@group(0) @binding(0) var<storage, read_write> x: array<f64>;\n\
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { x[g.x] = x[g.x] * 2.0lf; }";
    let err = validated(f64_kernel).expect_err("a 64-bit float kernel validated");
    assert!(
        err.contains("f64") || err.contains("FLOAT64") || err.contains("64"),
        "{err}"
    );

    let wide = "@group(0) @binding(0) var<storage, read_write> a: array<u32>;\n\
        @group(0) @binding(30) var<storage, read_write> b: array<u32>;\n\
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { a[g.x] = b[g.x]; }";
    let (module, info) = validated(wide).expect("the wide kernel validates");
    assert_eq!(metal_slots(&module), 32);
    assert!(
        to_msl(&module, &info).is_ok(),
        "translation itself does not bound the slots"
    );
}
