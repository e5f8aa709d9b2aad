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
use super::limits::PROC_SPLIT;
use crate::rng::{ln_f32, threefry2x32, uniform_open0};

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
                    deliver(j);
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
            deliver(t);
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
