//! Vectorisable twins of the shared kernels' elementary functions: the same
//! operations in the same order as the originals in `rng.rs` and `model/`, written so
//! that a loop over neurons compiles to SIMD code (no data-dependent branches, no
//! loops with run-time trip counts, no saturating float-to-int conversions, which the
//! vectoriser would split into scalar lanes). Each returns the original's bits for
//! every input (this module's tests; `tests/cpu_paths.rs` checks the whole update
//! against the shader-shaped path that calls the originals).

use crate::rng::{
    EXPM1_SERIES_MAX, EXP_MAX, EXP_MIN, EXP_POLY, KS_PARITY, LN2_HI, LN2_LO, POISSON_MAX_K,
};

/// 1.5 * 2^23: adding it to an integer-valued f32 of magnitude below 2^22 puts that
/// integer, offset by 0x4B40_0000, in the low bits of the sum's bit pattern.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// [`crate::rng::exp_f32`]: the same Cephes operations. Its one conversion,
/// `n as i32` of the integer-valued `n = floor(...)` (within [-126, 128] for the
/// clamped argument; 0 for a NaN argument, as `as` maps NaN to 0), is done exactly
/// with the magic-number addition, which vectorises (`as i32` saturates, which the
/// vectoriser does lane by lane).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let mut r = x - n * LN2_HI;
    r -= n * LN2_LO;
    let z = r * r;
    let mut y = EXP_POLY[0];
    for c in &EXP_POLY[1..] {
        y = y * r + c;
    }
    y = y * z + r + 1.0;
    let m = if n.is_nan() { 0.0 } else { n };
    let ni = ((m + ROUND_MAGIC).to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    // ni is within [-127, 128] (x is clamped), so the add cannot overflow; wrapping,
    // it has no overflow check, whose panic branch kept the loops that call this from
    // vectorising in builds with overflow checks (the tests': 4x slower).
    let scale = f32::from_bits((ni.wrapping_add(127) as u32) << 23);
    y * scale
}

/// `1 - e^-x` given `e = exp_f32(-x)`: [`crate::rng::one_minus_exp_neg`]'s series
/// below `EXPM1_SERIES_MAX`, else `1 - e` (which is what it computes there, `e` being
/// the same `exp_f32(-x)`); both are computed and one is selected, without a branch.
#[inline(always)]
pub fn one_minus_exp_neg_with(x: f32, e: f32) -> f32 {
    let mut t = 1.0 - x * (1.0 / 6.0);
    t = 1.0 - x * (1.0 / 5.0) * t;
    t = 1.0 - x * (1.0 / 4.0) * t;
    t = 1.0 - x * (1.0 / 3.0) * t;
    t = 1.0 - x * 0.5 * t;
    let series = x * t;
    if x < EXPM1_SERIES_MAX {
        series
    } else {
        1.0 - e
    }
}

/// The first word of [`crate::rng::threefry2x32`]`((c0, c1), (k0, k1))`: the same
/// rounds, unrolled at compile time (constant rotations).
#[inline(always)]
pub fn threefry_x0(c0: u32, c1: u32, k0: u32, k1: u32) -> u32 {
    const ROT: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
    let ks = [k0, k1, KS_PARITY ^ k0 ^ k1];
    let mut x0 = c0.wrapping_add(ks[0]);
    let mut x1 = c1.wrapping_add(ks[1]);
    macro_rules! rounds {
        ($($r:literal)*) => {$(
            x0 = x0.wrapping_add(x1);
            x1 = x1.rotate_left(ROT[$r % 8]);
            x1 ^= x0;
            if $r % 4 == 3 {
                let s: usize = $r / 4 + 1; // (r + 1) / 4, as r % 4 == 3
                x0 = x0.wrapping_add(ks[s % 3]);
                x1 = x1.wrapping_add(ks[(s + 1) % 3]).wrapping_add(s as u32);
            }
        )*};
    }
    rounds!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19);
    let _ = x1;
    x0
}

/// Entries of the Poisson sampler's cumulative table.
pub const CDF_LEN: usize = POISSON_MAX_K as usize;

/// The cumulative probabilities `cdf_k`, k = 0..POISSON_MAX_K - 1, that
/// [`crate::rng::poisson_inversion`]'s loop computes (the same operations; they do
/// not depend on the uniform). The count for a uniform `u` is then the index of the
/// first entry above `u`, capped at `POISSON_MAX_K`; the table never decreases (each
/// term is added as a non-negative f32), so that is the number of entries not above
/// `u`.
pub fn poisson_cdf(mean: f32, exp_neg_mean: f32, recips: &[f32]) -> [f32; CDF_LEN] {
    let mut cdf = [0.0f32; CDF_LEN];
    let mut p = exp_neg_mean;
    let mut c = p;
    cdf[0] = c;
    for k in 1..CDF_LEN {
        p = p * mean * recips[k];
        c += p;
        cdf[k] = c;
    }
    cdf
}

