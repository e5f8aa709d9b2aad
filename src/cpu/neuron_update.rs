//! CPU twin of `shaders/neuron_update.wgsl`: one call per neuron, the same operations
//! in the same order, so that spikes and state match the shader bit for bit.
#![allow(
    clippy::needless_range_loop,
    reason = "loops written like the GPU shader"
)]

use glam::UVec2;

use super::Buffers;
use crate::model::ketamine::{pool_step, PoolState};
use crate::model::layout::{Ctrl, ParamsBlock, PopParams, GLU_SCALE};
use crate::model::limits::NO_SPIKE;
use crate::model::mg_block;
use crate::rng::exp_f32;
use crate::rng::{key, poisson_inversion, threefry2x32, uniform01, STREAM_POISSON};

/// Integrate neuron `i` of population `pop` over one step, with free ketamine
/// `conc_um` at the receptors.
///
/// `C dV/dt = g_L (E_L - V) + g_AMPA (E_AMPA - V) + g_GABA (E_GABA - V)
///  + g_NMDA sum_k f_k O_k B_Mg,k(V) (E_NMDA - V) + I_ext` (SCIENCE.md sections 1, 3),
/// forward Euler; inputs that arrive this step (ring-buffer slot `step % slots`, plus
/// Poisson drive) are added before V is advanced; conductances then decay by their
/// per-step factors and each NMDA pool's C/O/B/T fractions take one exact split step
/// (`ketamine::pool_step`) with this step's drive x, the pre-step V and `conc_um`.
pub fn neuron_update(
    i: u32,
    pop: u32,
    prm: &ParamsBlock,
    recips: &[f32],
    b: &mut Buffers,
    ctrl: &mut Ctrl,
    conc_um: f32,
) {
    let sim = &prm.sim;
    let p = &prm.pops[pop as usize];
    let iu = i as usize;
    let step = ctrl.step;
    let slot = step % sim.ring_slots;
    let idx = (slot * sim.n_total + i) as usize;
    let in_a = b.ring[0][idx];
    let in_g = b.ring[1][idx];
    let in_n = b.ring[2][idx];
    b.ring[0][idx] = 0;
    b.ring[1][idx] = 0;
    b.ring[2][idx] = 0;
    let mut ga = b.g_ampa[iu] + in_a as f32 * sim.inv_scale[0];
    let mut gg = b.g_gaba[iu] + in_g as f32 * sim.inv_scale[1];
    let mut x = b.x_nmda[iu] + in_n as f32 * sim.inv_scale[2];
    let seed = sim.seed_lo as u64 | ((sim.seed_hi as u64) << 32);
    for d in 0..p.n_drives {
        let dp = &prm.drives[(p.drive_start + d) as usize];
        let r = threefry2x32(UVec2::new(i, step), key(seed, STREAM_POISSON | dp.index));
        let k = poisson_inversion(uniform01(r.x), dp.mean, dp.exp_neg_mean, recips);
        if k > 0 {
            let add = k as f32 * dp.weight;
            if dp.receptor == 0 {
                ga += add;
            } else if dp.receptor == 1 {
                gg += add;
            } else {
                x += add;
            }
        }
    }
    let v0 = b.v[iu];
    let mut v = v0;
    let mut rf = b.refrac[iu];
    let mut spiked = false;
    if rf > 0 {
        rf -= 1;
    } else {
        let mut i_syn = ga * (p.e_ampa - v) + gg * (p.e_gaba - v);
        if p.n_pools > 0 {
            let mut g_open = 0.0;
            for k in 0..p.n_pools as usize {
                let pl = &p.pools[k];
                g_open += pl.fraction * b.pools[k][iu][0] * mg_block(v, pl.mg_over_k0);
            }
            i_syn += p.g_nmda_max * g_open * (p.e_nmda - v);
        }
        v += p.dt_over_c * (p.g_l * (p.e_l - v) + i_syn + p.i_ext);
        if v >= p.v_th {
            v = p.v_reset;
            rf = p.ref_steps;
            spiked = true;
        }
    }
    b.g_ampa[iu] = ga * p.decay_ampa;
    b.g_gaba[iu] = gg * p.decay_gaba;
    for k in 0..p.n_pools as usize {
        let pl = &p.pools[k];
        let [o, bl, t, _] = b.pools[k][iu];
        let st = pool_step(
            PoolState { o, b: bl, t },
            &pl.rates(),
            x,
            v0,
            mg_block(v0, pl.mg_over_k0),
            conc_um,
        );
        b.pools[k][iu] = [st.o, st.b, st.t, 0.0];
    }
    b.x_nmda[iu] = x * p.decay_nmda_rise;
    b.v[iu] = v;
    b.refrac[iu] = rf;
    if spiked {
        record_spike(i, pop, prm, b, ctrl);
    }
}

