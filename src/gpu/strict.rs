//! Kernels as SPIR-V whose floating-point arithmetic the driver may not contract.
//!
//! SPIR-V lets a driver fuse a multiply and an add into one fused multiply-add (one
//! rounding instead of two) unless the instruction carries the `NoContraction`
//! decoration (SPIR-V 1.6 spec, section 3.20, "Decoration": "Apply to an arithmetic
//! instruction to indicate the operation cannot be combined with another instruction
//! to form a single operation"; GLSL's `precise` qualifier is compiled to it). NVIDIA's
//! Vulkan driver does fuse, so a WGSL kernel that wgpu compiles for it rounds
//! differently from the CPU twin, which Rust never contracts: on an H200 the COBA
//! population sums differed by 1 to 10 fixed-point units from the first sample on
//! (`tests/gpu_vs_cpu.rs`), while Mesa's llvmpipe, which does not fuse, agreed bit
//! for bit. WGSL has no way to ask for this (naga 30 never emits `NoContraction`), so
//! on Vulkan the kernels are translated here, with naga and the options wgpu itself
//! uses (`wgpu-hal`'s Vulkan adapter: index and buffer bounds checks `Restrict`,
//! workgroup memory zeroed, loops bounded), every float add, subtract, multiply,
//! divide and negate is decorated, and the module is handed to the driver through
//! wgpu's SPIR-V passthrough. Add, subtract and multiply are then correctly rounded
//! (Vulkan spec, "Precision and Operation of SPIR-V Instructions"), as on the CPU.
//! Division is not (2.5 ulp allowed), so the kernels divide with `div_rn`
//! (`shaders/common.wgsl`), which this path compiles as an exact long division
//! (`shaders::Division::EXACT`). docs/determinism.md has the measurements.

use crate::error::{Error, Result};
use crate::gpu::shaders::Division;

/// SPIR-V opcodes whose result is decorated (SPIR-V spec, section 3.52): `OpFNegate`,
/// `OpFAdd`, `OpFSub`, `OpFMul`, `OpFDiv`, `OpVectorTimesScalar`, `OpDot`.
const FLOAT_ARITHMETIC_OPS: [u32; 7] = [127, 129, 131, 133, 136, 142, 148];
/// `OpDecorate` (SPIR-V spec, section 3.52.6).
const OP_DECORATE: u32 = 71;
/// Decoration `NoContraction` (SPIR-V spec, section 3.20).
const NO_CONTRACTION: u32 = 42;
/// Opcodes of the module's layout sections 1-8 (capabilities through annotations,
/// SPIR-V spec section 2.4), after which the decorations go: `OpSourceContinued`,
/// `OpSource`, `OpSourceExtension`, `OpName`, `OpMemberName`, `OpString`, `OpLine`,
/// `OpExtension`, `OpExtInstImport`, `OpMemoryModel`, `OpEntryPoint`,
/// `OpExecutionMode`, `OpCapability`, `OpDecorate`, `OpMemberDecorate`,
/// `OpDecorationGroup`, `OpGroupDecorate`, `OpGroupMemberDecorate`, `OpNoLine`,
/// `OpModuleProcessed`, `OpExecutionModeId`, `OpDecorateId`, `OpDecorateString`,
/// `OpMemberDecorateString`.
const PREAMBLE_OPS: [u32; 24] = [
    2, 3, 4, 5, 6, 7, 8, 10, 11, 14, 15, 16, 17, 71, 72, 73, 74, 75, 317, 330, 331, 332, 5632, 5633,
];
/// Words in the SPIR-V header (magic, version, generator, bound, schema).
const HEADER_WORDS: usize = 5;
/// SPIR-V version the kernels are written in: 1.3 is what wgpu-hal writes for a
/// Vulkan 1.1 device, the oldest that wgpu's Vulkan backend runs compute on.
const SPIRV_VERSION: (u8, u8) = (1, 3);

/// A kernel translated for the driver: SPIR-V words with every float operation
/// decorated `NoContraction`, and what a pipeline needs to bind it.
pub struct StrictKernel {
    /// The SPIR-V module.
    pub words: Vec<u32>,
    /// The entry point's workgroup size.
    pub workgroup_size: [u32; 3],
    /// Bind group 0's layout: the bindings the entry point uses, as wgpu derives
    /// them for a WGSL module (`layout: None`).
    pub layout: Vec<wgpu::BindGroupLayoutEntry>,
    /// How many float operations were decorated.
    pub decorated: usize,
}

