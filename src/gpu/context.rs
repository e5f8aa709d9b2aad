//! Adapter discovery and device creation. The device gets the adapter's own limits
//! (wgpu's defaults cap buffers far below what real GPUs bind), and every wgpu error
//! is captured (error scopes plus an uncaptured-error log) instead of panicking.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// Storage buffers the neuron-update kernel binds (the most of any kernel).
pub const STORAGE_BUFFERS_NEEDED: u32 = 20;

/// A wgpu device and queue with the adapter's description.
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Adapter description.
    pub info: wgpu::AdapterInfo,
    /// Limits granted to the device.
    pub limits: wgpu::Limits,
    /// Errors that escaped every error scope.
    pub uncaptured: Arc<Mutex<Vec<String>>>,
    /// Whether the device was created with `TIMESTAMP_QUERY` (only by
    /// [`GpuContext::with_timestamps`], and only where the adapter has it).
    pub timestamps: bool,
    /// Whether kernels run as SPIR-V with float contraction forbidden
    /// ([`super::strict`]): on Vulkan adapters with `PASSTHROUGH_SHADERS`, unless
    /// `KETASIM_GPU_CONTRACT=1`. Only then do CPU and GPU agree bit for bit on drivers
    /// that fuse multiply-adds (NVIDIA's do).
    pub strict_float: bool,
    /// Whether the propagation spreads a spike's synapses over several workgroups
    /// (`SimParams::spike_groups` as the network sets it) or gives each spike one:
    /// on by default except on CPU adapters (llvmpipe), which run workgroups on a
    /// few threads, so extra ones cost their setup and buy no parallelism (the quick
    /// suite's 10,000-neuron microcircuit took 23 s split, 2.2 s not, on 2 cores).
    /// `KETASIM_SPIKE_GROUPS` overrides both. No result depends on it.
    pub split_spikes: bool,
    /// Threads per workgroup of the per-neuron kernels (neuron update, signalling;
    /// the population sums keep `REDUCE_WORKGROUP_SIZE`): `WORKGROUP_SIZE` (64)
    /// unless set otherwise here or by `KETASIM_WG_SIZE`; a power of two from 32 to
    /// the adapter's invocations per workgroup. No result depends on it.
    pub workgroup_size: u32,
    /// Whether the kernels are compiled with every code path
    /// (`shaders::Features::ALL`) instead of only those the network can take
    /// (`shaders::Features::of`, the default): for measuring what leaving paths out
    /// saves. `KETASIM_GPU_ALL_PATHS=1` sets it too. No result depends on it.
    pub all_paths: bool,
    /// Whether the neuron update holds its population's parameters in registers
    /// across a chunk of fused steps instead of reading them in every step
    /// (`shaders::KernelConfig::reread_params`): off, so that more threads fit a
    /// GPU's register file; on here or with `KETASIM_GPU_HOLD_PARAMS=1`, for
    /// measuring what re-reading costs or saves. No result depends on it.
    pub hold_params: bool,
}

/// The process's one wgpu instance, made at first use and never dropped, behind a
/// lock that every use of it takes ([`with_instance`]).
///
/// One instance for all: the Vulkan loader and the drivers are loaded once, not again
/// for each simulation of a sweep, and no simulation pays for a new instance (40
/// one-step COBA simulations on llvmpipe: 4.3 s with an instance each, 3.3 s with
/// one). It also keeps wgpu's GL backend out of trouble when several threads open
/// devices (`sweep --adapters`): each instance initialises the process's one EGL
/// display and terminates it when dropped, under the feet of the others, and wgpu's
/// GL adapters make their EGL context current to enumerate, which fails ("BadAccess",
/// a panic in wgpu-hal) when another thread has it current. Hence the lock, held
/// while adapters are listed or requested and while the unused ones are dropped.
static INSTANCE: std::sync::OnceLock<std::sync::Mutex<wgpu::Instance>> = std::sync::OnceLock::new();

/// Call `f` with the process's instance, holding its lock (a panic while it was held
/// elsewhere does not leave it unusable: the instance holds no state of ketasim's).
fn with_instance<T>(f: impl FnOnce(&wgpu::Instance) -> T) -> T {
    let lock = INSTANCE.get_or_init(|| {
        // Mesa's device-select layer prints "XDG_RUNTIME_DIR is invalid" for every
        // instance on headless machines; it only reorders adapters, so switch it off
        // unless the user set it. Done once, before any instance (and so any driver
        // thread) exists.
        if std::env::var_os("NODEVICE_SELECT").is_none() {
            std::env::set_var("NODEVICE_SELECT", "1");
        }
        std::sync::Mutex::new(wgpu::Instance::new(instance_descriptor()))
    });
    let inst = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f(&inst)
}