/// A spike of neuron `i` (population `pop`) in the current step: ISI accumulators,
/// the step's spike list, the population count and, if asked for, the spike record
/// (the shader's `if (spiked)` block).
fn record_spike(i: u32, pop: u32, prm: &ParamsBlock, b: &mut Buffers, ctrl: &mut Ctrl) {
    let sim = &prm.sim;
    let step = ctrl.step;
    let p = &prm.pops[pop as usize];
    if p.glu_on != 0 {
        // Release p R per site; R recovered exponentially since the last spike.
        let last = b.isi[i as usize].last_step;
        let r = if last == NO_SPIKE {
            1.0
        } else {
            1.0 - (1.0 - b.glu_r[i as usize]) * exp_f32(-p.glu_rec_rate * (step - last) as f32)
        };
        let rel = p.glu_p_release * r;
        b.glu_r[i as usize] = r - rel;
        let q = (rel * p.glu_sites * GLU_SCALE + 0.5) as u32;
        b.glu_release[((step % sim.count_capacity) * sim.n_pop + pop) as usize] += q as u64;
    }
    let st = &mut b.isi[i as usize];
    if st.last_step != NO_SPIKE {
        let isi = step - st.last_step;
        st.count += 1;
        st.sum_steps += isi;
        st.sum_sq += isi as f32 * isi as f32;
    }
    st.last_step = step;
    b.spikes[ctrl.n_spikes as usize] = i;
    ctrl.n_spikes += 1;
    b.pop_counts[((step % sim.count_capacity) * sim.n_pop + pop) as usize] += 1;
    if prm.pops[pop as usize].record_spikes != 0 {
        let r = ctrl.n_rec;
        ctrl.n_rec += 1;
        if r < sim.rec_capacity {
            b.rec[2 * r as usize] = step;
            b.rec[2 * r as usize + 1] = i;
        }
    }
}

/// Scratch space of the population-at-a-time path.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    ga: Vec<f32>,
    gg: Vec<f32>,
    x: Vec<f32>,
    fired: Vec<u32>,
}

/// The same update as [`neuron_update`] for a whole population, split into phases
/// whose inner loops the compiler vectorises: (1) ring-buffer inputs, (2) Poisson drive
/// (scalar, in drive order), (3) membrane and synapses, branch-free (refractory
/// neurons compute a V that is then discarded), (4) spike bookkeeping in neuron
/// order. Each neuron sees exactly the operations of [`neuron_update`] in the same
/// order, so results are bit-identical to it and to the shader (`tests/cpu_paths.rs`).
pub fn update_population(
    pop: u32,
    prm: &ParamsBlock,
    recips: &[f32],
    b: &mut Buffers,
    ctrl: &mut Ctrl,
    sc: &mut Scratch,
    conc_um: f32,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { update_population_avx2(pop, prm, recips, b, ctrl, sc, conc_um) };
        return;
    }
    update_population_impl(pop, prm, recips, b, ctrl, sc, conc_um);
}

/// [`update_population`] compiled for AVX2 (8 lanes). AVX2 alone never fuses
/// multiply-adds (FMA is a separate feature, and Rust does not contract), so the
/// results are the same bits as the portable build's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_population_avx2(
    pop: u32,
    prm: &ParamsBlock,
    recips: &[f32],
    b: &mut Buffers,
    ctrl: &mut Ctrl,
    sc: &mut Scratch,
    conc_um: f32,
) {
    update_population_impl(pop, prm, recips, b, ctrl, sc, conc_um);
}

