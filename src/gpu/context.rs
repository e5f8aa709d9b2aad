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

fn instance() -> wgpu::Instance {
    // Mesa's device-select layer prints "XDG_RUNTIME_DIR is invalid" for every
    // instance on headless machines; it only reorders adapters, so switch it off
    // unless the user set it.
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY-free in edition 2021; done before any other thread touches the env.
        std::env::set_var("NODEVICE_SELECT", "1");
    }
    wgpu::Instance::new(instance_descriptor())
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

/// One adapter as `ketasim devices` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterReport {
    /// Adapter name.
    pub name: String,
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
    let inst = instance();
    let adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
    adapters
        .iter()
        .map(|a| {
            let info = a.get_info();
            let l = a.limits();
            AdapterReport {
                name: info.name.clone(),
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
                usable: l.max_storage_buffers_per_shader_stage >= STORAGE_BUFFERS_NEEDED,
            }
        })
        .collect()
}

impl GpuContext {
    /// The preferred (high-performance) adapter and a device with its full limits.
    /// No optional feature is requested.
    pub fn new() -> Result<GpuContext> {
        Self::create(false)
    }

    /// As [`GpuContext::new`], but the device also gets `TIMESTAMP_QUERY` when the
    /// adapter has it (for per-kernel timing, `GpuBackend::enable_kernel_timing`).
    /// An adapter without it gives the same context as `new` with `timestamps` false;
    /// this never fails for want of the feature.
    pub fn with_timestamps() -> Result<GpuContext> {
        Self::create(true)
    }

    fn create(want_timestamps: bool) -> Result<GpuContext> {
        let inst = instance();
        let adapter = pollster::block_on(inst.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|e| {
            Error::NoGpu(format!(
                "{e}. On Linux without a GPU install Mesa's software Vulkan driver: apt-get install -y mesa-vulkan-drivers libvulkan1"
            ))
        })?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        if limits.max_storage_buffers_per_shader_stage < STORAGE_BUFFERS_NEEDED {
            return Err(Error::NoGpu(format!(
                "adapter {} ({:?}) binds {} storage buffers per shader stage; ketasim needs {STORAGE_BUFFERS_NEEDED}",
                info.name, info.backend, limits.max_storage_buffers_per_shader_stage
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
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ketasim"),
            required_features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
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
