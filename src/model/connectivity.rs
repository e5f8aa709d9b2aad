//! Procedural connectivity, regenerated from the seed at every presynaptic spike
//! (as GeNN's procedural connectivity does: Knight & Nowotny 2021, Nat Comput Sci
//! 1:136), so static synapses need no per-synapse memory. The WGSL twin is
//! `propagate.wgsl`; both call these exact operations.
//!
//! A projection's postsynaptic range (fixed probability) or its out-degree (fixed
//! out-degree) is split into `PROC_SPLIT` slices, one per thread of the workgroup that
//! handles a spike; each slice has its own random stream.

use glam::UVec2;

use super::layout::{ProjParams, RULE_PROBABILITY, RULE_TOTAL};
use super::limits::{PROC_SPLIT, SYN_REDRAWS};
use crate::rng::{
    ln_f32, normal_f32, threefry2x32, uniform_open0, ThreefryStream, STREAM_DEGREE, STREAM_SYN,
};
use rand_distr::{Binomial, Distribution};

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
/// handled by slice `tid` of a procedural projection (`rows`: see [`out_degree`]).
pub fn for_each_target(
    proj: &ProjParams,
    rows: &[u32],
    pre_local: u32,
    tid: u32,
    mut deliver: impl FnMut(u32),
) {
    for_each_synapse(proj, rows, pre_local, tid, |t, _| deliver(t));
}

/// Out-degree of presynaptic neuron `pre_local` under the fixed-count rules: `k`
/// for fixed out-degree; for fixed total number, its share of the projection's total,
/// drawn when the network was built ([`total_number_degrees`]) and kept as the span
/// `rows[table_base + pre_local + 1] - rows[table_base + pre_local]` of the table
/// row pointers (`Tables::rows`; no columns: the targets are still regenerated).
/// Twin: the same lines in `shaders/propagate.wgsl`.
pub fn out_degree(proj: &ProjParams, rows: &[u32], pre_local: u32) -> u32 {
    if proj.rule == RULE_TOTAL {
        let row = (proj.table_base + pre_local) as usize;
        rows[row + 1].wrapping_sub(rows[row])
    } else {
        proj.k
    }
}

/// The out-degrees of `n_pre` presynaptic neurons sharing `total` synapses as NEST's
/// `fixed_total_number` shares them: each synapse picks its presynaptic neuron
/// uniformly, so the degrees are multinomial(total; 1/n_pre, ..., 1/n_pre). Drawn
/// as conditional binomials, neuron i taking Binomial(remaining, 1/(n_pre - i)) of
/// what the neurons before it left (`rand_distr::Binomial`, exact BINV/BTPE), on
/// stream `STREAM_DEGREE | projection` of the network's seed: the degrees sum to
/// `total` exactly and are the same on every backend (the host draws them once).
pub fn total_number_degrees(total: u64, n_pre: u32, seed: u64, projection: u32) -> Vec<u32> {
    let mut rng = ThreefryStream::new(crate::rng::key(seed, STREAM_DEGREE | projection));
    let mut left = total;
    (0..n_pre)
        .map(|i| {
            let k = if i + 1 == n_pre || left == 0 {
                left
            } else {
                // 1/(n_pre - i) is in (0, 1): the constructor cannot fail.
                Binomial::new(left, 1.0 / (n_pre - i) as f64).map_or(0, |b| b.sample(&mut rng))
            };
            left -= k;
            k as u32
        })
        .collect()
}