/// Translates WGSL source with one compute entry point named `entry`.
pub fn translate(name: &str, wgsl: &str, entry: &str) -> Result<StrictKernel> {
    let err = |what: &str, e: &dyn std::fmt::Display| {
        Error::Internal(format!("kernel {name}: {what}: {e}"))
    };
    let module = naga::front::wgsl::parse_str(wgsl).map_err(|e| err("WGSL", &e))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .map_err(|e| err("validation", &e))?;
    let (ep_index, ep) = module
        .entry_points
        .iter()
        .enumerate()
        .find(|(_, e)| e.name == entry && e.stage == naga::ShaderStage::Compute)
        .ok_or_else(|| err("entry point", &format!("no compute entry point `{entry}`")))?;
    let used = info.get_entry_point(ep_index);
    let mut layout = Vec::new();
    for (handle, var) in module.global_variables.iter() {
        let Some(binding) = &var.binding else {
            continue;
        };
        if used[handle].is_empty() {
            continue;
        }
        if binding.group != 0 {
            return Err(err(
                "layout",
                &format!("binding group {} (only group 0 is bound)", binding.group),
            ));
        }
        let ty = match var.space {
            naga::AddressSpace::Uniform => wgpu::BufferBindingType::Uniform,
            naga::AddressSpace::Storage { access } => wgpu::BufferBindingType::Storage {
                read_only: !access.contains(naga::StorageAccess::STORE),
            },
            other => {
                return Err(err(
                    "layout",
                    &format!("unsupported binding space {other:?}"),
                ))
            }
        };
        layout.push(wgpu::BindGroupLayoutEntry {
            binding: binding.binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
    }
    layout.sort_by_key(|e| e.binding);
    // wgpu-hal's Vulkan backend numbers a bind group layout's descriptors 0, 1, 2, ...
    // in the order of its entries, which wgpu-core sorts by binding
    // (`BindGroupLayout` creation in wgpu-hal 30, `vulkan/device.rs`), so binding b is
    // descriptor (set 0, rank of b); wgpu passes naga the same map for WGSL modules.
    let binding_map = layout
        .iter()
        .enumerate()
        .map(|(rank, e)| {
            (
                naga::ResourceBinding {
                    group: 0,
                    binding: e.binding,
                },
                naga::back::spv::BindingInfo {
                    descriptor_set: 0,
                    binding: rank as u32,
                    binding_array_size: None,
                },
            )
        })
        .collect();
    let options = naga::back::spv::Options {
        lang_version: SPIRV_VERSION,
        flags: naga::back::spv::WriterFlags::empty(),
        bounds_check_policies: naga::proc::BoundsCheckPolicies {
            index: naga::proc::BoundsCheckPolicy::Restrict,
            buffer: naga::proc::BoundsCheckPolicy::Restrict,
            image_load: naga::proc::BoundsCheckPolicy::Restrict,
            binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
        },
        zero_initialize_workgroup_memory:
            naga::back::spv::ZeroInitializeWorkgroupMemoryMode::Polyfill,
        force_loop_bounding: true,
        binding_map,
        fake_missing_bindings: false,
        ..Default::default()
    };
    let pipeline = naga::back::spv::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: entry.to_string(),
    };
    let words = naga::back::spv::write_vec(&module, &info, &options, Some(&pipeline))
        .map_err(|e| err("SPIR-V", &e))?;
    let (words, decorated) = decorate_no_contraction(&words).map_err(|e| err("SPIR-V", &e))?;
    Ok(StrictKernel {
        words,
        workgroup_size: ep.workgroup_size,
        layout,
        decorated,
    })
}

/// `words` with an `OpDecorate %r NoContraction` for the result `%r` of every
/// instruction in [`FLOAT_ARITHMETIC_OPS`], placed after the module's other
/// annotations; returns the new module and how many were added. Integer arithmetic
/// has its own opcodes (`OpIAdd`, ...), so only float operations are touched.
pub fn decorate_no_contraction(words: &[u32]) -> std::result::Result<(Vec<u32>, usize), String> {
    if words.len() < HEADER_WORDS || words[0] != 0x0723_0203 {
        return Err("not a SPIR-V module (bad magic number)".into());
    }
    let mut results = Vec::new();
    let mut insert_at = None;
    let mut at = HEADER_WORDS;
    while at < words.len() {
        let count = (words[at] >> 16) as usize;
        let op = words[at] & 0xffff;
        if count == 0 || at + count > words.len() {
            return Err(format!("malformed instruction at word {at}"));
        }
        if insert_at.is_none() && !PREAMBLE_OPS.contains(&op) {
            insert_at = Some(at);
        }
        if FLOAT_ARITHMETIC_OPS.contains(&op) {
            // Result type, then result id.
            if count < 3 {
                return Err(format!("opcode {op} without a result at word {at}"));
            }
            results.push(words[at + 2]);
        }
        at += count;
    }
    let insert_at = insert_at.ok_or("module has no types or functions")?;
    let mut out = Vec::with_capacity(words.len() + 3 * results.len());
    out.extend_from_slice(&words[..insert_at]);
    for &id in &results {
        out.extend_from_slice(&[(3 << 16) | OP_DECORATE, id, NO_CONTRACTION]);
    }
    out.extend_from_slice(&words[insert_at..]);
    Ok((out, results.len()))
}

/// A compute pipeline for the entry point `main` of `source(d)` (a complete WGSL
/// module whose `div_rn` divides as `d` says: `division`, exact, with `strict`, else
/// the native division, `shaders::Division::Native`). With `strict` it runs the
/// [`translate`]d SPIR-V with its reflected bind group layout; otherwise wgpu
/// compiles the WGSL (native division, contraction allowed) and derives the layout.
/// Either way bind group 0 is `pipeline.get_bind_group_layout(0)`.
pub fn compute_pipeline(
    device: &wgpu::Device,
    label: &str,
    strict: bool,
    division: Division,
    source: impl Fn(Division) -> String,
) -> Result<wgpu::ComputePipeline> {
    let (module, layout) = if strict {
        let t = translate(label, &source(division), "main")?;
        let [x, y, z] = t.workgroup_size;
        // SAFETY: the words are naga's own SPIR-V translation of a module that naga
        // validated, with only `NoContraction` decorations added; the layout is
        // reflected from the same module.
        let module = unsafe {
            device.create_shader_module_passthrough(wgpu::ShaderModuleDescriptorPassthrough {
                label: Some(label),
                entry_points: vec![wgpu::PassthroughShaderEntryPoint {
                    name: "main".into(),
                    workgroup_size: (x, y, z),
                }]
                .into(),
                spirv: Some(t.words.as_slice().into()),
                ..Default::default()
            })
        };
        let group = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &t.layout,
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&group)],
            immediate_size: 0,
        });
        (module, Some(layout))
    } else {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source(Division::Native).into()),
        });
        (module, None)
    };
    Ok(
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: layout.as_ref(),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        }),
    )
}

