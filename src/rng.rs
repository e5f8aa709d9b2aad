//! Counter-based random numbers and bit-reproducible elementary functions, shared by
//! the CPU reference backend and (line for line) by `shaders/common.wgsl`.
//!
//! The generator is Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror & Shaw 2011,
//! "Parallel random numbers: as easy as 1, 2, 3", SC'11; the Random123 library). It
//! uses only 32-bit add, rotate and xor, so WGSL (which lacks 64-bit integers and
//! `mulhi`) computes exactly the same bits as Rust. Every draw is keyed by
//! `(seed, stream)` and addressed by a 2-word counter such as `(neuron, step)`.
//!
//! `ln_f32` and `exp_f32` are the Cephes single-precision `logf`/`expf` algorithms
//! (S. L. Moshier, Cephes Math Library), written with `+`, `*`, `floor` and bit casts
//! only: the builtin transcendental functions round differently on each device, and
//! exact CPU/GPU agreement needs the same operations in the same order.
#![expect(
    clippy::excessive_precision,
    reason = "Cephes coefficients, kept verbatim"
)]

use glam::UVec2;

/// Threefry-2x32 rotation constants (Random123 `R_32x2_*`).
const ROT: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
/// Skein key-schedule parity constant for 32-bit words.
pub const KS_PARITY: u32 = 0x1BD1_1BDA;

/// Threefry-2x32-20 block function: `counter` encrypted under `key`.
pub fn threefry2x32(counter: UVec2, key: UVec2) -> UVec2 {
    let ks = [key.x, key.y, KS_PARITY ^ key.x ^ key.y];
    let mut x0 = counter.x.wrapping_add(ks[0]);
    let mut x1 = counter.y.wrapping_add(ks[1]);
    for r in 0..20u32 {
        x0 = x0.wrapping_add(x1);
        x1 = x1.rotate_left(ROT[(r % 8) as usize]);
        x1 ^= x0;
        if r % 4 == 3 {
            let s = (r + 1) / 4;
            x0 = x0.wrapping_add(ks[(s % 3) as usize]);
            x1 = x1.wrapping_add(ks[((s + 1) % 3) as usize]).wrapping_add(s);
        }
    }
    UVec2::new(x0, x1)
}

/// Stream kinds: the high 4 bits of the key's second word.
pub const STREAM_INIT: u32 = 1 << 28;
/// Poisson background drive; low bits are the drive index.
pub const STREAM_POISSON: u32 = 2 << 28;
/// Procedural connectivity; low bits are `projection * PROC_SPLIT + slice`.
pub const STREAM_CONN: u32 = 3 << 28;

/// Per-synapse random weights and delays; low bits are `projection * PROC_SPLIT`
/// (the projection's connectivity stream with this tag instead of `STREAM_CONN`).
pub const STREAM_SYN: u32 = 4 << 28;

/// Host-side draws of a projection's out-degrees (`fixed_total_number`); low bits
/// are the projection index.
pub const STREAM_DEGREE: u32 = 5 << 28;

/// Threefry blocks under one key at counters 0, 1, 2, ..., as a `rand_core`
/// generator, for the host's samplers from `rand_distr` (the binomial out-degree
/// split): deterministic for a key, on every machine.
#[derive(Debug, Clone)]
pub struct ThreefryStream {
    key: UVec2,
    counter: u64,
}

impl ThreefryStream {
    /// The stream of `key` from counter 0.
    pub fn new(key: UVec2) -> ThreefryStream {
        ThreefryStream { key, counter: 0 }
    }

    fn block(&mut self) -> UVec2 {
        let c = self.counter;
        self.counter += 1;
        threefry2x32(UVec2::new(c as u32, (c >> 32) as u32), self.key)
    }
}

impl rand_core::TryRng for ThreefryStream {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.block().x)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let b = self.block();
        Ok(b.x as u64 | ((b.y as u64) << 32))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        rand_core::utils::fill_bytes_via_next_word(dst, || self.try_next_u64())
    }
}

/// The key for a (seed, stream) pair. Streams never collide: the stream tag is xor-ed
/// into the high seed word, whose top 4 bits must be zero (checked by the scenario).
pub fn key(seed: u64, stream: u32) -> UVec2 {
    UVec2::new(seed as u32, ((seed >> 32) as u32) ^ stream)
}

