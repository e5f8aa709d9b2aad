//! Procedural connectivity, regenerated from the seed at every presynaptic spike
//! (as GeNN's procedural connectivity does: Knight & Nowotny 2021, Nat Comput Sci
//! 1:136), so static synapses need no per-synapse memory. The WGSL twin is
//! `propagate.wgsl`; both call these exact operations.
//!
//! A projection's postsynaptic range (fixed probability) or its out-degree (fixed
//! out-degree) is split into `PROC_SPLIT` slices, one per thread of the workgroup that
//! handles a spike; each slice has its own random stream.

use glam::UVec2;

use super::layout::{ProjParams, RULE_OUTDEGREE, RULE_PROBABILITY};
use super::limits::{PROC_SPLIT, SYN_REDRAWS};
use crate::rng::{ln_f32, normal_f32, threefry2x32, uniform_open0, STREAM_SYN};

/// High 32 bits of the 64-bit product `a * b`, from 16-bit halves (WGSL has no 64-bit
/// integers). Used to map a random word onto `0..b` without modulo bias of float
/// rounding: `mul_hi(r, b)` is uniform on `0..b` for uniform `r`.
pub fn mul_hi_u32(a: u32, b: u32) -> u32 {
    let (a_lo, a_hi) = (a & 0xffff, a >> 16);
    let (b_lo, b_hi) = (b & 0xffff, b >> 16);
    let lo_lo = a_lo * b_lo;
    let hi_lo = a_hi * b_lo;
    let lo_hi = a_lo * b_hi;
    let hi_hi = a_hi * b_hi;
    let cross = (lo_lo >> 16) + (hi_lo & 0xffff) + (lo_hi & 0xffff);
    hi_hi + (hi_lo >> 16) + (lo_hi >> 16) + (cross >> 16)
}

/// Bounds `[lo, hi)` of slice `tid` of `0..size` split into `PROC_SPLIT` near-equal
/// parts (no 32-bit overflow for any size).
pub fn slice_bounds(size: u32, tid: u32) -> (u32, u32) {
    let base = size / PROC_SPLIT;
    let rem = size % PROC_SPLIT;
    let lo = base * tid + tid.min(rem);
    let hi = lo + base + u32::from(tid < rem);
    (lo, hi)
}

/// The random key of stream `stream` of a projection: `(seed_lo, seed_hi ^ stream)`
/// with the seed of the projection's own network (`rng::key`'s layout).
pub fn proj_key(proj: &ProjParams, stream: u32) -> UVec2 {
    UVec2::new(proj.seed_lo, proj.seed_hi ^ stream)
}

/// Calls `deliver(post_local)` for every target of presynaptic neuron `pre_local`
/// handled by slice `tid` of a procedural projection.
pub fn for_each_target(proj: &ProjParams, pre_local: u32, tid: u32, mut deliver: impl FnMut(u32)) {
    for_each_synapse(proj, pre_local, tid, |t, _| deliver(t));
}

/// Whether a projection draws a weight or a delay per synapse ([`synapse_draw`]).
pub fn has_random_synapses(proj: &ProjParams) -> bool {
    proj.w_sd_fixed > 0.0 || proj.d_sd_steps > 0.0
}