/// Entries of the table compared for every neuron without a branch.
pub const CDF_HEAD: usize = 8;

/// The count for `u` from the first [`CDF_HEAD`] entries: exact unless it is
/// `CDF_HEAD` (then [`poisson_count_from`] continues).
#[inline(always)]
pub fn poisson_count_head(u: f32, cdf: &[f32; CDF_LEN]) -> u32 {
    let mut k = 0u32;
    for c in &cdf[..CDF_HEAD] {
        k += (u >= *c) as u32;
    }
    k
}

/// [`crate::rng::poisson_inversion`] with the table from [`poisson_cdf`], starting
/// at entry `k` (all entries before it not above `u`).
#[inline(always)]
pub fn poisson_count_from(u: f32, cdf: &[f32; CDF_LEN], mut k: usize) -> u32 {
    while k < CDF_LEN && u >= cdf[k] {
        k += 1;
    }
    k as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{poisson_inversion, poisson_recips, threefry2x32, uniform01};
    use glam::UVec2;

    #[test]
    fn exp_matches_bit_for_bit() {
        let special = [
            0.0f32,
            -0.0,
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            EXP_MIN,
            EXP_MAX,
            -87.5,
            88.5,
        ];
        for x in special {
            assert_eq!(
                exp_f32(x).to_bits(),
                crate::rng::exp_f32(x).to_bits(),
                "{x}"
            );
        }
        // Every 61st bit pattern (all signs, exponents and NaN payloads)...
        let mut bits = 0u64;
        while bits <= u32::MAX as u64 {
            let x = f32::from_bits(bits as u32);
            assert_eq!(
                exp_f32(x).to_bits(),
                crate::rng::exp_f32(x).to_bits(),
                "{x:e} ({bits:#x})"
            );
            bits += 61;
        }
        // ...and every f32 around the range ends and the rounding boundaries of n.
        for centre in [
            EXP_MIN,
            EXP_MAX,
            -0.5 * std::f32::consts::LN_2,
            0.0,
            40.5 * std::f32::consts::LN_2,
        ] {
            let b = centre.to_bits();
            for d in 0..20_000u32 {
                for x in [
                    f32::from_bits(b.wrapping_add(d)),
                    f32::from_bits(b.wrapping_sub(d)),
                ] {
                    assert_eq!(
                        exp_f32(x).to_bits(),
                        crate::rng::exp_f32(x).to_bits(),
                        "{x:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn one_minus_exp_neg_matches() {
        let mut x = 1.0e-9f32;
        while x < 100.0 {
            assert_eq!(
                one_minus_exp_neg_with(x, exp_f32(-x)).to_bits(),
                crate::rng::one_minus_exp_neg(x).to_bits(),
                "{x}"
            );
            x *= 1.0007;
        }
    }

    #[test]
    fn threefry_matches() {
        for i in 0..200_000u32 {
            let c = UVec2::new(i.wrapping_mul(0x9E37_79B9), i >> 3);
            let k = UVec2::new(i ^ 0x5555_1234, i.rotate_left(7) | (1 << 28));
            assert_eq!(threefry_x0(c.x, c.y, k.x, k.y), threefry2x32(c, k).x);
        }
    }

    #[test]
    fn poisson_matches() {
        let recips = poisson_recips();
        for mean in [0.0f32, 1e-4, 0.05, 0.2, 0.3, 1.0, 2.5, 5.0, 12.0, 20.0] {
            let e = (-(mean as f64)).exp() as f32;
            let cdf = poisson_cdf(mean, e, &recips);
            let check = |u: f32| {
                let mut k = poisson_count_head(u, &cdf);
                if k as usize == CDF_HEAD {
                    k = poisson_count_from(u, &cdf, CDF_HEAD);
                }
                assert_eq!(
                    k,
                    poisson_inversion(u, mean, e, &recips),
                    "mean {mean} u {u}"
                );
            };
            for i in 0..=200_000u32 {
                check(uniform01(i.wrapping_mul(2_654_435_761)));
            }
            for i in 0..4096u32 {
                check(uniform01(u32::MAX - (i << 8)));
                check(uniform01(i << 8));
            }
            for c in cdf {
                for u in [
                    c,
                    f32::from_bits(c.to_bits() - 1),
                    f32::from_bits(c.to_bits() + 1),
                ] {
                    if u < 1.0 {
                        check(u);
                    }
                }
            }
        }
    }
}