/// The adapter `choose` picks from the reports of every adapter; the others are
/// dropped before the instance's lock is released.
fn pick_adapter(choose: impl FnOnce(&[AdapterReport]) -> Result<usize>) -> Result<wgpu::Adapter> {
    with_instance(|inst| {
        let mut adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
        let i = choose(&reports(&adapters))?;
        Ok(adapters.swap_remove(i))
    })
}

/// The instance's options: wgpu's defaults and environment variables, except that
/// wgpu's checking of indirect dispatches (`InstanceFlags::VALIDATION_INDIRECT_CALL`,
/// on by default in release builds too) is off unless `WGPU_VALIDATION_INDIRECT_CALL`
/// (any value but 0) asks for it.
///
/// That check rewrites every `dispatch_workgroups_indirect` as a one-invocation
/// dispatch that copies the arguments into a buffer of wgpu's own (zeroing them if
/// any exceeds the device's limit), two buffer barriers and the rebinding of the
/// caller's pipeline, then the dispatch itself. ketasim's propagation is dispatched
/// indirectly once per chunk, so that was one more dispatch and two more barriers in
/// every chunk of every run: about 100-200 µs per chunk on llvmpipe, where the
/// propagation's own work is often less (docs/performance.md, "The indirect
/// dispatch without wgpu's check").
///
/// The check guards nothing ketasim needs: the neuron update writes the arguments
/// itself, clamps both to `MAX_WG_DIM` (WebGPU's guaranteed minimum of
/// `max_compute_workgroups_per_dimension`), and `GpuBackend::new` sizes
/// `SimParams::spike_groups` so that the clamp never cuts a chunk's spikes
/// ([`super::backend::dispatch_bounded_spike_groups`]). Where the check did act, it
/// would have zeroed the dispatch: the chunk's spikes silently undelivered.
pub fn instance_descriptor() -> wgpu::InstanceDescriptor {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.flags
        .remove(wgpu::InstanceFlags::VALIDATION_INDIRECT_CALL);
    desc.with_env()
}

/// Environment variable choosing the adapter every GPU run takes
/// ([`choose_adapter`]): its index in `ketasim devices`, its PCI bus id, or a part of
/// its name. Unset, wgpu's preferred high-performance adapter is taken. On a node with
/// several GPUs, sweep shards can each take one
/// (`KETASIM_ADAPTER=K ketasim sweep ... --shard K/N`).
pub const ADAPTER_ENV: &str = "KETASIM_ADAPTER";

/// One adapter as `ketasim devices` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterReport {
    /// Position in wgpu's enumeration, as `ketasim devices` numbers it and
    /// [`ADAPTER_ENV`] takes it.
    pub index: usize,
    /// Adapter name.
    pub name: String,
    /// PCI bus id where the driver reports one (empty otherwise), as [`ADAPTER_ENV`]
    /// takes it: stable where several adapters share a name.
    pub pci_bus_id: String,
    /// Graphics API.
    pub backend: String,
    /// Discrete, integrated, CPU, ...
    pub device_type: String,
    /// Driver and version.
    pub driver: String,
    /// Largest storage-buffer binding (bytes).
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer (bytes).
    pub max_buffer_size: u64,
    /// Storage buffers per shader stage.
    pub max_storage_buffers_per_shader_stage: u32,
    /// Workgroups per dispatch dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// Invocations per workgroup.
    pub max_compute_invocations_per_workgroup: u32,
    /// Whether GPU timestamps can be taken inside passes.
    pub timestamp_queries: bool,
    /// Whether kernels run without float contraction there ([`super::strict`]), so
    /// that CPU and GPU agree bit for bit.
    pub strict_float: bool,
    /// Whether ketasim can run on it.
    pub usable: bool,
}

/// Every adapter wgpu finds.
pub fn list_adapters() -> Vec<AdapterReport> {
    with_instance(|inst| {
        reports(&pollster::block_on(
            inst.enumerate_adapters(wgpu::Backends::all()),
        ))
    })
}

