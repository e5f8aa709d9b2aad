//! The memory-bandwidth probe on the GPU: `shaders/stream.wgsl` built and dispatched
//! as the simulation's kernels are, over two buffers, each pass in a compute pass of
//! its own and timed with timestamp queries where the device has them (otherwise by
//! the wall clock of its submission and wait). Used through [`crate::stream`].

use std::time::Instant;

use super::backend::{grid_for, init_buffer, map_read, staging, workgroup_size, STORAGE};
use super::shaders::{self, Division};
use super::{strict, GpuContext};
use crate::cpu::stream::Element;
use crate::error::{Error, Result};

/// What [`copy_timed`] gives: the copy and the time of each pass.
pub struct TimedCopy {
    /// `dst` after the last pass (to check against the source).
    pub dst: Vec<Element>,
    /// Seconds of each pass.
    pub pass_s: Vec<f64>,
    /// Whether the times are GPU timestamps (else wall clock with the submission).
    pub timestamps: bool,
}

/// Timestamp pairs around compute passes: a query set with its resolve and read-back
/// buffers, for the probes' passes.
struct PassTimer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    out: wgpu::Buffer,
    pairs: u32,
}

impl PassTimer {
    fn new(device: &wgpu::Device, label: &str, pairs: u32) -> PassTimer {
        let queries = 2 * pairs;
        let bytes = queries as u64 * wgpu::QUERY_SIZE as u64;
        PassTimer {
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some(label),
                ty: wgpu::QueryType::Timestamp,
                count: queries,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            out: staging(device, label, bytes),
            pairs,
        }
    }

    /// The timestamps at the beginning and end of a pass, as pair `pair`.
    fn writes(&self, pair: u32) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(2 * pair),
            end_of_pass_write_index: Some(2 * pair + 1),
        }
    }

    /// Resolve every pair at the end of `enc`, submit it, and give each pair's
    /// seconds, in pair order.
    fn finish(&self, ctx: &GpuContext, mut enc: wgpu::CommandEncoder) -> Result<Vec<f64>> {
        enc.resolve_query_set(&self.set, 0..2 * self.pairs, &self.resolve, 0);
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.out, 0, self.resolve.size());
        ctx.queue.submit([enc.finish()]);
        let raw: Vec<u64> = bytemuck::pod_collect_to_vec(&map_read(&ctx.device, &self.out)?);
        let period_ns = ctx.queue.get_timestamp_period() as f64;
        Ok(raw
            .chunks_exact(2)
            .map(|p| p[1].saturating_sub(p[0]) as f64 * period_ns * 1e-9)
            .collect())
    }
}

/// The largest buffer the probe can copy on `ctx`'s device (bytes): one storage
/// binding, within one buffer.
pub fn max_buffer_bytes(ctx: &GpuContext) -> u64 {
    ctx.limits
        .max_storage_buffer_binding_size
        .min(ctx.limits.max_buffer_size)
}

