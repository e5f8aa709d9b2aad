//! CPU twin of `shaders/reduce_stats.wgsl`: per-population sums of each neuron's
//! quantised V, g_AMPA, g_GABA, NMDA open and blocked fractions and NMDA, AMPA and
//! GABA_A currents. Integer sums are exact, so the shader's workgroup-then-atomic
//! order gives the same totals. A value at or past `STAT_CLAMP` is clamped and sets
//! its quantity's bit in the clip mask, as the shader's `clip_bit` does.

use super::simd::exp_f32 as exp_v;
use super::Buffers;
use crate::model::layout::PopParams;
use crate::model::limits::{STATS_PER_POP, STAT_CLAMP, STAT_SCALES};
use crate::model::{mg_block, MG_SLOPE_PER_MV};

/// Sums of the quantised samples over some neurons of one population, and their clip
/// mask (bit k: some neuron's quantity k reached +-`STAT_CLAMP`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleSums {
    /// Sums of the quantised quantities.
    pub sums: [i64; STATS_PER_POP],
    /// Clip mask.
    pub clipped: u32,
}

impl SampleSums {
    /// Set quantity `k`'s sum and, from the largest magnitude among its quantised
    /// values, its clip bit.
    #[inline(always)]
    fn put(&mut self, k: usize, (sum, max_abs): (i64, u32)) {
        self.sums[k] = sum;
        self.clipped |= clip_bit(max_abs, k);
    }

    /// Add one neuron's quantised samples ([`neuron_sample`]).
    pub fn add_neuron(&mut self, q: &[i32; STATS_PER_POP]) {
        for (k, &x) in q.iter().enumerate() {
            self.sums[k] = add_i64(self.sums[k], x as i64);
            self.clipped |= clip_bit(x.unsigned_abs(), k);
        }
    }

    /// Add another part's sums and merge its clip mask.
    pub fn add(&mut self, other: &SampleSums) {
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            *a = add_i64(*a, *b);
        }
        self.clipped |= other.clipped;
    }
}

/// Round `x * scale` to the nearest integer (ties up), clamped to +-`STAT_CLAMP`.
pub fn quantise(x: f32, scale: f32) -> i32 {
    (x * scale + 0.5).floor().clamp(-STAT_CLAMP, STAT_CLAMP) as i32
}

/// Bit `k` of the clip mask when a quantised value of largest magnitude `max_abs` is
/// at the clamp (twin of the shader's `clip_bit`).
#[inline(always)]
pub fn clip_bit(max_abs: u32, k: usize) -> u32 {
    ((max_abs >= STAT_CLAMP as u32) as u32) << k
}

/// Fold step of a sum of quantised values that also keeps their largest magnitude
/// (for [`clip_bit`]): two independent reductions, which vectorise.
#[inline(always)]
fn sum_and_max(acc: (i64, u32), q: i32) -> (i64, u32) {
    (add_i64(acc.0, q as i64), acc.1.max(q.unsigned_abs()))
}