/// Writes every kernel (`shaders::KERNELS`, then the bandwidth probe) into `dir` as
/// a run builds it with `division` and `config`: `NAME.wgsl` (the whole
/// source), `NAME.spv` (the [`translate`]d SPIR-V that Vulkan drivers get) and
/// `NAME.layout` (one word per descriptor in binding order, `uniform` or `storage`),
/// for inspecting them with a driver's own tools (`scripts/shader-stats.sh`).
/// Returns the SPIR-V files written.
pub fn write_kernels(
    dir: &std::path::Path,
    division: Division,
    config: &crate::gpu::shaders::KernelConfig,
) -> Result<Vec<std::path::PathBuf>> {
    use crate::gpu::shaders::{source_for, CHAIN, KERNELS, STREAM};
    let io = |path: &std::path::Path, source: std::io::Error| Error::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut written = Vec::new();
    for k in KERNELS.iter().chain([&STREAM, &CHAIN]) {
        let wgsl = source_for(k, division, config);
        let t = translate(k.name, &wgsl, "main")?;
        let layout: String = t
            .layout
            .iter()
            .map(|e| match e.ty {
                wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    ..
                } => "uniform\n",
                _ => "storage\n",
            })
            .collect();
        let spv = dir.join(format!("{}.spv", k.name));
        for (path, bytes) in [
            (dir.join(format!("{}.wgsl", k.name)), wgsl.as_bytes()),
            (spv.clone(), bytemuck::cast_slice(&t.words)),
            (dir.join(format!("{}.layout", k.name)), layout.as_bytes()),
        ] {
            std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        }
        written.push(spv);
    }
    Ok(written)
}

/// Whether kernels on this device go through [`translate`]: on Vulkan where the
/// device has `PASSTHROUGH_SHADERS`, unless `KETASIM_GPU_CONTRACT=1` asks for the
/// plain WGSL path (the driver may then fuse multiply-adds, division is the native
/// one, and CPU and GPU can differ in the last bits; for measuring what exactness
/// costs).
pub fn wanted(backend: wgpu::Backend, features: wgpu::Features) -> bool {
    backend == wgpu::Backend::Vulkan
        && features.contains(wgpu::Features::PASSTHROUGH_SHADERS)
        && std::env::var("KETASIM_GPU_CONTRACT").map_or(true, |v| v != "1")
}