/// [`total_number_degrees`] as the row pointers [`out_degree`] reads: `n_pre + 1`
/// entries from 0, each degree the difference of two neighbours (wrapping, so that
/// a batch merge may offset them all).
pub fn total_number_rows(total: u64, n_pre: u32, seed: u64, projection: u32) -> Vec<u32> {
    let degrees = total_number_degrees(total, n_pre, seed, projection);
    std::iter::once(0)
        .chain(degrees.iter().scan(0u32, |acc, &d| {
            *acc = acc.wrapping_add(d);
            Some(*acc)
        }))
        .collect()
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
/// the draw number for fixed out-degree and fixed total number (`rows`: see
/// [`out_degree`]).
pub fn for_each_synapse(
    proj: &ProjParams,
    rows: &[u32],
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
    } else {
        // Fixed out-degree and fixed total number: the neuron's draws m < degree.
        let degree = out_degree(proj, rows, pre_local);
        let k = proj_key(proj, proj.stream);
        let range = if exclude_self {
            proj.post_size - 1
        } else {
            proj.post_size
        };
        let mut m = tid;
        while m < degree {
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
    use bytemuck::Zeroable;

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

    /// The out-degrees of fixed total number: exactly the total, reproducible, one
    /// stream per projection, and distributed as multinomial marginals
    /// (Binomial(total, 1/n_pre): mean total/n_pre, variance total/n_pre (1 - 1/n_pre)).
    #[test]
    fn total_number_degrees_are_multinomial() {
        for (total, n_pre) in [
            (0u64, 5u32),
            (7, 1),
            (3, 10),
            (2_000_000, 20_000),
            (50_000, 3),
        ] {
            let d = total_number_degrees(total, n_pre, 11, 4);
            assert_eq!(d.len(), n_pre as usize);
            assert_eq!(d.iter().map(|&k| k as u64).sum::<u64>(), total);
            assert_eq!(d, total_number_degrees(total, n_pre, 11, 4), "reproducible");
        }
        let (total, n_pre) = (2_000_000u64, 20_000u32);
        let d = total_number_degrees(total, n_pre, 11, 4);
        assert_ne!(d, total_number_degrees(total, n_pre, 11, 5), "own stream");
        assert_ne!(d, total_number_degrees(total, n_pre, 12, 4), "own seed");
        let mean = total as f64 / n_pre as f64;
        let var_expected = mean * (1.0 - 1.0 / n_pre as f64);
        let var = d.iter().map(|&k| (k as f64 - mean).powi(2)).sum::<f64>() / n_pre as f64;
        // The sample variance of 20,000 near-normal draws is within 4% (about 4 SE).
        assert!(
            (var / var_expected - 1.0).abs() < 0.04,
            "variance {var} against {var_expected}"
        );
        // The first and last halves are alike (the conditional split has no drift).
        let half = n_pre as usize / 2;
        let first: u64 = d[..half].iter().map(|&k| k as u64).sum();
        let sd_half = (total as f64 * 0.25).sqrt();
        assert!(
            (first as f64 - total as f64 / 2.0).abs() < 5.0 * sd_half,
            "first half {first}"
        );
    }

    /// Fixed total number delivers each neuron's drawn share: as many synapses as its
    /// row span, with the out-degree rule's targets.
    #[test]
    fn total_number_delivers_the_drawn_degrees() {
        let degrees = total_number_degrees(900, 30, 3, 0);
        let rows = total_number_rows(900, 30, 3, 0);
        let mut p = ProjParams::zeroed();
        p.rule = RULE_TOTAL;
        p.pre_size = 30;
        p.post_size = 50;
        p.autapses = 1;
        let mut q = p;
        q.rule = crate::model::layout::RULE_OUTDEGREE;
        for pre in 0..30u32 {
            let mut got = Vec::new();
            for tid in 0..PROC_SPLIT {
                for_each_synapse(&p, &rows, pre, tid, |t, id| got.push((id, t)));
            }
            got.sort_unstable();
            assert_eq!(got.len() as u32, degrees[pre as usize]);
            assert_eq!(out_degree(&p, &rows, pre), degrees[pre as usize]);
            // The same targets as a fixed out-degree of that size.
            q.k = degrees[pre as usize];
            let mut want = Vec::new();
            for tid in 0..PROC_SPLIT {
                for_each_synapse(&q, &[], pre, tid, |t, id| want.push((id, t)));
            }
            want.sort_unstable();
            assert_eq!(got, want);
        }
    }
}