/// The reports of `adapters`, numbered in their order.
fn reports(adapters: &[wgpu::Adapter]) -> Vec<AdapterReport> {
    adapters
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let info = a.get_info();
            let l = a.limits();
            AdapterReport {
                index,
                name: info.name.clone(),
                pci_bus_id: info.device_pci_bus_id.clone(),
                backend: format!("{:?}", info.backend),
                device_type: format!("{:?}", info.device_type),
                driver: format!("{} {}", info.driver, info.driver_info)
                    .trim()
                    .to_string(),
                max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
                max_buffer_size: l.max_buffer_size,
                max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
                max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
                max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
                timestamp_queries: a
                    .features()
                    .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
                strict_float: super::strict::wanted(info.backend, a.features()),
                usable: storage_shortfall(l.max_storage_buffers_per_shader_stage).is_none(),
            }
        })
        .collect()
}

impl AdapterReport {
    /// A discrete GPU's report with the given name, backend, PCI bus id and
    /// usability (32 storage buffers per stage, or 16), for tests of the choices
    /// made from `ketasim devices`.
    #[cfg(test)]
    pub(crate) fn synthetic(
        index: usize,
        name: &str,
        backend: &str,
        bus: &str,
        usable: bool,
    ) -> AdapterReport {
        AdapterReport {
            index,
            name: name.into(),
            pci_bus_id: bus.into(),
            backend: backend.into(),
            device_type: "DiscreteGpu".into(),
            driver: String::new(),
            max_storage_buffer_binding_size: 1 << 30,
            max_buffer_size: 1 << 30,
            max_storage_buffers_per_shader_stage: if usable { 32 } else { 16 },
            max_compute_workgroups_per_dimension: 65535,
            max_compute_invocations_per_workgroup: 1024,
            timestamp_queries: true,
            strict_float: backend == "Vulkan",
            usable,
        }
    }

    /// "[index] name (backend, device type[, PCI bus id])", as errors name it.
    pub fn label(&self) -> String {
        let bus = if self.pci_bus_id.is_empty() {
            String::new()
        } else {
            format!(", PCI {}", self.pci_bus_id)
        };
        format!(
            "[{}] {} ({}, {}{bus})",
            self.index, self.name, self.backend, self.device_type
        )
    }

    /// Why ketasim cannot run on it, or `None` where it can.
    pub fn unusable_because(&self) -> Option<String> {
        if self.usable {
            return None;
        }
        storage_shortfall(self.max_storage_buffers_per_shader_stage)
            .or_else(|| Some("it was reported unusable".into()))
    }
}

/// Why an adapter that binds `per_stage` storage buffers per shader stage cannot run
/// ketasim, or `None` where it can: the one rule behind [`AdapterReport::usable`] and
/// the check in [`GpuContext::new`].
fn storage_shortfall(per_stage: u32) -> Option<String> {
    (per_stage < STORAGE_BUFFERS_NEEDED).then(|| {
        format!(
            "it binds {per_stage} storage buffers per shader stage and ketasim's neuron update needs {STORAGE_BUFFERS_NEEDED}"
        )
    })
}

/// Adapter `i` of `list` if ketasim can run on it, else why not ("there is no adapter
/// 9", "[1] ... cannot run ketasim: ..."), followed by [`listing`]: for errors of
/// options that take an adapter's number.
pub fn usable_adapter(list: &[AdapterReport], i: usize) -> std::result::Result<usize, String> {
    match list.get(i) {
        None => Err(format!("there is no adapter {i}; {}", listing(list))),
        Some(a) => match a.unusable_because() {
            Some(why) => Err(format!(
                "{} cannot run ketasim: {why}; {}",
                a.label(),
                listing(list)
            )),
            None => Ok(i),
        },
    }
}

/// "`ketasim devices` lists [0] ...; [1] ..." for errors that name every adapter.
pub fn listing(list: &[AdapterReport]) -> String {
    if list.is_empty() {
        "wgpu finds no adapter".to_string()
    } else {
        let items: Vec<String> = list.iter().map(AdapterReport::label).collect();
        format!("`ketasim devices` lists {}", items.join("; "))
    }
}

/// Order of preference among device types for [`suite_adapters`]: discrete GPUs
/// first, software adapters last.
fn device_type_rank(device_type: &str) -> u8 {
    match device_type {
        "DiscreteGpu" => 0,
        "IntegratedGpu" => 1,
        "VirtualGpu" => 2,
        "Cpu" => 4,
        _ => 3,
    }
}