/// How many function-scope variables of array type (`OpVariable` in the `Function`
/// storage class whose pointee is an `OpTypeArray`) `words` declares. naga writes one
/// wherever WGSL indexes an array value with a runtime index (a constant table in a
/// loop, a struct's array member): it stores the whole array into the variable and
/// loads one element, and a driver that does not unroll the loop keeps the variable
/// in per-thread memory. The kernels are written to need none (tests below).
pub fn function_arrays(words: &[u32]) -> usize {
    // `OpTypeArray`, `OpTypePointer`, `OpVariable` (SPIR-V spec, section 3.52) and
    // the `Function` storage class (section 3.7).
    const OP_TYPE_ARRAY: u32 = 28;
    const OP_TYPE_POINTER: u32 = 32;
    const OP_VARIABLE: u32 = 59;
    const FUNCTION: u32 = 7;
    let mut arrays = std::collections::HashSet::new();
    let mut pointers = std::collections::HashSet::new();
    let mut count = 0;
    let mut at = HEADER_WORDS;
    while at < words.len() {
        let n = (words[at] >> 16) as usize;
        let op = words[at] & 0xffff;
        if n == 0 || at + n > words.len() {
            break;
        }
        let w = &words[at..at + n];
        match op {
            OP_TYPE_ARRAY if n >= 2 => {
                arrays.insert(w[1]);
            }
            OP_TYPE_POINTER if n >= 4 && w[2] == FUNCTION && arrays.contains(&w[3]) => {
                pointers.insert(w[1]);
            }
            OP_VARIABLE if n >= 4 && w[3] == FUNCTION && pointers.contains(&w[1]) => {
                count += 1;
            }
            _ => {}
        }
        at += n;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module `FAdd` then `FMul` in a function: decorations for both, after the
    /// existing annotations and before the first type.
    #[test]
    fn decorates_float_results_after_the_annotations() {
        let header = [0x0723_0203, 0x0001_0300, 0, 20, 0];
        let capability = [(2 << 16) | 17, 1];
        let decorate = [(3 << 16) | 71, 9, 2];
        let type_float = [(3 << 16) | 22, 5, 32];
        let fadd = [(5 << 16) | 129, 5, 10, 11, 12];
        let iadd = [(5 << 16) | 128, 6, 13, 14, 15];
        let fmul = [(5 << 16) | 133, 5, 16, 10, 12];
        let words: Vec<u32> = [
            &header[..],
            &capability,
            &decorate,
            &type_float,
            &fadd,
            &iadd,
            &fmul,
        ]
        .concat();
        let (out, n) = decorate_no_contraction(&words).unwrap();
        assert_eq!(n, 2);
        let expected: Vec<u32> = [
            &header[..],
            &capability,
            &decorate,
            &[(3 << 16) | 71, 10, 42],
            &[(3 << 16) | 71, 16, 42],
            &type_float,
            &fadd,
            &iadd,
            &fmul,
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn malformed_modules_are_refused() {
        assert!(decorate_no_contraction(&[1, 2, 3, 4, 5]).is_err());
        // An instruction claiming more words than there are.
        let words = [0x0723_0203, 0x0001_0300, 0, 20, 0, (9 << 16) | 17, 1];
        assert!(decorate_no_contraction(&words).is_err());
    }

    /// No kernel keeps an array in a function-scope variable (per-thread memory on a
    /// GPU unless its driver unrolls the loop that indexes it): the constant tables
    /// are indexed by constants, the pools by name (docs/performance.md). The scanner
    /// itself finds the one a runtime-indexed constant table gives.
    #[test]
    fn no_kernel_keeps_an_array_in_function_memory() {
        use crate::gpu::shaders::{CHAIN, KERNELS, STREAM};
        for k in KERNELS.iter().chain([&STREAM, &CHAIN]) {
            let t = translate(k.name, &crate::gpu::shaders::source(k), "main")
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(function_arrays(&t.words), 0, "{}", k.name);
        }
        let indexed = "const T = array<f32, 4>(1.0, 2.0, 3.0, 4.0);
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    out[g.x] = T[g.x % 4u];
}";
        let t = translate("indexed", indexed, "main").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(function_arrays(&t.words), 1);
    }

    /// Every kernel translates; each decorates float operations, and its layout
    /// starts with the `SimParams` uniform at binding 0.
    #[test]
    fn every_kernel_translates_with_decorations() {
        for k in crate::gpu::shaders::KERNELS {
            let t = translate(k.name, &crate::gpu::shaders::source(&k), "main")
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(t.decorated > 0, "{}: no float operation decorated", k.name);
            assert_eq!(t.layout[0].binding, 0, "{}", k.name);
            assert!(
                matches!(
                    t.layout[0].ty,
                    wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        ..
                    }
                ),
                "{}",
                k.name
            );
            assert_eq!(
                t.workgroup_size[0],
                crate::model::limits::WORKGROUP_SIZE,
                "{}",
                k.name
            );
        }
    }
}