/// The sampled quantities of neuron `i` of population `p`, unquantised:
/// V, g_AMPA, g_GABA, sum_k f_k O_k, sum_k f_k (B_k + T_k),
/// I_NMDA = g_max sum_k f_k O_k B_Mg,k(V) (E_NMDA - V), I_AMPA = g_AMPA (E_AMPA - V),
/// I_GABA = g_GABA (E_GABA - V) (pA; positive = depolarising); for a current-based
/// population, whose `g_ampa` and `g_gaba` hold the synaptic currents (pA), I_AMPA and
/// I_GABA are those currents, and its conductance entries are 0 (it has none; a
/// current in them would be clipped at the conductances' limit).
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
    let cond = p.syn_current == 0;
    [
        v,
        if cond { b.g_ampa[i] } else { 0.0 },
        if cond { b.g_gaba[i] } else { 0.0 },
        open,
        blocked,
        p.g_nmda_max * g_open * (p.e_nmda - v),
        if p.syn_current != 0 {
            b.g_ampa[i]
        } else {
            b.g_ampa[i] * (p.e_ampa - v)
        },
        if p.syn_current != 0 {
            b.g_gaba[i]
        } else {
            b.g_gaba[i] * (p.e_gaba - v)
        },
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
pub fn population_sums(p: &PopParams, b: &Buffers) -> SampleSums {
    let r = p.offset as usize..(p.offset + p.size) as usize;
    range_sums(
        p,
        &b.v[r.clone()],
        &b.g_ampa[r.clone()],
        &b.g_gaba[r.clone()],
        [&b.pools[0][r.clone()], &b.pools[1][r]],
    )
}

/// Sums of [`neuron_sample`] over a range of population `p`'s neurons, given as that
/// range of V, g_AMPA, g_GABA and the NMDA pools (AVX2 where available).
pub fn range_sums(
    p: &PopParams,
    v: &[f32],
    ga: &[f32],
    gg: &[f32],
    pools: [&[[f32; 4]]; 2],
) -> SampleSums {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { range_sums_avx2(p, v, ga, gg, pools) };
    }
    range_sums_inline(p, v, ga, gg, pools)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn range_sums_avx2(
    p: &PopParams,
    v: &[f32],
    ga: &[f32],
    gg: &[f32],
    pools: [&[[f32; 4]]; 2],
) -> SampleSums {
    range_sums_inline(p, v, ga, gg, pools)
}

/// [`range_sums`] without the dispatch, for callers already compiled for AVX2.
#[inline(always)]
pub(crate) fn range_sums_inline(
    p: &PopParams,
    v: &[f32],
    ga: &[f32],
    gg: &[f32],
    pools: [&[[f32; 4]]; 2],
) -> SampleSums {
    let n = v.len();
    let (ga, gg) = (&ga[..n], &gg[..n]);
    let q = |x: f32, k: usize| quantise(x, STAT_SCALES[k]);
    let mut out = SampleSums::default();
    // V, conductances and their currents: vectorisable loops with the same
    // operations as `sample_values`.
    out.put(0, v.iter().map(|&x| q(x, 0)).fold((0, 0), sum_and_max));
    if p.syn_current != 0 {
        // Current-based: the synaptic currents themselves (pA), and no conductances.
        out.put(6, ga.iter().map(|&x| q(x, 6)).fold((0, 0), sum_and_max));
        out.put(7, gg.iter().map(|&x| q(x, 7)).fold((0, 0), sum_and_max));
    } else {
        out.put(1, ga.iter().map(|&x| q(x, 1)).fold((0, 0), sum_and_max));
        out.put(2, gg.iter().map(|&x| q(x, 2)).fold((0, 0), sum_and_max));
        out.put(
            6,
            ga.iter()
                .zip(v)
                .map(|(&g, &x)| q(g * (p.e_ampa - x), 6))
                .fold((0, 0), sum_and_max),
        );
        out.put(
            7,
            gg.iter()
                .zip(v)
                .map(|(&g, &x)| q(g * (p.e_gaba - x), 7))
                .fold((0, 0), sum_and_max),
        );
    }
    // Without NMDA receptors the NMDA entries (open, blocked, current) are 0 (the
    // current is g_max * 0 * (E - V) = +-0, which quantises to 0).
    match p.n_pools {
        0 => {}
        1 => nmda_sums::<1>(p, v, pools, &mut out),
        _ => nmda_sums::<2>(p, v, pools, &mut out),
    }
    out
}

/// `a + b` for the sums of quantised values: each at most `STAT_CLAMP` (2^24) in size,
/// so a sum over any number of neurons a u32 can count stays far below 2^63 and the
/// add never wraps. Wrapping, it carries no overflow check, whose panic branch kept
/// these loops from vectorising in builds with overflow checks (the tests').
#[inline(always)]
fn add_i64(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

#[allow(clippy::needless_range_loop, reason = "indexes several arrays")]
/// The NMDA entries of [`sample_values`] (open, blocked, current), summed over a
/// range: `mg_block`'s exponential once per neuron for all pools, otherwise the same
/// operations in the same order.
#[inline(always)]
fn nmda_sums<const NP: usize>(
    p: &PopParams,
    v: &[f32],
    pools: [&[[f32; 4]]; 2],
    out: &mut SampleSums,
) {
    let n = v.len();
    // Two named slices, not an array of them indexed by pool: the vectoriser needs
    // to see each load's base pointer.
    let (pool0, pool1) = (&pools[0][..n], &pools[1][..n]);
    let frac: [f32; NP] = std::array::from_fn(|k| p.pools[k].fraction);
    let mg_k0: [f32; NP] = std::array::from_fn(|k| p.pools[k].mg_over_k0);
    let (mut s3, mut s4, mut s5) = ((0i64, 0u32), (0i64, 0u32), (0i64, 0u32));
    for j in 0..n {
        let x = v[j];
        let s = [pool0[j], if NP > 1 { pool1[j] } else { [0.0; 4] }];
        let e_mg = exp_v(-MG_SLOPE_PER_MV * x);
        let mut open = 0.0;
        let mut blocked = 0.0;
        let mut g_open = 0.0;
        for k in 0..NP {
            let [o, bl, t, _] = s[k];
            open += frac[k] * o;
            blocked += frac[k] * (bl + t);
            g_open += frac[k] * o * (1.0 / (1.0 + mg_k0[k] * e_mg));
        }
        s3 = sum_and_max(s3, quantise(open, STAT_SCALES[3]));
        s4 = sum_and_max(s4, quantise(blocked, STAT_SCALES[4]));
        s5 = sum_and_max(
            s5,
            quantise(p.g_nmda_max * g_open * (p.e_nmda - x), STAT_SCALES[5]),
        );
    }
    out.put(3, s3);
    out.put(4, s4);
    out.put(5, s5);
}