/// Fixed-point weight and delay (steps) of synapse `id` of presynaptic neuron
/// `pre_local` (`id`: the target index for fixed probability, the draw number `m`
/// for fixed out-degree, the position in the row for tables). Normal draws
/// ([`normal_f32`]) keyed by `(pre_local, id)` on the projection's `STREAM_SYN`
/// stream (attempt `a` on stream + a): `floor(mean + sd z + 1/2)` in fixed-point
/// units or steps; a weight whose sign differs from the mean's and a delay below one
/// step are redrawn, as NEST's `redraw` (PD14's reference implementation), at most
/// [`SYN_REDRAWS`] attempts, then 0 and 1 step. Delays are capped at
/// `ring_slots - 1` (never reached: the network sizes its ring for mean + 5.3 SD,
/// the largest deviate `normal_f32` returns). Without SDs: `weight_fixed` and
/// `delay_steps`. Twin: `synapse_draw` in `shaders/common.wgsl`.
pub fn synapse_draw(proj: &ProjParams, pre_local: u32, id: u32, ring_slots: u32) -> (i32, u32) {
    let mut w = proj.weight_fixed;
    let mut d = proj.delay_steps;
    let mut w_done = proj.w_sd_fixed <= 0.0;
    let mut d_done = proj.d_sd_steps <= 0.0;
    if !w_done {
        w = 0;
    }
    if !d_done {
        d = 1;
    }
    let stream = (proj.stream & 0x0fff_ffff) | STREAM_SYN;
    for a in 0..SYN_REDRAWS {
        if w_done && d_done {
            break;
        }
        let r = threefry2x32(UVec2::new(pre_local, id), proj_key(proj, stream + a));
        if !w_done {
            let x = (proj.w_mean_fixed + proj.w_sd_fixed * normal_f32(r.x) + 0.5).floor();
            if (proj.w_mean_fixed >= 0.0 && x >= 0.0) || (proj.w_mean_fixed < 0.0 && x <= 0.0) {
                w = x as i32;
                w_done = true;
            }
        }
        if !d_done {
            let x = (proj.d_mean_steps + proj.d_sd_steps * normal_f32(r.y) + 0.5).floor();
            if x >= 1.0 {
                d = (x as u32).min(ring_slots - 1);
                d_done = true;
            }
        }
    }
    (w, d)
}

/// Calls `deliver(post_local, id)` for every synapse of presynaptic neuron
/// `pre_local` handled by slice `tid` of a procedural projection, with the synapse's
/// identity for [`synapse_draw`]: the target for fixed probability (no multapses),
/// the draw number for fixed out-degree.
pub fn for_each_synapse(
    proj: &ProjParams,
    pre_local: u32,
    tid: u32,
    mut deliver: impl FnMut(u32, u32),
) {
    let exclude_self = proj.same_pop != 0 && proj.autapses == 0;
    if proj.rule == RULE_PROBABILITY {
        let (lo, hi) = slice_bounds(proj.post_size, tid);
        let k = proj_key(proj, proj.stream + tid);
        let span = (hi - lo) as f32;
        let mut j = lo;
        let mut c = 0u32;
        while j < hi {
            let r = threefry2x32(UVec2::new(pre_local, c), k);
            c += 1;
            for word in [r.x, r.y] {
                let skip = (ln_f32(uniform_open0(word)) * proj.inv_ln_1mp)
                    .floor()
                    .min(span);
                j += skip as u32;
                if j >= hi {
                    break;
                }
                if !(exclude_self && j == pre_local) {
                    deliver(j, j);
                }
                j += 1;
                if j >= hi {
                    break;
                }
            }
        }
    } else if proj.rule == RULE_OUTDEGREE {
        let k = proj_key(proj, proj.stream);
        let range = if exclude_self {
            proj.post_size - 1
        } else {
            proj.post_size
        };
        let mut m = tid;
        while m < proj.k {
            let r = threefry2x32(UVec2::new(pre_local, m), k);
            let mut t = mul_hi_u32(r.x, range);
            if exclude_self && t >= pre_local {
                t += 1;
            }
            deliver(t, m);
            m += PROC_SPLIT;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_hi_matches_u64() {
        let cases = [
            (0u32, 0u32),
            (u32::MAX, u32::MAX),
            (0x8000_0000, 3),
            (123_456_789, 987_654_321),
            (0xdead_beef, 0x0001_0000),
        ];
        for (a, b) in cases {
            assert_eq!(
                mul_hi_u32(a, b),
                ((a as u64 * b as u64) >> 32) as u32,
                "{a} {b}"
            );
        }
        let mut x = 0x1234_5678u32;
        for _ in 0..10_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let y = x.rotate_left(13) ^ 0x9e37_79b9;
            assert_eq!(mul_hi_u32(x, y), ((x as u64 * y as u64) >> 32) as u32);
        }
    }

    #[test]
    fn slices_cover_range_exactly() {
        for size in [0u32, 1, 63, 64, 65, 3200, 1_000_003, u32::MAX] {
            let mut next = 0u32;
            for tid in 0..PROC_SPLIT {
                let (lo, hi) = slice_bounds(size, tid);
                assert_eq!(lo, next);
                assert!(hi >= lo);
                next = hi;
            }
            assert_eq!(next, size);
        }
    }
}
