//! The wgpu/WGSL backend: one module per concern; the kernels themselves live in
//! `shaders/`, each with its CPU twin in `src/cpu/`.

mod backend;
mod context;
pub mod shaders;
pub mod stream;
pub mod strict;

pub use backend::{
    capped_fuse_steps, chunks_per_submit_from_env, dispatch_bounded_spike_groups,
    fuse_steps_from_env, hold_params_from_env, workgroup_size, GpuBackend, HostTimes, KernelTime,
    CHUNKS_PER_SUBMIT, FUSE_ENV, KERNEL_NAMES, MAX_TIMED_STEPS_PER_BATCH, SUBMIT_ENV,
};
pub use context::{
    choose_adapter, instance_descriptor, list_adapters, listing as adapter_listing, suite_adapters,
    sweep_adapters, usable_adapter, AdapterReport, GpuContext, SuiteAdapter, ADAPTER_ENV,
    STORAGE_BUFFERS_NEEDED,
};