/// One adapter that `ketasim bench --suite` benches, and the adapters it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteAdapter {
    /// Its index in `ketasim devices`.
    pub index: usize,
    /// Usable adapters of the same name and device type that are not benched apart:
    /// identical cards, or the same GPU through another API (indices).
    pub same_as: Vec<usize>,
}

/// The adapters `ketasim bench --suite` runs on when [`ADAPTER_ENV`] is unset, so that
/// one run covers every kind of GPU the machine has ("every available backend"):
/// - only usable adapters;
/// - no software adapter (device type Cpu, such as llvmpipe) and no adapter on the
///   GL backend where some other usable adapter exists: a software adapter would
///   spend the suite's time on what the CPU backend does faster, and GL is wgpu's
///   secondary route to a GPU that Vulkan, Metal or Direct3D 12 also reach;
/// - one adapter per name and device type: identical cards, or one GPU listed by two
///   APIs, would give the same rows again (the others are listed in
///   [`SuiteAdapter::same_as`]; `KETASIM_ADAPTER` benches a particular one);
/// - discrete GPUs first, then integrated, virtual, other and software adapters,
///   each kind in `ketasim devices` order.
pub fn suite_adapters(list: &[AdapterReport]) -> Vec<SuiteAdapter> {
    let usable: Vec<&AdapterReport> = list.iter().filter(|a| a.usable).collect();
    let secondary = |a: &AdapterReport| a.device_type == "Cpu" || a.backend == "Gl";
    let has_primary = usable.iter().any(|a| !secondary(a));
    let mut kept: Vec<&AdapterReport> = usable
        .into_iter()
        .filter(|a| !(has_primary && secondary(a)))
        .collect();
    kept.sort_by_key(|a| (device_type_rank(&a.device_type), a.index));
    let mut out: Vec<(SuiteAdapter, &AdapterReport)> = Vec::new();
    for a in kept {
        match out
            .iter_mut()
            .find(|(_, b)| b.name == a.name && b.device_type == a.device_type)
        {
            Some((first, _)) => first.same_as.push(a.index),
            None => out.push((
                SuiteAdapter {
                    index: a.index,
                    same_as: Vec::new(),
                },
                a,
            )),
        }
    }
    out.into_iter().map(|(s, _)| s).collect()
}

/// The adapters `ketasim sweep --adapters all` runs simulations on at once: every
/// usable adapter of one graphics API, the first listed that reaches a usable GPU
/// (so that one GPU listed by Vulkan and Direct3D 12 is not used twice), identical
/// cards each taken; software adapters (llvmpipe) only where there is no real GPU
/// (they would take simulations that a GPU runs faster). In `ketasim devices` order.
pub fn sweep_adapters(list: &[AdapterReport]) -> Vec<usize> {
    let usable: Vec<&AdapterReport> = list.iter().filter(|a| a.usable).collect();
    let real: Vec<&AdapterReport> = usable
        .iter()
        .copied()
        .filter(|a| a.device_type != "Cpu")
        .collect();
    let pool = if real.is_empty() { usable } else { real };
    let Some(api) = pool.first().map(|a| a.backend.clone()) else {
        return Vec::new();
    };
    pool.iter()
        .filter(|a| a.backend == api)
        .map(|a| a.index)
        .collect()
}