/// Copy `src` into a second device buffer with the stream kernel `passes` times
/// (after one untimed pass), and read the copy back. `src` must fit one storage
/// binding of the device (an error naming the limit otherwise).
pub fn copy_timed(ctx: &GpuContext, src: &[Element], passes: u32) -> Result<TimedCopy> {
    let device = &ctx.device;
    let bytes = std::mem::size_of_val(src) as u64;
    let limit = max_buffer_bytes(ctx);
    if bytes == 0 || bytes > limit {
        return Err(Error::Capacity(format!(
            "the bandwidth probe's buffer of {bytes} bytes must be non-empty and within the device's storage binding of {limit} bytes"
        )));
    }
    let n = src.len() as u32;
    let wg = workgroup_size(
        ctx.workgroup_size,
        ctx.limits.max_compute_invocations_per_workgroup,
    )?;
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let valid = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let pipeline =
        strict::compute_pipeline(device, "stream", ctx.strict_float, Division::EXACT, |d| {
            shaders::source_for(
                &shaders::STREAM,
                d,
                &shaders::KernelConfig {
                    wg_size: wg,
                    ..shaders::KernelConfig::DEFAULT
                },
            )
        })?;
    let src_buf = init_buffer(device, "stream_src", bytemuck::cast_slice(src), STORAGE);
    let dst_buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("stream_dst"),
        size: bytes,
        usage: STORAGE,
        mapped_at_creation: false,
    });
    let read = staging(device, "stream_staging", bytes);
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("stream"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 2,
                resource: src_buf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: dst_buf.as_entire_binding(),
            },
        ],
    });
    let timestamps = ctx.timestamps;
    let timer = timestamps.then(|| PassTimer::new(device, "stream_timestamps", passes.max(1)));
    if let Some(e) = pollster::block_on(valid.pop()) {
        return Err(Error::Gpu(format!(
            "setting up the bandwidth probe failed: {e}"
        )));
    }
    if let Some(e) = pollster::block_on(oom.pop()) {
        return Err(Error::Capacity(format!(
            "the device ran out of memory for the bandwidth probe's two buffers of {bytes} bytes: {e}"
        )));
    }
    let (gx, gy) = grid_for(n, wg);
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let dispatch = |enc: &mut wgpu::CommandEncoder,
                    ts: Option<wgpu::ComputePassTimestampWrites>| {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("stream"),
            timestamp_writes: ts,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(gx, gy, 1);
    };
    let wait = || {
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device failed: {e}")))
    };
    // One untimed pass first: first dispatches carry one-off costs.
    let mut enc = device.create_command_encoder(&Default::default());
    dispatch(&mut enc, None);
    ctx.queue.submit([enc.finish()]);
    wait()?;
    let mut pass_s = Vec::with_capacity(passes as usize);
    match &timer {
        Some(timer) => {
            let mut enc = device.create_command_encoder(&Default::default());
            for p in 0..passes {
                dispatch(&mut enc, Some(timer.writes(p)));
            }
            pass_s = timer.finish(ctx, enc)?;
            pass_s.truncate(passes as usize);
        }
        None => {
            for _ in 0..passes {
                let t0 = Instant::now();
                let mut enc = device.create_command_encoder(&Default::default());
                dispatch(&mut enc, None);
                ctx.queue.submit([enc.finish()]);
                wait()?;
                pass_s.push(t0.elapsed().as_secs_f64());
            }
        }
    }
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(&dst_buf, 0, &read, 0, bytes);
    ctx.queue.submit([enc.finish()]);
    let dst: Vec<Element> = bytemuck::pod_collect_to_vec(&map_read(device, &read)?);
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::Gpu(format!("the bandwidth probe failed: {e}")));
    }
    ctx.check_uncaptured()?;
    Ok(TimedCopy {
        dst,
        pass_s,
        timestamps,
    })
}

/// What [`dispatch_chain_timed`] gives: the counter and the time of each pass.
pub struct TimedChain {
    /// The counter after every pass: one per dispatch, untimed passes included.
    pub count: u32,
    /// Dispatches the counter should have seen.
    pub expected: u64,
    /// Seconds of each pass of direct dispatches.
    pub direct_s: Vec<f64>,
    /// Seconds of each pass of indirect dispatches.
    pub indirect_s: Vec<f64>,
    /// Whether the times are GPU timestamps (else wall clock with the submission).
    pub timestamps: bool,
}

/// Most timed passes of [`dispatch_chain_timed`]: two kinds, two timestamps each, in
/// one query set.
pub const MAX_CHAIN_PASSES: u32 = wgpu::QUERY_SET_MAX_QUERIES / 4;