#[inline(always)]
fn update_population_impl(
    pop: u32,
    prm: &ParamsBlock,
    recips: &[f32],
    b: &mut Buffers,
    ctrl: &mut Ctrl,
    sc: &mut Scratch,
    conc_um: f32,
) {
    let sim = &prm.sim;
    let p = &prm.pops[pop as usize];
    let (off, n) = (p.offset as usize, p.size as usize);
    let step = ctrl.step;
    let base = ((step % sim.ring_slots) * sim.n_total) as usize + off;
    let pool = has_nmda_pool(p);
    sc.ga.resize(n, 0.0);
    sc.gg.resize(n, 0.0);
    sc.x.resize(n, 0.0);
    sc.fired.resize(n, 0);
    {
        // Phase 1: arrivals.
        let [ra, rg, rn] = &mut b.ring;
        let (ra, rg, rn) = (
            &mut ra[base..base + n],
            &mut rg[base..base + n],
            &mut rn[base..base + n],
        );
        let (sa, sg, sn) = (sim.inv_scale[0], sim.inv_scale[1], sim.inv_scale[2]);
        let (ga0, gg0, x0) = (
            &b.g_ampa[off..off + n],
            &b.g_gaba[off..off + n],
            &b.x_nmda[off..off + n],
        );
        for j in 0..n {
            sc.ga[j] = ga0[j] + ra[j] as f32 * sa;
            sc.gg[j] = gg0[j] + rg[j] as f32 * sg;
            ra[j] = 0;
            rg[j] = 0;
        }
        // Without an NMDA pool nothing can target NMDA here (the scenario check
        // forbids it), so the NMDA ring entries, x and s stay exactly 0: skip them.
        if pool {
            for j in 0..n {
                sc.x[j] = x0[j] + rn[j] as f32 * sn;
                rn[j] = 0;
            }
        }
    }
    // Phase 2: Poisson drive.
    let seed = sim.seed_lo as u64 | ((sim.seed_hi as u64) << 32);
    for d in 0..p.n_drives {
        let dp = &prm.drives[(p.drive_start + d) as usize];
        let k = key(seed, STREAM_POISSON | dp.index);
        let target = match dp.receptor {
            0 => &mut sc.ga,
            1 => &mut sc.gg,
            _ => &mut sc.x,
        };
        for (j, g) in target.iter_mut().enumerate() {
            let r = threefry2x32(UVec2::new((off + j) as u32, step), k);
            let c = poisson_inversion(uniform01(r.x), dp.mean, dp.exp_neg_mean, recips);
            if c > 0 {
                *g += c as f32 * dp.weight;
            }
        }
    }
    // Phase 3: membrane and synapses.
    let v = &mut b.v[off..off + n];
    let rf = &mut b.refrac[off..off + n];
    let [pool0, pool1] = &mut b.pools;
    let pools = [&mut pool0[off..off + n], &mut pool1[off..off + n]];
    let (ga_out, gg_out, x_out) = (
        &mut b.g_ampa[off..off + n],
        &mut b.g_gaba[off..off + n],
        &mut b.x_nmda[off..off + n],
    );
    let (ga, gg, x, fired) = (&sc.ga[..n], &sc.gg[..n], &sc.x[..n], &mut sc.fired[..n]);
    if pool {
        membrane::<true>(
            p, v, rf, pools, ga_out, gg_out, x_out, ga, gg, x, fired, conc_um,
        );
    } else {
        membrane::<false>(
            p, v, rf, pools, ga_out, gg_out, x_out, ga, gg, x, fired, conc_um,
        );
    }
    finish_spikes(pop, prm, b, ctrl, sc);
}

