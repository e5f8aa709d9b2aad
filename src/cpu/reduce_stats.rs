//! CPU twin of `shaders/reduce_stats.wgsl`: per-population sums of each neuron's
//! quantised V, g_AMPA, g_GABA and s_NMDA. Integer sums are exact, so the shader's
//! workgroup-then-atomic order gives the same totals.

use super::Buffers;
use crate::model::limits::{STATS_PER_POP, STAT_CLAMP, STAT_SCALES};

/// Round `x * scale` to the nearest integer (ties up), clamped to +-`STAT_CLAMP`.
pub fn quantise(x: f32, scale: f32) -> i32 {
    (x * scale + 0.5).floor().clamp(-STAT_CLAMP, STAT_CLAMP) as i32
}

/// The four quantised samples of neuron `i`.
pub fn neuron_sample(i: usize, b: &Buffers) -> [i32; STATS_PER_POP] {
    [
        quantise(b.v[i], STAT_SCALES[0]),
        quantise(b.g_ampa[i], STAT_SCALES[1]),
        quantise(b.g_gaba[i], STAT_SCALES[2]),
        quantise(b.s_nmda[i], STAT_SCALES[3]),
    ]
}

/// Sums of the quantised samples over neurons `off..off + n`, one variable at a time
/// (vectorised; integer sums, so the order is irrelevant).
/// `pool`: whether the population has an NMDA pool (without one s is exactly 0 and
/// its sum is skipped).
pub fn population_sums(b: &Buffers, off: usize, n: usize, pool: bool) -> [i64; STATS_PER_POP] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { population_sums_avx2(b, off, n, pool) };
    }
    population_sums_impl(b, off, n, pool)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn population_sums_avx2(
    b: &Buffers,
    off: usize,
    n: usize,
    pool: bool,
) -> [i64; STATS_PER_POP] {
    population_sums_impl(b, off, n, pool)
}

#[inline(always)]
fn population_sums_impl(b: &Buffers, off: usize, n: usize, pool: bool) -> [i64; STATS_PER_POP] {
    let vars = [&b.v, &b.g_ampa, &b.g_gaba, &b.s_nmda];
    let mut out = [0i64; STATS_PER_POP];
    let used = if pool {
        STATS_PER_POP
    } else {
        STATS_PER_POP - 1
    };
    for (k, var) in vars.iter().enumerate().take(used) {
        let scale = STAT_SCALES[k];
        out[k] = var[off..off + n]
            .iter()
            .map(|&x| quantise(x, scale) as i64)
            .sum();
    }
    out
}
