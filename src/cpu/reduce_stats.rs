//! CPU twin of `shaders/reduce_stats.wgsl`: per-population sums of each neuron's
//! quantised V, g_AMPA, g_GABA, NMDA open and blocked fractions and NMDA, AMPA and
//! GABA_A currents. Integer sums are exact, so the shader's workgroup-then-atomic
//! order gives the same totals.

use super::Buffers;
use crate::model::layout::PopParams;
use crate::model::limits::{STATS_PER_POP, STAT_CLAMP, STAT_SCALES};
use crate::model::mg_block;

/// Round `x * scale` to the nearest integer (ties up), clamped to +-`STAT_CLAMP`.
pub fn quantise(x: f32, scale: f32) -> i32 {
    (x * scale + 0.5).floor().clamp(-STAT_CLAMP, STAT_CLAMP) as i32
}

/// The sampled quantities of neuron `i` of population `p`, unquantised:
/// V, g_AMPA, g_GABA, sum_k f_k O_k, sum_k f_k (B_k + T_k),
/// I_NMDA = g_max sum_k f_k O_k B_Mg,k(V) (E_NMDA - V), I_AMPA = g_AMPA (E_AMPA - V),
/// I_GABA = g_GABA (E_GABA - V) (pA; positive = depolarising).
#[inline(always)]
pub fn sample_values(p: &PopParams, i: usize, b: &Buffers) -> [f32; STATS_PER_POP] {
    let v = b.v[i];
    let mut open = 0.0;
    let mut blocked = 0.0;
    let mut g_open = 0.0;
    for k in 0..p.n_pools as usize {
        let pl = &p.pools[k];
        let [o, bl, t, _] = b.pools[k][i];
        open += pl.fraction * o;
        blocked += pl.fraction * (bl + t);
        g_open += pl.fraction * o * mg_block(v, pl.mg_over_k0);
    }
    [
        v,
        b.g_ampa[i],
        b.g_gaba[i],
        open,
        blocked,
        p.g_nmda_max * g_open * (p.e_nmda - v),
        b.g_ampa[i] * (p.e_ampa - v),
        b.g_gaba[i] * (p.e_gaba - v),
    ]
}

/// The quantised samples of neuron `i` of population `p`.
pub fn neuron_sample(p: &PopParams, i: usize, b: &Buffers) -> [i32; STATS_PER_POP] {
    let x = sample_values(p, i, b);
    let mut q = [0i32; STATS_PER_POP];
    for k in 0..STATS_PER_POP {
        q[k] = quantise(x[k], STAT_SCALES[k]);
    }
    q
}

/// Population sums of [`neuron_sample`] (AVX2 where available; integer sums, so the
/// order is irrelevant).
pub fn population_sums(p: &PopParams, b: &Buffers) -> [i64; STATS_PER_POP] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { population_sums_avx2(p, b) };
    }
    population_sums_impl(p, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn population_sums_avx2(p: &PopParams, b: &Buffers) -> [i64; STATS_PER_POP] {
    population_sums_impl(p, b)
}

#[inline(always)]
fn population_sums_impl(p: &PopParams, b: &Buffers) -> [i64; STATS_PER_POP] {
    let mut out = [0i64; STATS_PER_POP];
    if p.n_pools == 0 {
        // No NMDA receptors: the NMDA entries (open, blocked, current) are 0 (the
        // current is g_max * 0 * (E - V) = +-0, which quantises to 0); the rest in vectorisable loops
        // with the same operations as `sample_values`.
        let r = p.offset as usize..(p.offset + p.size) as usize;
        let (v, ga, gg) = (&b.v[r.clone()], &b.g_ampa[r.clone()], &b.g_gaba[r]);
        let q = |x: f32, k: usize| quantise(x, STAT_SCALES[k]) as i64;
        out[0] = v.iter().map(|&x| q(x, 0)).sum();
        out[1] = ga.iter().map(|&x| q(x, 1)).sum();
        out[2] = gg.iter().map(|&x| q(x, 2)).sum();
        out[6] = ga
            .iter()
            .zip(v)
            .map(|(&g, &x)| q(g * (p.e_ampa - x), 6))
            .sum();
        out[7] = gg
            .iter()
            .zip(v)
            .map(|(&g, &x)| q(g * (p.e_gaba - x), 7))
            .sum();
        return out;
    }
    for i in p.offset as usize..(p.offset + p.size) as usize {
        let q = neuron_sample(p, i, b);
        for k in 0..STATS_PER_POP {
            out[k] += q[k] as i64;
        }
    }
    out
}