/// Phase 4 of [`update_population`]: spikes in neuron order.
fn finish_spikes(pop: u32, prm: &ParamsBlock, b: &mut Buffers, ctrl: &mut Ctrl, sc: &Scratch) {
    let p = &prm.pops[pop as usize];
    let (off, n) = (p.offset as usize, p.size as usize);
    // Phase 4: spikes, in neuron order; blocks without a spike are skipped whole.
    const BLOCK: usize = 64;
    for (bi, block) in sc.fired[..n].chunks(BLOCK).enumerate() {
        if block.iter().fold(0, |acc, &f| acc | f) == 0 {
            continue;
        }
        for (k, _) in block.iter().enumerate().filter(|(_, &f)| f != 0) {
            record_spike((off + bi * BLOCK + k) as u32, pop, prm, b, ctrl);
        }
    }
}

/// Whether a population has NMDA receptors (the scenario's `[populations.nmda]`).
pub fn has_nmda_pool(p: &PopParams) -> bool {
    p.n_pools > 0
}

/// Phase 3 of [`update_population`], branch-free so that it vectorises; `POOL`
/// selects the variant with NMDA receptor pools (current and kinetics).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn membrane<const POOL: bool>(
    p: &PopParams,
    v: &mut [f32],
    rf: &mut [u32],
    pools: [&mut [[f32; 4]]; 2],
    ga_out: &mut [f32],
    gg_out: &mut [f32],
    x_out: &mut [f32],
    ga_in: &[f32],
    gg_in: &[f32],
    x_in: &[f32],
    fired: &mut [u32],
    conc_um: f32,
) {
    // Separate slice arguments are `noalias` to the compiler, so the loop vectorises
    // without run-time overlap checks.
    let p = *p;
    let n = v.len();
    let np = p.n_pools as usize;
    let rates = [p.pools[0].rates(), p.pools[1].rates()];
    let [pool0, pool1] = pools;
    let pools = [&mut pool0[..n], &mut pool1[..n]];
    let (rf, ga_out, gg_out, x_out) = (
        &mut rf[..n],
        &mut ga_out[..n],
        &mut gg_out[..n],
        &mut x_out[..n],
    );
    let (ga_in, gg_in, x_in, fired) = (&ga_in[..n], &gg_in[..n], &x_in[..n], &mut fired[..n]);
    for j in 0..n {
        let (ga, gg, x, v0, r0) = (ga_in[j], gg_in[j], x_in[j], v[j], rf[j]);
        let mut i_syn = ga * (p.e_ampa - v0) + gg * (p.e_gaba - v0);
        if POOL {
            let mut g_open = 0.0;
            for k in 0..np {
                let pl = &p.pools[k];
                g_open += pl.fraction * pools[k][j][0] * mg_block(v0, pl.mg_over_k0);
            }
            i_syn += p.g_nmda_max * g_open * (p.e_nmda - v0);
        }
        let v1 = v0 + p.dt_over_c * (p.g_l * (p.e_l - v0) + i_syn + p.i_ext);
        let active = r0 == 0;
        let fire = active & (v1 >= p.v_th);
        // A refractory neuron holds V, and its V is V_reset (it was reset when it
        // fired and nothing changes it while refractory), so "held" and "reset" are the
        // same value: one select against constants. (Selecting the loaded V instead
        // makes the vectoriser emit slow masked stores.) Likewise a refractory count of
        // 0 (active) stays 0 and any other counts down.
        v[j] = if fire | !active { p.v_reset } else { v1 };
        rf[j] = if fire {
            p.ref_steps
        } else {
            r0.saturating_sub(1)
        };
        fired[j] = fire as u32;
        ga_out[j] = ga * p.decay_ampa;
        gg_out[j] = gg * p.decay_gaba;
        if POOL {
            for k in 0..np {
                let pl = &p.pools[k];
                let [o, bl, t, _] = pools[k][j];
                let st = pool_step(
                    PoolState { o, b: bl, t },
                    &rates[k],
                    x,
                    v0,
                    mg_block(v0, pl.mg_over_k0),
                    conc_um,
                );
                pools[k][j] = [st.o, st.b, st.t, 0.0];
            }
            x_out[j] = x * p.decay_nmda_rise;
        }
    }
}