/// `passes` timed passes (after one untimed) of `dispatches` dependent dispatches of
/// `shaders/chain.wgsl`, first direct (one workgroup each), then indirect (one
/// workgroup each, read from a buffer, as the propagation is dispatched), each pass
/// in a compute pass of its own; and the counter the dispatches advanced.
pub fn dispatch_chain_timed(ctx: &GpuContext, dispatches: u32, passes: u32) -> Result<TimedChain> {
    if dispatches == 0 || passes == 0 || passes > MAX_CHAIN_PASSES {
        return Err(Error::Capacity(format!(
            "the dispatch probe needs at least one dispatch and 1 to {MAX_CHAIN_PASSES} passes (got {dispatches} dispatches, {passes} passes)"
        )));
    }
    let device = &ctx.device;
    let wg = workgroup_size(
        ctx.workgroup_size,
        ctx.limits.max_compute_invocations_per_workgroup,
    )?;
    let valid = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let pipeline =
        strict::compute_pipeline(device, "chain", ctx.strict_float, Division::EXACT, |d| {
            shaders::source_for(
                &shaders::CHAIN,
                d,
                &shaders::KernelConfig {
                    wg_size: wg,
                    ..shaders::KernelConfig::DEFAULT
                },
            )
        })?;
    let counter = init_buffer(device, "chain_counter", &[0u8; 4], STORAGE);
    let args = init_buffer(
        device,
        "chain_args",
        bytemuck::cast_slice(&[1u32, 1, 1]),
        wgpu::BufferUsages::INDIRECT,
    );
    let read = staging(device, "chain_staging", 4);
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("chain"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 2,
            resource: counter.as_entire_binding(),
        }],
    });
    let kinds = [false, true];
    let timer = ctx
        .timestamps
        .then(|| PassTimer::new(device, "chain_timestamps", kinds.len() as u32 * passes));
    if let Some(e) = pollster::block_on(valid.pop()) {
        return Err(Error::Gpu(format!(
            "setting up the dispatch probe failed: {e}"
        )));
    }
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let pass = |enc: &mut wgpu::CommandEncoder,
                indirect: bool,
                ts: Option<wgpu::ComputePassTimestampWrites>| {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("chain"),
            timestamp_writes: ts,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        for _ in 0..dispatches {
            if indirect {
                pass.dispatch_workgroups_indirect(&args, 0);
            } else {
                pass.dispatch_workgroups(1, 1, 1);
            }
        }
    };
    let wait = || {
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device failed: {e}")))
    };
    // One untimed pass of each kind first: first dispatches carry one-off costs.
    let mut enc = device.create_command_encoder(&Default::default());
    for indirect in kinds {
        pass(&mut enc, indirect, None);
    }
    ctx.queue.submit([enc.finish()]);
    wait()?;
    let mut times = [Vec::new(), Vec::new()];
    match &timer {
        Some(timer) => {
            let mut enc = device.create_command_encoder(&Default::default());
            for p in 0..passes {
                for (k, indirect) in kinds.into_iter().enumerate() {
                    pass(&mut enc, indirect, Some(timer.writes(2 * p + k as u32)));
                }
            }
            // Pair 2p + k is pass p of kind k.
            for (pair, s) in timer.finish(ctx, enc)?.into_iter().enumerate() {
                times[pair % 2].push(s);
            }
        }
        None => {
            for _ in 0..passes {
                for (k, indirect) in kinds.into_iter().enumerate() {
                    let t0 = Instant::now();
                    let mut enc = device.create_command_encoder(&Default::default());
                    pass(&mut enc, indirect, None);
                    ctx.queue.submit([enc.finish()]);
                    wait()?;
                    times[k].push(t0.elapsed().as_secs_f64());
                }
            }
        }
    }
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(&counter, 0, &read, 0, 4);
    ctx.queue.submit([enc.finish()]);
    let raw: Vec<u32> = bytemuck::pod_collect_to_vec(&map_read(device, &read)?);
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::Gpu(format!("the dispatch probe failed: {e}")));
    }
    ctx.check_uncaptured()?;
    let [direct_s, indirect_s] = times;
    Ok(TimedChain {
        count: raw.first().copied().unwrap_or(0),
        expected: u64::from(dispatches) * kinds.len() as u64 * (u64::from(passes) + 1),
        direct_s,
        indirect_s,
        timestamps: ctx.timestamps,
    })
}
