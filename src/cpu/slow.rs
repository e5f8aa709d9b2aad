//! CPU twins of `shaders/signal_sum.wgsl` and `shaders/slow_update.wgsl`: the slow
//! signalling state (SCIENCE.md section 7), the same f32 operations in the same order
//! per neuron, and integer population sums (so the result does not depend on how the
//! neurons are split over threads).

use rayon::prelude::*;

use crate::model::layout::{
    ParamsBlock, SlowParams, SlowPop, SIG_SCALE, SLOW_SCALE, SLOW_SIGNAL, SLOW_STATE,
    SLOW_SUMS_PER_POP,
};
use crate::rng::{exp_f32, fixed_u32};

/// Neurons per parallel chunk of the slow kernels.
const CHUNK: usize = 4096;

/// Per-population sums, `SLOW_SUMS_PER_POP` per population (u64).
pub type SlowSums = Vec<u64>;

/// Population of each neuron range: `(offset, size, pop)` of the populations with
/// `on(pop)`.
fn ranges(prm: &ParamsBlock, on: impl Fn(usize) -> bool) -> Vec<(usize, usize, usize)> {
    (0..prm.sim.n_pop as usize)
        .filter(|&p| on(p))
        .map(|p| (prm.pops[p].offset as usize, prm.pops[p].size as usize, p))
        .collect()
}

/// `signal_sum`: each signalling neuron's accumulated local AMPA input (nS) times
/// `inv_interval_s`, rounded once, summed per population into `sums`; the
/// accumulators are reset.
pub fn signal_sum(prm: &ParamsBlock, slow: &SlowParams, sig: &mut [[f32; 2]], sums: &mut SlowSums) {
    for (off, size, p) in ranges(prm, |p| prm.pops[p].sig_on != 0) {
        let total: u64 = sig[off..off + size]
            .par_chunks_mut(CHUNK)
            .map(|c| {
                let mut t = 0u64;
                for sg in c {
                    t += fixed_u32(sg[1] * slow.inv_interval_s, SIG_SCALE) as u64;
                    sg[1] = 0.0;
                }
                t
            })
            .sum();
        sums[p * SLOW_SUMS_PER_POP + SLOW_SIGNAL] += total;
    }
}

/// D(r) = r^n / (r^n + K^n), r^n by repeated multiplication (as the shader).
fn hill(slow: &SlowParams, r: f32) -> f32 {
    let mut rn = 1.0f32;
    for _ in 0..slow.hill_n {
        rn *= r;
    }
    rn / (rn + slow.hill_k_pow)
}

/// One neuron of `slow_update` (see the shader for the equations).
#[inline]
fn update_neuron(slow: &SlowParams, sp: &SlowPop, st: &mut [f32; 4], sg: &mut [f32; 2]) {
    if slow.mode == 1 {
        *st = [sp.a_end, slow.m_rest, slow.m_rest, 1.0];
        return;
    }
    let inv_n = 1.0 / slow.n_sub as f32;
    let [mut r_ref, mut b, mut m, mut pr] = *st;
    let mut s = sg[0];
    for j in 0..slow.n_sub {
        let a = sp.a_start + (sp.a_end - sp.a_start) * ((j as f32 + 0.5) * inv_n);
        let r = if r_ref > 0.0 { a / r_ref } else { 1.0 };
        let d = hill(slow, r);
        r_ref += (a - r_ref) * slow.adapt_rate;
        b += (d - b) * slow.bdnf_rate;
        m += (slow.mtor_gain * (slow.bdnf_gain * b) - m) * slow.mtor_rate;
        pr += (m / slow.m_rest - pr) * slow.protein_rate;
        let g = slow.growth_per_h * (pr - 1.0 - slow.threshold).max(0.0);
        let lam = g + slow.loss_per_h;
        let s_inf = (g * slow.max_density + sp.s_set * slow.loss_per_h) / lam;
        s = s_inf + (s - s_inf) * exp_f32(-lam * slow.h_hours);
    }
    *st = [r_ref, b, m, pr];
    sg[0] = s;
}

/// `slow_update`: advance (or capture the baseline of) every signalling neuron's slow
/// state and add the population sums of R, b, m, P, s to `sums`.
pub fn slow_update(
    prm: &ParamsBlock,
    slow: &SlowParams,
    pops: &[SlowPop],
    sig: &mut [[f32; 2]],
    state: &mut [[f32; 4]],
    sums: &mut SlowSums,
) {
    for (off, size, p) in ranges(prm, |p| pops.get(p).is_some_and(|sp| sp.on != 0)) {
        let part: [u64; 5] = state[off..off + size]
            .par_chunks_mut(CHUNK)
            .zip(sig[off..off + size].par_chunks_mut(CHUNK))
            .map(|(st, sg)| {
                let mut t = [0u64; 5];
                for (st, sg) in st.iter_mut().zip(sg.iter_mut()) {
                    update_neuron(slow, &pops[p], st, sg);
                    t[0] += fixed_u32(st[0], SIG_SCALE) as u64;
                    t[1] += fixed_u32(st[1], SLOW_SCALE) as u64;
                    t[2] += fixed_u32(st[2], SLOW_SCALE) as u64;
                    t[3] += fixed_u32(st[3], SLOW_SCALE) as u64;
                    t[4] += fixed_u32(sg[0], SLOW_SCALE) as u64;
                }
                t
            })
            .reduce(|| [0; 5], |a, b| std::array::from_fn(|k| a[k] + b[k]));
        for (k, v) in part.iter().enumerate() {
            sums[p * SLOW_SUMS_PER_POP + SLOW_STATE + k] += v;
        }
    }
}