/// Uniform in [0, 1): the top 24 bits of `x`, exactly representable in f32.
pub fn uniform01(x: u32) -> f32 {
    (x >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Uniform in (0, 1]: never zero, so its logarithm is finite.
pub fn uniform_open0(x: u32) -> f32 {
    ((x >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
}

/// Cephes `logf` polynomial for ln(1+m), m in [sqrt(1/2)-1, sqrt(2)-1], Horner order.
pub const LN_POLY: [f32; 9] = [
    7.037_683_629_2e-2,
    -1.151_461_031_0e-1,
    1.167_699_874_0e-1,
    -1.242_014_084_6e-1,
    1.424_932_278_7e-1,
    -1.666_805_766_5e-1,
    2.000_071_476_5e-1,
    -2.499_999_399_3e-1,
    3.333_333_117_4e-1,
];
/// sqrt(1/2): `ln_f32` doubles mantissas below it.
pub const LN_SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// ln 2 split into an exact high part and a small low part (Cephes).
pub const LN2_HI: f32 = 0.693_359_375;
/// Low part of ln 2.
pub const LN2_LO: f32 = -2.121_944_40e-4;
/// Cephes `expf` polynomial, Horner order.
pub const EXP_POLY: [f32; 6] = [
    1.987_569_150_0e-4,
    1.398_199_950_7e-3,
    8.333_451_907_3e-3,
    4.166_579_589_4e-2,
    1.666_666_545_9e-1,
    5.000_000_120_1e-1,
];
/// Argument range of `exp_f32`.
pub const EXP_MIN: f32 = -87.0;
/// Argument range of `exp_f32`.
pub const EXP_MAX: f32 = 88.0;

/// Natural logarithm of a positive normal f32 (Cephes `logf`, error about 1 ulp).
pub fn ln_f32(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    // Mantissa in [0.5, 1).
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    if m < LN_SQRT_HALF {
        e -= 1;
        m = m + m - 1.0;
    } else {
        m -= 1.0;
    }
    let z = m * m;
    let mut y = LN_POLY[0];
    for c in &LN_POLY[1..] {
        y = y * m + c;
    }
    y = y * m * z;
    let ef = e as f32;
    y += LN2_LO * ef;
    y += -0.5 * z;
    let r = m + y;
    r + LN2_HI * ef
}

/// Largest f32 below 2^32: where [`fixed_u32`] saturates.
pub const FIXED_U32_MAX: f32 = 4_294_967_040.0;

/// A non-negative quantity in fixed point (LSB `1/scale`), rounded once: negative
/// values give 0, values beyond u32 saturate. Twin of `fixed_u32` in
/// `shaders/common.wgsl` (same operations, same order).
#[allow(
    clippy::manual_clamp,
    reason = "the shader's max-then-min, which maps NaN to 0 where clamp keeps it"
)]
pub fn fixed_u32(x: f32, scale: f32) -> u32 {
    ((x * scale).max(0.0).min(FIXED_U32_MAX) + 0.5) as u32
}

/// e^x for x in [-87, 88] (clamped there; Cephes `expf`, error about 1 ulp).
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
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    y * scale
}

/// Giles' single-precision erfinv (M. Giles 2012, "Approximating the erfinv
/// function", GPU Computing Gems Jade ed., ch. 10): polynomial in `w - 2.5` for
/// `w = -ln(1 - x^2) < 5`, Horner order (highest power first).
pub const ERFINV_CENTRAL: [f32; 9] = [
    2.810_226_36e-8,
    3.432_739_39e-7,
    -3.523_387_7e-6,
    -4.391_506_54e-6,
    2.185_808_7e-4,
    -1.253_725_03e-3,
    -4.177_681_64e-3,
    2.466_407_27e-1,
    1.501_409_41,
];
/// Giles' erfinv tail polynomial in `sqrt(w) - 3` for `w >= 5`.
pub const ERFINV_TAIL: [f32; 9] = [
    -2.002_142_57e-4,
    1.009_505_58e-4,
    1.349_343_22e-3,
    -3.673_428_44e-3,
    5.739_507_73e-3,
    -7.622_461_3e-3,
    9.438_870_47e-3,
    1.001_674_06,
    2.832_976_82,
];

/// A standard normal deviate from one random word: `sqrt(2) erfinv(2u - 1)` with
/// `u = (k + 1/2) / 2^23`, `k` the word's top 23 bits (so `u`, `1 - u` and `2u - 1`
/// are exact and |z| <= 5.30), Giles' erfinv, and the square root as
/// `exp_f32(ln_f32(w) / 2)`. `+`, `*`, `ln_f32` and `exp_f32` only, like the WGSL twin
/// `normal_f32` (relative error of the inverse normal CDF about 1e-7).
pub fn normal_f32(x: u32) -> f32 {
    let u = ((x >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0);
    let t = 2.0 * u - 1.0;
    let w = -ln_f32(4.0 * u * (1.0 - u));
    let p = if w < 5.0 {
        let w = w - 2.5;
        let mut p = ERFINV_CENTRAL[0];
        for c in &ERFINV_CENTRAL[1..] {
            p = p * w + c;
        }
        p
    } else {
        let w = exp_f32(0.5 * ln_f32(w)) - 3.0;
        let mut p = ERFINV_TAIL[0];
        for c in &ERFINV_TAIL[1..] {
            p = p * w + c;
        }
        p
    };
    std::f32::consts::SQRT_2 * (p * t)
}

/// Largest |z| that [`normal_f32`] returns (about 5.2947, rounded up).
pub const NORMAL_F32_MAX: f64 = 5.3;

/// Below this argument `one_minus_exp_neg` uses its series (no cancellation).
pub const EXPM1_SERIES_MAX: f32 = 0.125;

/// 1 - e^-x for x >= 0, accurate for small x: the Taylor series
/// x (1 - x/2 (1 - x/3 (1 - x/4 (1 - x/5 (1 - x/6))))) below 1/8 (truncation error
/// below 1e-9 relative), 1 - exp_f32(-x) above. `+` and `*` only, like the WGSL twin.
pub fn one_minus_exp_neg(x: f32) -> f32 {
    if x < EXPM1_SERIES_MAX {
        let mut t = 1.0 - x * (1.0 / 6.0);
        t = 1.0 - x * (1.0 / 5.0) * t;
        t = 1.0 - x * (1.0 / 4.0) * t;
        t = 1.0 - x * (1.0 / 3.0) * t;
        t = 1.0 - x * 0.5 * t;
        x * t
    } else {
        1.0 - exp_f32(-x)
    }
}

/// Largest Poisson count drawn per step; with the mean per step capped at
/// [`POISSON_MAX_MEAN`], P(k > 63) < 1e-12.
pub const POISSON_MAX_K: u32 = 63;
/// Steps of the inversion that the WGSL twin (`poisson_inversion` in
/// `shaders/neuron_update.wgsl`) writes out with constant table indices; beyond them
/// it takes 1/k from `div_rn`, which gives the table's values (tested below).
pub const POISSON_UNROLLED: u32 = 8;
const _: () = assert!(POISSON_UNROLLED < POISSON_MAX_K);

/// Largest mean count per neuron, step and drive that the inversion sampler accepts.
pub const POISSON_MAX_MEAN: f64 = 20.0;

/// Reciprocals 1/k for k = 0..=POISSON_MAX_K (entry 0 unused), rounded once to f32 so
/// that Rust and WGSL multiply by identical constants (the shader header embeds their
/// bit patterns).
pub fn poisson_recips() -> [f32; POISSON_MAX_K as usize + 1] {
    let mut r = [0.0f32; POISSON_MAX_K as usize + 1];
    for (k, v) in r.iter_mut().enumerate().skip(1) {
        *v = (1.0 / k as f64) as f32;
    }
    r
}

/// Poisson count by sequential inversion (Devroye 1986, ch. X.3): `u` uniform in
/// [0,1), `exp_neg_mean` = e^-mean and `mean` rounded to f32 on the host.
pub fn poisson_inversion(u: f32, mean: f32, exp_neg_mean: f32, recips: &[f32]) -> u32 {
    let mut k = 0u32;
    let mut p = exp_neg_mean;
    let mut cdf = p;
    while u >= cdf && k < POISSON_MAX_K {
        k += 1;
        p = p * mean * recips[k as usize];
        cdf += p;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors of Random123 (`kat_vectors`, threefry2x32 20 rounds).
    #[test]
    fn threefry_known_answers() {
        assert_eq!(
            threefry2x32(UVec2::new(0, 0), UVec2::new(0, 0)),
            UVec2::new(0x6b20_0159, 0x99ba_4efe)
        );
        assert_eq!(
            threefry2x32(
                UVec2::new(u32::MAX, u32::MAX),
                UVec2::new(u32::MAX, u32::MAX)
            ),
            UVec2::new(0x1cb9_96fc, 0xbb00_2be7)
        );
        assert_eq!(
            threefry2x32(
                UVec2::new(0x243f_6a88, 0x85a3_08d3),
                UVec2::new(0x1319_8a2e, 0x0370_7344)
            ),
            UVec2::new(0xc492_3a9c, 0x483d_f7a0)
        );
    }

    #[test]
    fn one_minus_exp_neg_is_accurate() {
        let mut x = 1.0e-9f32;
        while x < 50.0 {
            let exact = -(-(x as f64)).exp_m1();
            let rel = ((one_minus_exp_neg(x) as f64) - exact).abs() / exact;
            assert!(
                rel < 1.0e-6,
                "1 - exp(-{x}) = {} vs {exact}",
                one_minus_exp_neg(x)
            );
            x *= 1.07;
        }
    }

    /// The WGSL inversion's loop beyond `POISSON_UNROLLED` divides 1 by k with
    /// `div_rn` (IEEE f32 division) instead of reading the table: the same values.
    #[test]
    fn poisson_tail_reciprocals_are_the_table() {
        let t = poisson_recips();
        for k in 1..=POISSON_MAX_K {
            assert_eq!(
                (1.0f32 / k as f32).to_bits(),
                t[k as usize].to_bits(),
                "1/{k}"
            );
        }
    }

    #[test]
    fn ln_and_exp_are_accurate() {
        let mut x = 1.0e-7f32;
        while x < 1.0e6 {
            let rel = ((ln_f32(x) as f64) - (x as f64).ln()).abs() / (x as f64).ln().abs().max(1.0);
            assert!(
                rel < 4.0e-7,
                "ln({x}) = {} vs {}",
                ln_f32(x),
                (x as f64).ln()
            );
            x *= 1.013;
        }
        let mut y = -80.0f32;
        while y < 80.0 {
            let exact = (y as f64).exp();
            let rel = ((exp_f32(y) as f64) - exact).abs() / exact;
            assert!(rel < 4.0e-7, "exp({y}) = {} vs {exact}", exp_f32(y));
            y += 0.0137;
        }
    }
}