/// The adapter `spec` (the value of [`ADAPTER_ENV`]) names among `list`: an index as
/// `ketasim devices` numbers them; else a PCI bus id, matched whole; else a part of
/// the name, ignoring case, where the usable adapters that match must be exactly one
/// (a GPU that the Vulkan and GL backends both list counts once if only one of them
/// can run ketasim). Errors name the variable, every adapter and what to give
/// instead, and refuse an adapter ketasim cannot run on (no fallback: a run asked
/// to use one adapter never silently uses another).
pub fn choose_adapter(list: &[AdapterReport], spec: &str) -> Result<usize> {
    let spec = spec.trim();
    let refuse = |what: String| {
        Err(Error::Capacity(format!(
            "{ADAPTER_ENV}={spec:?}: {what}; {}. Give an index, a PCI bus id or a part of a name, or unset it",
            listing(list)
        )))
    };
    let take = |a: &AdapterReport| match a.unusable_because() {
        None => Ok(a.index),
        Some(why) => refuse(format!("{} cannot run ketasim: {why}", a.label())),
    };
    if spec.is_empty() {
        return refuse("empty".into());
    }
    if let Ok(i) = spec.parse::<usize>() {
        return match list.get(i) {
            Some(a) => take(a),
            None => refuse(format!("there is no adapter {i}")),
        };
    }
    if let Some(a) = list
        .iter()
        .find(|a| !a.pci_bus_id.is_empty() && a.pci_bus_id.eq_ignore_ascii_case(spec))
    {
        return take(a);
    }
    let lower = spec.to_lowercase();
    let matching: Vec<&AdapterReport> = list
        .iter()
        .filter(|a| a.name.to_lowercase().contains(&lower))
        .collect();
    let usable: Vec<&&AdapterReport> = matching.iter().filter(|a| a.usable).collect();
    match (matching.len(), usable.len()) {
        (0, _) => refuse("no adapter's name or PCI bus id matches".into()),
        (_, 1) => Ok(usable[0].index),
        (1, 0) => take(matching[0]),
        (_, 0) => refuse(format!(
            "{} adapters match and none can run ketasim",
            matching.len()
        )),
        (_, n) => refuse(format!(
            "{n} usable adapters match ({}); give one's index or PCI bus id",
            usable
                .iter()
                .map(|a| a.index.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

impl GpuContext {
    /// The preferred (high-performance) adapter, or the one [`ADAPTER_ENV`] names, and
    /// a device with its full limits. No optional feature is requested.
    pub fn new() -> Result<GpuContext> {
        Self::open(None, false)
    }

    /// As [`GpuContext::new`], but the device also gets `TIMESTAMP_QUERY` when the
    /// adapter has it (for per-kernel timing, `GpuBackend::enable_kernel_timing`).
    /// An adapter without it gives the same context as `new` with `timestamps` false;
    /// this never fails for want of the feature.
    pub fn with_timestamps() -> Result<GpuContext> {
        Self::open(None, true)
    }

    /// A device on the adapter numbered `adapter` in `ketasim devices` (`None`: as
    /// [`GpuContext::new`] chooses), with `TIMESTAMP_QUERY` where `want_timestamps`
    /// and the adapter has it. An index that names no adapter, or one ketasim cannot
    /// run on, is an error naming every adapter (never another adapter instead).
    pub fn open(adapter: Option<usize>, want_timestamps: bool) -> Result<GpuContext> {
        let adapter = match adapter {
            Some(i) => pick_adapter(|list| usable_adapter(list, i).map_err(Error::Capacity))?,
            None => Self::default_adapter()?,
        };
        Self::create(adapter, want_timestamps)
    }

    /// The adapter [`ADAPTER_ENV`] names, or wgpu's preferred high-performance one.
    fn default_adapter() -> Result<wgpu::Adapter> {
        match std::env::var_os(ADAPTER_ENV) {
            Some(spec) => {
                let Some(spec) = spec.to_str() else {
                    return Err(Error::Capacity(format!(
                        "{ADAPTER_ENV}={spec:?} is not UTF-8: give an index from `ketasim devices`, a PCI bus id or a part of a name"
                    )));
                };
                pick_adapter(|list| choose_adapter(list, spec))
            }
            None => with_instance(|inst| {
                pollster::block_on(inst.request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    force_fallback_adapter: false,
                    compatible_surface: None,
                    apply_limit_buckets: false,
                }))
            })
            .map_err(|e| {
                Error::NoGpu(format!(
                    "{e}. On Linux without a GPU install Mesa's software Vulkan driver: apt-get install -y mesa-vulkan-drivers libvulkan1"
                ))
            }),
        }
    }

    fn create(adapter: wgpu::Adapter, want_timestamps: bool) -> Result<GpuContext> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        if let Some(why) = storage_shortfall(limits.max_storage_buffers_per_shader_stage) {
            // wgpu preferred an adapter ketasim cannot run on: name one it can. (The
            // adapter is dropped under the instance's lock, see `INSTANCE`.)
            with_instance(|_| drop(adapter));
            let others: Vec<String> = list_adapters()
                .iter()
                .filter(|a| a.usable)
                .map(|a| format!("{ADAPTER_ENV}={} for {}", a.index, a.label()))
                .collect();
            let hint = if others.is_empty() {
                "no other adapter can either".to_string()
            } else {
                format!("choose another with {}", others.join(" or "))
            };
            return Err(Error::NoGpu(format!(
                "adapter {} ({:?}) cannot run ketasim: {why}; {hint}",
                info.name, info.backend
            )));
        }
        let timestamps =
            want_timestamps && adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let strict_float = super::strict::wanted(info.backend, adapter.features());
        let split_spikes = info.device_type != wgpu::DeviceType::Cpu;
        let mut required_features = wgpu::Features::empty();
        if timestamps {
            required_features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        if strict_float {
            required_features |= wgpu::Features::PASSTHROUGH_SHADERS;
        }
        // Under the instance's lock too, with the adapter dropped in it: on GL both
        // make the adapter's EGL context current.
        let (device, queue) = with_instance(|_| {
            let device = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                label: Some("ketasim"),
                required_features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            }));
            drop(adapter);
            device
        })
        .map_err(|e| Error::NoGpu(format!("device request on {} failed: {e}", info.name)))?;
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            uncaptured,
            timestamps,
            strict_float,
            split_spikes,
            workgroup_size: crate::model::limits::WORKGROUP_SIZE,
            all_paths: false,
            hold_params: false,
        })
    }

    /// "name (backend, device type)".
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// Fail with the first error that escaped the error scopes, if any.
    pub fn check_uncaptured(&self) -> Result<()> {
        let errs = self
            .uncaptured
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        match errs.first() {
            Some(e) => Err(Error::Gpu(e.clone())),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(index: usize, name: &str, backend: &str, bus: &str, usable: bool) -> AdapterReport {
        AdapterReport::synthetic(index, name, backend, bus, usable)
    }

    /// Two identical GPUs on Vulkan, the first also on GL (unusable there), and a
    /// software adapter.
    fn node() -> Vec<AdapterReport> {
        vec![
            adapter(0, "NVIDIA H100 80GB HBM3", "Vulkan", "0000:19:00.0", true),
            adapter(1, "NVIDIA H100 80GB HBM3", "Vulkan", "0000:3b:00.0", true),
            adapter(2, "NVIDIA H100 80GB HBM3", "Gl", "", false),
            adapter(3, "llvmpipe (LLVM 15.0.6, 256 bits)", "Vulkan", "", true),
            adapter(4, "llvmpipe (LLVM 15.0.6, 256 bits)", "Gl", "", false),
        ]
    }

    fn refused(spec: &str) -> String {
        match choose_adapter(&node(), spec) {
            Ok(i) => panic!("{spec:?} chose adapter {i}"),
            Err(e) => e.to_string(),
        }
    }

    /// `node()` with llvmpipe reported as the software adapter it is.
    fn node_with_software() -> Vec<AdapterReport> {
        let mut list = node();
        for a in list.iter_mut().filter(|a| a.name.starts_with("llvmpipe")) {
            a.device_type = "Cpu".into();
        }
        list
    }

    fn picks(list: &[AdapterReport]) -> Vec<(usize, Vec<usize>)> {
        suite_adapters(list)
            .into_iter()
            .map(|p| (p.index, p.same_as))
            .collect()
    }

    #[test]
    fn the_suite_benches_each_gpu_model_once_and_software_only_alone() {
        // Two identical H100s: one benched, standing for the other; llvmpipe and the
        // unusable GL listings are left out.
        assert_eq!(picks(&node_with_software()), vec![(0, vec![1])]);
        // A laptop: integrated and discrete GPUs both benched, the discrete one
        // first, the software adapter left out.
        let mut laptop = vec![
            adapter(
                0,
                "Intel(R) Graphics (RPL-P)",
                "Vulkan",
                "0000:00:02.0",
                true,
            ),
            adapter(
                1,
                "NVIDIA GeForce RTX 4090 Laptop GPU",
                "Vulkan",
                "0000:01:00.0",
                true,
            ),
            adapter(2, "llvmpipe (LLVM 15.0.6, 256 bits)", "Vulkan", "", true),
        ];
        laptop[0].device_type = "IntegratedGpu".into();
        laptop[2].device_type = "Cpu".into();
        assert_eq!(picks(&laptop), vec![(1, vec![]), (0, vec![])]);
        // One GPU through Vulkan and Direct3D 12 counts once (the first listed); a
        // usable GL listing under another name is left out while another API
        // reaches a GPU.
        let windows = vec![
            adapter(0, "NVIDIA GeForce RTX 4090", "Vulkan", "", true),
            adapter(1, "NVIDIA GeForce RTX 4090", "Dx12", "", true),
            adapter(2, "NVIDIA GeForce RTX 4090/PCIe/SSE2", "Gl", "", true),
        ];
        assert_eq!(picks(&windows), vec![(0, vec![1])]);
        // This machine: llvmpipe alone is benched, on Vulkan (GL cannot run it).
        let mut software = node_with_software();
        software.retain(|a| a.name.starts_with("llvmpipe"));
        assert_eq!(picks(&software), vec![(3, vec![])]);
        // Only GL usable: benched, for want of anything else.
        let mut gl = windows.clone();
        gl.retain(|a| a.backend == "Gl");
        assert_eq!(picks(&gl), vec![(2, vec![])]);
        // Nothing usable: nothing to bench (the suite then reports why).
        let mut none = node();
        none.retain(|a| !a.usable);
        assert!(picks(&none).is_empty());
        assert!(picks(&[]).is_empty());
    }

    #[test]
    fn a_sweep_on_all_adapters_takes_every_gpu_of_one_api() {
        // Both H100s (identical cards are both used), not the software adapter.
        assert_eq!(sweep_adapters(&node_with_software()), vec![0, 1]);
        // One GPU listed by Vulkan and Direct3D 12: used once.
        let windows = vec![
            adapter(0, "NVIDIA GeForce RTX 4090", "Vulkan", "", true),
            adapter(1, "NVIDIA GeForce RTX 4090", "Dx12", "", true),
            adapter(2, "AMD Radeon RX 7900 XTX", "Vulkan", "", true),
            adapter(3, "AMD Radeon RX 7900 XTX", "Dx12", "", true),
        ];
        assert_eq!(sweep_adapters(&windows), vec![0, 2]);
        // Software alone: used.
        let mut software = node_with_software();
        software.retain(|a| a.name.starts_with("llvmpipe"));
        assert_eq!(sweep_adapters(&software), vec![3]);
        let mut none = node();
        none.retain(|a| !a.usable);
        assert!(sweep_adapters(&none).is_empty());
    }

    #[test]
    fn one_rule_says_whether_an_adapter_is_usable() {
        assert_eq!(storage_shortfall(STORAGE_BUFFERS_NEEDED), None);
        let why = storage_shortfall(STORAGE_BUFFERS_NEEDED - 1).expect("too few");
        assert!(
            why.contains("19 storage buffers") && why.contains("needs 20"),
            "{why}"
        );
        let gl = &node()[2];
        assert_eq!(gl.unusable_because(), storage_shortfall(16));
        assert_eq!(node()[0].unusable_because(), None);
    }

    #[test]
    fn an_index_a_bus_id_or_a_unique_usable_name_chooses() {
        let list = node();
        assert_eq!(choose_adapter(&list, "1").ok(), Some(1));
        assert_eq!(choose_adapter(&list, " 0 ").ok(), Some(0));
        assert_eq!(choose_adapter(&list, "0000:3B:00.0").ok(), Some(1));
        // Vulkan and GL both list llvmpipe; only the Vulkan one can run ketasim.
        assert_eq!(choose_adapter(&list, "LLVMpipe").ok(), Some(3));
    }

    #[test]
    fn ambiguous_unknown_or_unusable_choices_are_refused_naming_every_adapter() {
        for (spec, why) in [
            ("h100", "2 usable adapters match (0, 1)"),
            ("9", "there is no adapter 9"),
            ("radeon", "no adapter's name or PCI bus id matches"),
            ("2", "cannot run ketasim: it binds 16 storage buffers"),
            ("", "empty"),
        ] {
            let err = refused(spec);
            assert!(err.contains(why), "{spec:?}: {err}");
            assert!(err.contains(ADAPTER_ENV), "{spec:?}: {err}");
            assert!(
                err.contains("[1] NVIDIA H100 80GB HBM3 (Vulkan, DiscreteGpu, PCI 0000:3b:00.0)")
                    && err.contains("[4] llvmpipe"),
                "{spec:?} does not list the adapters: {err}"
            );
        }
        assert!(choose_adapter(&[], "0")
            .unwrap_err()
            .to_string()
            .contains("wgpu finds no adapter"));
        let mut only_gl = node();
        only_gl.retain(|a| a.backend == "Gl");
        assert!(choose_adapter(&only_gl, "llvmpipe")
            .unwrap_err()
            .to_string()
            .contains("cannot run ketasim"));
        assert!(choose_adapter(&only_gl, "b")
            .unwrap_err()
            .to_string()
            .contains("2 adapters match and none can run ketasim"));
    }
}
