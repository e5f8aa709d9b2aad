//! Memory-bandwidth probe (STREAM's Copy, McCalpin 1995) on either backend: the
//! bandwidth a plain copy reaches through the same code path as the simulation,
//! which `bench --suite` reports beside every network and sets the GPU's neuron
//! update against (`SuiteRow::neuron_update_stream_fraction`). A pass reads and
//! writes every byte of one buffer once, so it moves twice the buffer's size. The
//! copy is checked against its source, so a probe that did not do its work fails
//! instead of reporting a speed.

use std::time::Instant;

use glam::UVec2;
use serde::Serialize;

use crate::cpu::stream::{copy, Element};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;

/// One backend's probe.
#[derive(Debug, Clone, Serialize)]
pub struct StreamResult {
    /// "cpu" or "gpu".
    pub backend: String,
    /// Adapter description (the CPU backend's thread count on the CPU).
    pub adapter: String,
    /// Bytes of one buffer: each pass reads it and writes a second one as large.
    pub buffer_bytes: u64,
    /// Timed passes (after one untimed).
    pub passes: u32,
    /// "gpu timestamps" (the kernel alone), "wall clock with submission" (a GPU
    /// without timestamp queries) or "wall clock" (the CPU).
    pub timing: String,
    /// Bytes moved per second in the fastest pass (GB/s, 1e9 bytes).
    pub best_gb_per_s: f64,
    /// Bytes moved per second in the median pass (GB/s).
    pub median_gb_per_s: f64,
}

/// The source pattern: Threefry words keyed by the element index, so that a copy
/// that misses, shifts or repeats elements cannot match it.
fn pattern(elements: usize) -> Vec<Element> {
    let key = UVec2::new(0x5354_5245, 0x414d);
    (0..elements as u32)
        .map(|i| {
            let a = crate::rng::threefry2x32(UVec2::new(i, 0), key);
            let b = crate::rng::threefry2x32(UVec2::new(i, 1), key);
            [a.x, a.y, b.x, b.y]
        })
        .collect()
}

fn elements_of(buffer_bytes: u64, passes: u32) -> Result<usize> {
    let elements = buffer_bytes / std::mem::size_of::<Element>() as u64;
    if elements == 0 || passes == 0 {
        return Err(Error::Capacity(format!(
            "the bandwidth probe needs at least one 16-byte element and one pass (got {buffer_bytes} bytes, {passes} passes)"
        )));
    }
    usize::try_from(elements).map_err(|_| {
        Error::Capacity(format!(
            "the bandwidth probe's buffer of {buffer_bytes} bytes does not fit this host's address space"
        ))
    })
}

fn result(
    backend: &str,
    adapter: String,
    bytes: u64,
    timing: &str,
    mut pass_s: Vec<f64>,
) -> StreamResult {
    pass_s.sort_by(f64::total_cmp);
    let gb = |s: f64| 2.0 * bytes as f64 / s.max(1e-12) * 1e-9;
    StreamResult {
        backend: backend.into(),
        adapter,
        buffer_bytes: bytes,
        passes: pass_s.len() as u32,
        timing: timing.into(),
        best_gb_per_s: gb(pass_s[0]),
        median_gb_per_s: gb(pass_s[pass_s.len() / 2]),
    }
}

fn check(src: &[Element], dst: &[Element], backend: &str) -> Result<()> {
    match src.iter().zip(dst).position(|(a, b)| a != b) {
        None if src.len() == dst.len() => Ok(()),
        at => Err(Error::Internal(format!(
            "the {backend} bandwidth probe's copy differs from its source (element {}): not timing it",
            at.unwrap_or(src.len().min(dst.len()))
        ))),
    }
}

/// The probe on the CPU backend's threads (`KETASIM_THREADS`, else rayon's pool):
/// `passes` timed copies of a `buffer_bytes` buffer (rounded down to 16-byte
/// elements) after one untimed.
pub fn measure_cpu(buffer_bytes: u64, passes: u32) -> Result<StreamResult> {
    let n = elements_of(buffer_bytes, passes)?;
    let src = pattern(n);
    let mut dst = vec![[0u32; 4]; n];
    let pool = crate::cpu::thread_pool(crate::cpu::threads_from_env()?)?;
    let threads = pool
        .as_ref()
        .map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
    let run = |dst: &mut [Element]| match &pool {
        Some(p) => p.install(|| copy(&src, dst)),
        None => copy(&src, dst),
    };
    run(&mut dst);
    let mut pass_s = Vec::with_capacity(passes as usize);
    for _ in 0..passes {
        dst.fill([0; 4]);
        let t0 = Instant::now();
        run(&mut dst);
        pass_s.push(t0.elapsed().as_secs_f64());
    }
    check(&src, &dst, "cpu")?;
    let bytes = (n * std::mem::size_of::<Element>()) as u64;
    Ok(result(
        "cpu",
        format!("cpu reference backend ({threads} threads)"),
        bytes,
        "wall clock",
        pass_s,
    ))
}

/// The probe on `ctx`'s device (`shaders/stream.wgsl`): `passes` timed passes over a
/// buffer of `buffer_bytes`, capped at the device's storage binding and rounded down
/// to 16-byte elements.
pub fn measure_gpu(ctx: &GpuContext, buffer_bytes: u64, passes: u32) -> Result<StreamResult> {
    let limit = crate::gpu::stream::max_buffer_bytes(ctx);
    let n = elements_of(buffer_bytes.min(limit), passes)?;
    let src = pattern(n);
    let t = crate::gpu::stream::copy_timed(ctx, &src, passes)?;
    check(&src, &t.dst, "gpu")?;
    let bytes = (n * std::mem::size_of::<Element>()) as u64;
    let timing = if t.timestamps {
        "gpu timestamps"
    } else {
        "wall clock with submission"
    };
    Ok(result("gpu", ctx.describe(), bytes, timing, t.pass_s))
}

/// The dispatch probe on one device (`shaders/chain.wgsl`): the time of a dispatch
/// that depends on the one before it, with nothing to compute. A step of the
/// simulation is at least two such dispatches (the neuron update, then the
/// propagation, dispatched indirectly), so this is the floor under a step's time on
/// the device, whatever the network's size.
#[derive(Debug, Clone, Serialize)]
pub struct DispatchResult {
    /// "gpu".
    pub backend: String,
    /// Adapter description.
    pub adapter: String,
    /// Dependent dispatches per pass.
    pub dispatches: u32,
    /// Timed passes of each kind (after one untimed).
    pub passes: u32,
    /// "gpu timestamps" (the passes alone) or "wall clock with submission".
    pub timing: String,
    /// µs per direct dispatch, median pass.
    pub direct_us: f64,
    /// µs per direct dispatch, fastest pass.
    pub direct_best_us: f64,
    /// µs per indirect dispatch (arguments read from a buffer, as the propagation's
    /// are), median pass.
    pub indirect_us: f64,
    /// µs per indirect dispatch, fastest pass.
    pub indirect_best_us: f64,
}

/// The counter must have advanced once per dispatch; otherwise the probe did not do
/// its work and is not timed.
fn check_count(count: u32, expected: u64) -> Result<()> {
    if u64::from(count) == expected {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "the dispatch probe's counter reached {count}, not the {expected} dispatches it was given: not timing it"
        )))
    }
}

/// µs per dispatch of the median and the fastest pass of `dispatches` each.
fn per_dispatch_us(mut pass_s: Vec<f64>, dispatches: u32) -> (f64, f64) {
    pass_s.sort_by(f64::total_cmp);
    let us = |s: f64| s * 1e6 / f64::from(dispatches);
    (us(pass_s[pass_s.len() / 2]), us(pass_s[0]))
}

/// The dispatch probe on `ctx`'s device: `passes` timed passes (1 to
/// `gpu::stream::MAX_CHAIN_PASSES`) of `dispatches` dependent dispatches, direct and
/// indirect.
pub fn measure_dispatch(ctx: &GpuContext, dispatches: u32, passes: u32) -> Result<DispatchResult> {
    let t = crate::gpu::stream::dispatch_chain_timed(ctx, dispatches, passes)?;
    check_count(t.count, t.expected)?;
    let (direct_us, direct_best_us) = per_dispatch_us(t.direct_s, dispatches);
    let (indirect_us, indirect_best_us) = per_dispatch_us(t.indirect_s, dispatches);
    Ok(DispatchResult {
        backend: "gpu".into(),
        adapter: ctx.describe(),
        dispatches,
        passes,
        timing: if t.timestamps {
            "gpu timestamps"
        } else {
            "wall clock with submission"
        }
        .into(),
        direct_us,
        direct_best_us,
        indirect_us,
        indirect_best_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter that missed or repeated dispatches is refused, not timed.
    #[test]
    fn a_wrong_dispatch_count_is_refused() {
        assert!(check_count(300, 300).is_ok());
        let e = check_count(299, 300).unwrap_err().to_string();
        assert!(e.contains("299") && e.contains("300"), "{e}");
        assert!(check_count(301, 300).is_err());
        // A counter that wrapped cannot pass for the count.
        assert!(check_count(4, (1u64 << 32) + 4).is_err());
        assert_eq!(per_dispatch_us(vec![3e-3, 1e-3, 2e-3], 100), (20.0, 10.0));
    }

    /// A copy that misses, shifts or truncates the source is refused, not timed.
    #[test]
    fn a_wrong_copy_is_refused() {
        let src = pattern(1000);
        assert!(check(&src, &src.clone(), "cpu").is_ok());
        let mut shifted = src.clone();
        shifted.rotate_left(1);
        assert!(check(&src, &shifted, "cpu").is_err());
        let mut one = src.clone();
        one[999][3] ^= 1;
        let e = check(&src, &one, "gpu").unwrap_err().to_string();
        assert!(e.contains("element 999"), "{e}");
        assert!(check(&src, &src[..999], "cpu").is_err());
        // The pattern repeats nowhere, so a copy of the wrong element shows.
        let distinct: std::collections::HashSet<_> = src.iter().collect();
        assert_eq!(distinct.len(), src.len());
    }
}
