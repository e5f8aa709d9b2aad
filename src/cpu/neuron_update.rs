//! CPU twin of `shaders/neuron_update.wgsl`: one call per neuron, the same operations
//! in the same order, so that spikes and state match the shader bit for bit.
#![allow(
    clippy::needless_range_loop,
    reason = "loops written like the GPU shader"
)]

use glam::UVec2;

use super::reduce_stats::SampleSums;
use super::simd::{
    exp_f32 as exp_v, one_minus_exp_neg_with, poisson_cdf, poisson_count_from, poisson_count_head,
    threefry_x0, CDF_HEAD,
};
use super::Buffers;
use crate::backend::{note_unstable, unstable_factor_bits};
use crate::model::ketamine::{pool_step, PoolRates, PoolState, KD_REF_MV};
use crate::model::layout::{Ctrl, ParamsBlock, PopParams, SimParams, GLU_SCALE};
use crate::model::limits::{MAX_EULER_STEP_FACTOR, NO_SPIKE};
use crate::model::{mg_block, MG_SLOPE_PER_MV};
use crate::rng::exp_f32;
use crate::rng::{poisson_inversion, threefry2x32, uniform01};

/// Integrate neuron `i` of population `pop` over one step, with free ketamine
/// `conc_um` at the receptors.
///
/// `C dV/dt = g_L (E_L - V) + g_AMPA (E_AMPA - V) + g_GABA (E_GABA - V)
///  + g_NMDA sum_k f_k O_k B_Mg,k(V) (E_NMDA - V) + I_ext` (SCIENCE.md sections 1, 3),
/// forward Euler; inputs that arrive this step (ring-buffer slot `step % slots`, plus
/// Poisson drive) are added before V is advanced; conductances then decay by their
/// per-step factors and each NMDA pool's C/O/B/T fractions take one exact split step
/// (`ketamine::pool_step`) with this step's drive x, the pre-step V and `conc_um`.
/// In a signalling population the local AMPA input per synapse is accumulated and the
/// recurrent AMPA and NMDA input scaled by the neuron's synapse density; every AMPA
/// increment is scaled by `1 - ampa_block`.
#[allow(clippy::too_many_arguments, reason = "the shader's bindings")]
pub fn neuron_update(
    i: u32,
    pop: u32,
    prm: &ParamsBlock,
    recips: &[f32],
    b: &mut Buffers,
    ctrl: &mut Ctrl,
    conc_um: f32,
    ampa_block: f32,
) {
    let sim = &prm.sim;
    let p = &prm.pops[pop as usize];
    let iu = i as usize;
    let step = ctrl.step;
    if p.syn_current != 0 {
        if current_update(i, pop, p, prm, recips, b, step) {
            record_spike(i, pop, prm, b, ctrl);
        }
        return;
    }
    let slot = step % sim.ring_slots;
    let idx = (slot * sim.n_total + i) as usize;
    let in_a = b.ring[0][idx];
    let in_g = b.ring[1][idx];
    let in_n = b.ring[2][idx];
    b.ring[0][idx] = 0;
    b.ring[1][idx] = 0;
    b.ring[2][idx] = 0;
    let ampa_gain = 1.0 - ampa_block;
    let mut in_af = in_a as f32 * sim.inv_scale[0];
    let mut in_nf = in_n as f32 * sim.inv_scale[2];
    if p.sig_on != 0 {
        // The activation signal is the input per synapse (before the density scaling).
        let sg = &mut b.sig_nrn[iu];
        if in_a != 0 {
            sg[1] += in_af * ampa_gain;
        }
        in_af *= sg[0];
        in_nf *= sg[0];
    }
    let mut ga = b.g_ampa[iu] + in_af * ampa_gain;
    let mut gg = b.g_gaba[iu] + in_g as f32 * sim.inv_scale[1];
    let mut x = b.x_nmda[iu] + in_nf;
    for d in 0..p.n_drives {
        let dp = &prm.drives[(p.drive_start + d) as usize];
        let r = threefry2x32(
            UVec2::new(i - dp.neuron_base, step),
            UVec2::new(dp.key_lo, dp.key_hi),
        );
        let k = poisson_inversion(uniform01(r.x), dp.mean, dp.exp_neg_mean, recips);
        if k > 0 {
            let add = k as f32 * dp.weight;
            if dp.receptor == 0 {
                ga += add * ampa_gain;
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
        let mut g_total = p.g_l + ga + gg;
        if p.n_pools > 0 {
            let mut g_open = 0.0;
            for k in 0..p.n_pools as usize {
                let pl = &p.pools[k];
                g_open += pl.fraction * b.pools[k][iu][0] * mg_block(v, pl.mg_over_k0);
            }
            let g_nmda = p.g_nmda_max * g_open;
            i_syn += g_nmda * (p.e_nmda - v);
            g_total += g_nmda;
        }
        v += p.dt_over_c * (p.g_l * (p.e_l - v) + i_syn + p.i_ext);
        check_step(b, sim, pop, step, p.dt_over_c * g_total, v);
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

/// Neuron `i` of a current-based population `p` (NEST's `iaf_psc_exp`) over one
/// step; the shader's `current_update`. `g_ampa`/`g_gaba` hold the excitatory and
/// inhibitory synaptic currents (pA). Exact integration in NEST's order:
/// `V <- E_L + (V - E_L) P22 + I_ex P21ex + I_in P21in + I_ext P20` with the currents
/// at the step's start (unless refractory), then `I <- I exp(-dt/tau_syn)`, then this
/// step's arrivals (ring slot, Poisson drive) are added, acting on V from the next
/// step on. Returns whether the neuron fired.
fn current_update(
    i: u32,
    pop: u32,
    p: &PopParams,
    prm: &ParamsBlock,
    recips: &[f32],
    b: &mut Buffers,
    step: u32,
) -> bool {
    let sim = &prm.sim;
    let iu = i as usize;
    let idx = ((step % sim.ring_slots) * sim.n_total + i) as usize;
    let in_e = b.ring[0][idx];
    let in_i = b.ring[1][idx];
    b.ring[0][idx] = 0;
    b.ring[1][idx] = 0;
    let ie0 = b.g_ampa[iu];
    let ii0 = b.g_gaba[iu];
    let mut v = b.v[iu];
    let mut rf = b.refrac[iu];
    let mut spiked = false;
    if rf > 0 {
        rf -= 1;
    } else {
        v = p.e_l
            + (v - p.e_l) * p.cur_p22
            + ie0 * p.cur_p21ex
            + ii0 * p.cur_p21in
            + p.i_ext * p.cur_p20;
        // The exact propagator is stable at any step: only a non-finite V counts.
        check_step(b, sim, pop, step, 0.0, v);
        if v >= p.v_th {
            v = p.v_reset;
            rf = p.ref_steps;
            spiked = true;
        }
    }
    let mut ie = ie0 * p.decay_ampa + in_e as f32 * sim.inv_scale[0];
    let mut ii = ii0 * p.decay_gaba + in_i as f32 * sim.inv_scale[1];
    for d in 0..p.n_drives {
        let dp = &prm.drives[(p.drive_start + d) as usize];
        let r = threefry2x32(
            UVec2::new(i - dp.neuron_base, step),
            UVec2::new(dp.key_lo, dp.key_hi),
        );
        let k = poisson_inversion(uniform01(r.x), dp.mean, dp.exp_neg_mean, recips);
        if k > 0 {
            let add = k as f32 * dp.weight;
            if dp.receptor == 0 {
                ie += add;
            } else {
                ii += add;
            }
        }
    }
    b.g_ampa[iu] = ie;
    b.g_gaba[iu] = ii;
    b.v[iu] = v;
    b.refrac[iu] = rf;
    spiked
}

/// One lane's part of the stability check (the shader's `check_step`): whether an
/// integrated (`active`) membrane step with factor `h = dt g_total / C` and new V
/// `v1` is unstable (`h > MAX_EULER_STEP_FACTOR` or `v1` infinite or NaN), and the
/// bits it contributes to the largest factor (0 when stable). Branch-free, for the
/// vectorised loops.
#[inline(always)]
fn unstable_lane(active: bool, h: f32, v1: f32) -> (u32, u32) {
    let bad = active & ((h > MAX_EULER_STEP_FACTOR) | !v1.is_finite());
    (bad as u32, if bad { unstable_factor_bits(h) } else { 0 })
}

/// The shader's `check_step` for one neuron of the per-neuron path.
fn check_step(b: &mut Buffers, sim: &SimParams, pop: u32, step: u32, h: f32, v: f32) {
    let (bad, bits) = unstable_lane(true, h, v);
    let tail = (sim.count_capacity * sim.n_pop) as usize;
    note_unstable(&mut b.pop_counts[tail..], pop, step, bad, bits);
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
/// Scratch space of the population-at-a-time path, indexed by neuron (all
/// populations): this step's conductances and NMDA drive before the membrane phase,
/// uniforms of the Poisson drive, and who fired.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    ga: Vec<f32>,
    gg: Vec<f32>,
    x: Vec<f32>,
    u: Vec<f32>,
    cnt: Vec<u32>,
    fired: Vec<u32>,
}

/// Neurons per block when one thread updates the whole network: small enough that a
/// block's arrays stay in the cache between the phases of the update.
pub const SEQ_BLOCK: usize = 4096;

/// One contiguous range of one population's neurons: every per-neuron array that
/// phases 1-3 of the update touch, cut to the range. Blocks are disjoint, so they can
/// be updated on different threads.
pub struct Block<'a> {
    pop: u32,
    lo: u32,
    ring: [&'a mut [i32]; 3],
    v: &'a mut [f32],
    rf: &'a mut [u32],
    g_ampa: &'a mut [f32],
    g_gaba: &'a mut [f32],
    x_nmda: &'a mut [f32],
    pools: [&'a mut [[f32; 4]]; 2],
    sig: &'a mut [[f32; 2]],
    ga: &'a mut [f32],
    gg: &'a mut [f32],
    x: &'a mut [f32],
    u: &'a mut [f32],
    cnt: &'a mut [u32],
    fired: &'a mut [u32],
}

/// Cut the first `n` elements off `s`.
fn cut<'a, T>(s: &mut &'a mut [T], n: usize) -> &'a mut [T] {
    let (a, b) = std::mem::take(s).split_at_mut(n);
    *s = b;
    a
}

impl<'a> Block<'a> {
    /// The population this block belongs to.
    pub fn pop(&self) -> u32 {
        self.pop
    }

    /// Neurons in the block.
    pub fn len(&self) -> usize {
        self.v.len()
    }

    /// Whether the block is empty.
    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    /// Cut the first `n` neurons off the block.
    fn cut_front(&mut self, n: usize) -> Block<'a> {
        let [r0, r1, r2] = &mut self.ring;
        let [p0, p1] = &mut self.pools;
        let front = Block {
            pop: self.pop,
            lo: self.lo,
            ring: [cut(r0, n), cut(r1, n), cut(r2, n)],
            v: cut(&mut self.v, n),
            rf: cut(&mut self.rf, n),
            g_ampa: cut(&mut self.g_ampa, n),
            g_gaba: cut(&mut self.g_gaba, n),
            x_nmda: cut(&mut self.x_nmda, n),
            pools: [cut(p0, n), cut(p1, n)],
            sig: cut(&mut self.sig, n),
            ga: cut(&mut self.ga, n),
            gg: cut(&mut self.gg, n),
            x: cut(&mut self.x, n),
            u: cut(&mut self.u, n),
            cnt: cut(&mut self.cnt, n),
            fired: cut(&mut self.fired, n),
        };
        self.lo += n as u32;
        front
    }
}

/// Cut the update state of all populations into blocks of at most `max_len` neurons
/// (each population into `ceil(size / max_len)` nearly equal blocks, in neuron order;
/// a multiple of 64 unless a population is smaller), for the step `step`.
pub fn blocks<'a>(
    prm: &ParamsBlock,
    b: &'a mut Buffers,
    sc: &'a mut Scratch,
    step: u32,
    max_len: usize,
) -> Vec<Block<'a>> {
    let mut out = Vec::new();
    for_each_block(prm, b, sc, step, max_len, |blk| out.push(blk));
    out
}

/// [`blocks`], handing each block to `f` in neuron order instead of collecting them.
pub fn for_each_block<'a>(
    prm: &ParamsBlock,
    b: &'a mut Buffers,
    sc: &'a mut Scratch,
    step: u32,
    max_len: usize,
    mut f: impl FnMut(Block<'a>),
) {
    let sim = &prm.sim;
    let n_total = sim.n_total as usize;
    for s in [&mut sc.ga, &mut sc.gg, &mut sc.x, &mut sc.u] {
        s.resize(n_total, 0.0);
    }
    sc.fired.resize(n_total, 0);
    sc.cnt.resize(n_total, 0);
    let base = (step % sim.ring_slots) as usize * n_total;
    let [r0, r1, r2] = &mut b.ring;
    let [p0, p1] = &mut b.pools;
    let mut all = Block {
        pop: 0,
        lo: 0,
        ring: [
            &mut r0[base..base + n_total],
            &mut r1[base..base + n_total],
            &mut r2[base..base + n_total],
        ],
        v: &mut b.v[..],
        rf: &mut b.refrac[..],
        g_ampa: &mut b.g_ampa[..],
        g_gaba: &mut b.g_gaba[..],
        x_nmda: &mut b.x_nmda[..],
        pools: [&mut p0[..], &mut p1[..]],
        sig: &mut b.sig_nrn[..],
        ga: &mut sc.ga[..],
        gg: &mut sc.gg[..],
        x: &mut sc.x[..],
        u: &mut sc.u[..],
        cnt: &mut sc.cnt[..],
        fired: &mut sc.fired[..],
    };
    let pops = &prm.pops[..sim.n_pop as usize];
    let mut emit = |pop: usize| {
        let p = &pops[pop];
        let (off, n) = (p.offset as usize, p.size as usize);
        let at = all.lo as usize;
        assert!(off >= at, "populations overlap");
        all.cut_front(off - at);
        let pieces = n.div_ceil(max_len.max(64)).max(1);
        let len = n.div_ceil(pieces).next_multiple_of(64);
        let mut rest = n;
        while rest > 0 {
            let k = len.min(rest);
            let mut blk = all.cut_front(k);
            blk.pop = pop as u32;
            f(blk);
            rest -= k;
        }
    };
    // Populations in neuron order (the network lays them out contiguously in that
    // order; sorting only makes the cutting independent of that).
    if pops.windows(2).all(|w| w[0].offset <= w[1].offset) {
        (0..pops.len()).for_each(&mut emit);
    } else {
        let mut order: Vec<usize> = (0..pops.len()).collect();
        order.sort_by_key(|&k| pops[k].offset);
        order.into_iter().for_each(&mut emit);
    }
}

/// What a block update needs besides the block: constants and this step.
#[derive(Clone, Copy)]
pub struct StepInput<'a> {
    /// The network's constants.
    pub prm: &'a ParamsBlock,
    /// Reciprocals 1/k of the Poisson sampler.
    pub recips: &'a [f32],
    /// The step being taken.
    pub step: u32,
    /// Free ketamine at the receptors in this step (µM).
    pub conc_um: f32,
    /// Fraction of AMPA conductance blocked in this step (`interventions.ampa_block`).
    pub ampa_block: f32,
    /// Whether this step ends with a sample (the block then returns its sums).
    pub sample: bool,
}

/// What a block's update returns: on sample steps the sums of the sampled quantities
/// (zeros otherwise), and its unstable membrane steps (the shader's `check_step`):
/// how many, and the largest bits they contribute (0 for none).
#[derive(Debug, Clone, Copy)]
pub struct BlockOut {
    /// Sums of the sampled quantities and their clip mask (sample steps only).
    pub sums: SampleSums,
    /// Unstable neuron-steps in the block.
    pub unstable: u32,
    /// Largest `backend::unstable_factor_bits` among them.
    pub worst_bits: u32,
}

impl BlockOut {
    /// Add this block's unstable steps to a population's `(count, largest bits)`.
    pub fn add_unstable_to(&self, acc: &mut (u32, u32)) {
        acc.0 = acc.0.wrapping_add(self.unstable);
        acc.1 = acc.1.max(self.worst_bits);
    }
}

/// Phases 1-3 of the population update for one block (see [`update_population`]).
pub fn update_block(si: &StepInput, w: Block) -> BlockOut {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { update_block_avx2(si, w) };
    }
    update_block_impl(si, w)
}

/// [`update_block`] compiled for AVX2 (8 lanes). AVX2 alone never fuses
/// multiply-adds (FMA is a separate feature, and Rust does not contract), so the
/// results are the same bits as the portable build's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_block_avx2(si: &StepInput, w: Block) -> BlockOut {
    update_block_impl(si, w)
}

#[inline(always)]
fn update_block_impl(si: &StepInput, w: Block) -> BlockOut {
    let prm = si.prm;
    let sim = &prm.sim;
    let p = &prm.pops[w.pop as usize];
    if p.syn_current != 0 {
        return update_block_current(si, w);
    }
    let n = w.len();
    let step = si.step;
    let pool = has_nmda_pool(p);
    let Block {
        lo,
        ring: [ra, rg, rn],
        v,
        rf,
        g_ampa,
        g_gaba,
        x_nmda,
        pools: [pool0, pool1],
        sig,
        ga,
        gg,
        x,
        u,
        cnt,
        fired,
        ..
    } = w;
    let ampa_gain = 1.0 - si.ampa_block;
    {
        // Phase 1: arrivals.
        let (ra, rg, rn) = (&mut ra[..n], &mut rg[..n], &mut rn[..n]);
        let (sa, sg, sn) = (sim.inv_scale[0], sim.inv_scale[1], sim.inv_scale[2]);
        let (ga0, gg0, x0) = (&g_ampa[..n], &g_gaba[..n], &x_nmda[..n]);
        let (ga, gg, x) = (&mut ga[..n], &mut gg[..n], &mut x[..n]);
        if p.sig_on != 0 {
            // The local AMPA input per synapse is accumulated (adding 0.0 where
            // nothing arrived leaves the sum's bits as the shader's skipped write
            // does); synapse density scales the recurrent input.
            let sig = &mut sig[..n];
            for j in 0..n {
                let raw = ra[j] as f32 * sa;
                sig[j][1] += raw * ampa_gain;
                let in_af = raw * sig[j][0];
                ga[j] = ga0[j] + in_af * ampa_gain;
                gg[j] = gg0[j] + rg[j] as f32 * sg;
                ra[j] = 0;
                rg[j] = 0;
            }
            if pool {
                for j in 0..n {
                    x[j] = x0[j] + rn[j] as f32 * sn * sig[j][0];
                    rn[j] = 0;
                }
            }
        } else {
            for j in 0..n {
                ga[j] = ga0[j] + ra[j] as f32 * sa * ampa_gain;
                gg[j] = gg0[j] + rg[j] as f32 * sg;
                ra[j] = 0;
                rg[j] = 0;
            }
            // Without an NMDA pool nothing can target NMDA here (the scenario check
            // forbids it), so the NMDA ring entries, x and s stay exactly 0: skip them.
            if pool {
                for j in 0..n {
                    x[j] = x0[j] + rn[j] as f32 * sn;
                    rn[j] = 0;
                }
            }
        }
    }
    // Phase 2: Poisson drive, drive by drive (each neuron gets its drives in order):
    // the uniforms (Threefry), then the counts from the drive's cumulative table
    // (branch-free over its first entries, a scalar tail only where a count reaches
    // them all), then the jumps; the first and last loop vectorise.
    let u_max = uniform01(u32::MAX);
    for d in 0..p.n_drives {
        let dp = &prm.drives[(p.drive_start + d) as usize];
        // The counter is the neuron's index in its own network (batched sweeps).
        let first = lo - dp.neuron_base;
        let (u, cnt) = (&mut u[..n], &mut cnt[..n]);
        for (j, uj) in u.iter_mut().enumerate() {
            // A neuron's index in its network fits a u32, so the add cannot wrap;
            // wrapping, it has no overflow check to keep the loop from vectorising
            // in builds with overflow checks.
            *uj = uniform01(threefry_x0(
                first.wrapping_add(j as u32),
                step,
                dp.key_lo,
                dp.key_hi,
            ));
        }
        let cdf = poisson_cdf(dp.mean, dp.exp_neg_mean, si.recips);
        for (c, &uj) in cnt.iter_mut().zip(u.iter()) {
            *c = poisson_count_head(uj, &cdf);
        }
        if cdf[CDF_HEAD - 1] <= u_max {
            for (c, &uj) in cnt.iter_mut().zip(u.iter()) {
                if *c as usize == CDF_HEAD {
                    *c = poisson_count_from(uj, &cdf, CDF_HEAD);
                }
            }
        }
        let (target, gain) = match dp.receptor {
            0 => (&mut ga[..n], ampa_gain),
            1 => (&mut gg[..n], 1.0),
            _ => (&mut x[..n], 1.0),
        };
        let w = dp.weight;
        for (g, &c) in target.iter_mut().zip(cnt.iter()) {
            *g = if c > 0 { *g + c as f32 * w * gain } else { *g };
        }
    }
    // Phase 3: membrane and synapses.
    let pools = [&mut pool0[..n], &mut pool1[..n]];
    let (ga, gg, x, fired) = (&ga[..n], &gg[..n], &x[..n], &mut fired[..n]);
    let (unstable, worst_bits) = match p.n_pools {
        0 => membrane(p, v, rf, g_ampa, g_gaba, ga, gg, fired),
        1 => membrane_pools::<1>(
            p, v, rf, pools, g_ampa, g_gaba, x_nmda, ga, gg, x, fired, si.conc_um,
        ),
        _ => membrane_pools::<2>(
            p, v, rf, pools, g_ampa, g_gaba, x_nmda, ga, gg, x, fired, si.conc_um,
        ),
    };
    let sums = if si.sample {
        super::reduce_stats::range_sums_inline(p, v, g_ampa, g_gaba, [&*pool0, &*pool1])
    } else {
        SampleSums::default()
    };
    BlockOut {
        sums,
        unstable,
        worst_bits,
    }
}

/// [`update_block_impl`] for a current-based population: the operations of
/// [`current_update`] in vectorisable phases: (1) the decayed currents plus this
/// step's ring-buffer arrivals into scratch, (2) the Poisson drive into scratch, drive
/// by drive, (3) the membrane from the currents at the step's start (still in the
/// state arrays), then the scratch currents stored.
#[inline(always)]
fn update_block_current(si: &StepInput, w: Block) -> BlockOut {
    let prm = si.prm;
    let sim = &prm.sim;
    let p = prm.pops[w.pop as usize];
    let n = w.len();
    let step = si.step;
    let Block {
        lo,
        ring: [ra, rg, _],
        v,
        rf,
        g_ampa,
        g_gaba,
        pools: [pool0, pool1],
        ga,
        gg,
        u,
        cnt,
        fired,
        ..
    } = w;
    {
        let (ra, rg) = (&mut ra[..n], &mut rg[..n]);
        let (sa, sg) = (sim.inv_scale[0], sim.inv_scale[1]);
        let (ie0, ii0) = (&g_ampa[..n], &g_gaba[..n]);
        let (ga, gg) = (&mut ga[..n], &mut gg[..n]);
        for j in 0..n {
            ga[j] = ie0[j] * p.decay_ampa + ra[j] as f32 * sa;
            gg[j] = ii0[j] * p.decay_gaba + rg[j] as f32 * sg;
            ra[j] = 0;
            rg[j] = 0;
        }
    }
    let u_max = uniform01(u32::MAX);
    for d in 0..p.n_drives {
        let dp = &prm.drives[(p.drive_start + d) as usize];
        let first = lo - dp.neuron_base;
        let (u, cnt) = (&mut u[..n], &mut cnt[..n]);
        for (j, uj) in u.iter_mut().enumerate() {
            // A neuron's index in its network fits a u32, so the add cannot wrap;
            // wrapping, it has no overflow check to keep the loop from vectorising
            // in builds with overflow checks.
            *uj = uniform01(threefry_x0(
                first.wrapping_add(j as u32),
                step,
                dp.key_lo,
                dp.key_hi,
            ));
        }
        let cdf = poisson_cdf(dp.mean, dp.exp_neg_mean, si.recips);
        for (c, &uj) in cnt.iter_mut().zip(u.iter()) {
            *c = poisson_count_head(uj, &cdf);
        }
        if cdf[CDF_HEAD - 1] <= u_max {
            for (c, &uj) in cnt.iter_mut().zip(u.iter()) {
                if *c as usize == CDF_HEAD {
                    *c = poisson_count_from(uj, &cdf, CDF_HEAD);
                }
            }
        }
        let target = if dp.receptor == 0 {
            &mut ga[..n]
        } else {
            &mut gg[..n]
        };
        let wt = dp.weight;
        for (g, &c) in target.iter_mut().zip(cnt.iter()) {
            *g = if c > 0 { *g + c as f32 * wt } else { *g };
        }
    }
    let (mut unstable, mut worst_bits) = (0u32, 0u32);
    {
        let (rf, ie, ii) = (&mut rf[..n], &mut g_ampa[..n], &mut g_gaba[..n]);
        let (ga, gg, fired) = (&ga[..n], &gg[..n], &mut fired[..n]);
        for j in 0..n {
            let (v0, r0) = (v[j], rf[j]);
            let v1 = p.e_l
                + (v0 - p.e_l) * p.cur_p22
                + ie[j] * p.cur_p21ex
                + ii[j] * p.cur_p21in
                + p.i_ext * p.cur_p20;
            let active = r0 == 0;
            let (bad, bits) = unstable_lane(active, 0.0, v1);
            // Wrapping: a block holds far fewer than 2^32 neurons, and an overflow check
            // (test builds) would keep the loop from vectorising.
            unstable = unstable.wrapping_add(bad);
            worst_bits = worst_bits.max(bits);
            let fire = active & (v1 >= p.v_th);
            // As in `membrane`: a refractory neuron's V is V_reset.
            v[j] = if fire | !active { p.v_reset } else { v1 };
            rf[j] = if fire {
                p.ref_steps
            } else {
                r0.saturating_sub(1)
            };
            fired[j] = fire as u32;
            ie[j] = ga[j];
            ii[j] = gg[j];
        }
    }
    let sums = if si.sample {
        super::reduce_stats::range_sums_inline(&p, v, g_ampa, g_gaba, [&*pool0, &*pool1])
    } else {
        SampleSums::default()
    };
    BlockOut {
        sums,
        unstable,
        worst_bits,
    }
}

/// The same update as [`neuron_update`] for a whole population, split into phases
/// whose inner loops the compiler vectorises: (1) ring-buffer inputs, (2) Poisson drive
/// (uniforms vectorised, counts scalar, in drive order), (3) membrane and synapses,
/// branch-free (refractory neurons compute a V that is then discarded), (4) spike
/// bookkeeping in neuron order. Phases 1-3 run per block of neurons ([`blocks`],
/// [`update_block`]; independent, so blocks may run on different threads), phase 4
/// ([`finish_spikes`]) once for the population. Each neuron sees exactly the
/// operations of [`neuron_update`] in the same order, so results are bit-identical to
/// it and to the shader (`tests/cpu_paths.rs`).
pub fn update_population(
    pop: u32,
    prm: &ParamsBlock,
    recips: &[f32],
    b: &mut Buffers,
    ctrl: &mut Ctrl,
    sc: &mut Scratch,
    conc_um: f32,
) {
    let si = StepInput {
        prm,
        recips,
        step: ctrl.step,
        conc_um,
        ampa_block: 0.0,
        sample: false,
    };
    let mut unstable = (0u32, 0u32);
    for_each_block(prm, b, sc, ctrl.step, SEQ_BLOCK, |blk| {
        if blk.pop == pop {
            update_block(&si, blk).add_unstable_to(&mut unstable);
        }
    });
    let tail = (prm.sim.count_capacity * prm.sim.n_pop) as usize;
    note_unstable(
        &mut b.pop_counts[tail..],
        pop,
        ctrl.step,
        unstable.0,
        unstable.1,
    );
    finish_spikes(pop, prm, b, ctrl, sc);
}

/// Phase 4 of [`update_population`]: spikes in neuron order.
pub fn finish_spikes(pop: u32, prm: &ParamsBlock, b: &mut Buffers, ctrl: &mut Ctrl, sc: &Scratch) {
    let p = &prm.pops[pop as usize];
    let (off, n) = (p.offset as usize, p.size as usize);
    // Blocks without a spike are skipped whole.
    const BLOCK: usize = 64;
    for (bi, block) in sc.fired[off..off + n].chunks(BLOCK).enumerate() {
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

/// Phase 3 of [`update_population`] for a population without NMDA receptor pools,
/// branch-free so that it vectorises.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn membrane(
    p: &PopParams,
    v: &mut [f32],
    rf: &mut [u32],
    ga_out: &mut [f32],
    gg_out: &mut [f32],
    ga_in: &[f32],
    gg_in: &[f32],
    fired: &mut [u32],
) -> (u32, u32) {
    // Separate slice arguments are `noalias` to the compiler, so the loop vectorises
    // without run-time overlap checks.
    let p = *p;
    let n = v.len();
    let (rf, ga_out, gg_out) = (&mut rf[..n], &mut ga_out[..n], &mut gg_out[..n]);
    let (ga_in, gg_in, fired) = (&ga_in[..n], &gg_in[..n], &mut fired[..n]);
    let (mut unstable, mut worst_bits) = (0u32, 0u32);
    for j in 0..n {
        let (ga, gg, v0, r0) = (ga_in[j], gg_in[j], v[j], rf[j]);
        let i_syn = ga * (p.e_ampa - v0) + gg * (p.e_gaba - v0);
        let v1 = v0 + p.dt_over_c * (p.g_l * (p.e_l - v0) + i_syn + p.i_ext);
        let active = r0 == 0;
        let (bad, bits) = unstable_lane(active, p.dt_over_c * (p.g_l + ga + gg), v1);
        // Wrapping: a block holds far fewer than 2^32 neurons, and an overflow check
        // (test builds) would keep the loop from vectorising.
        unstable = unstable.wrapping_add(bad);
        worst_bits = worst_bits.max(bits);
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
    }
    (unstable, worst_bits)
}

/// [`pool_step`] with its two voltage-dependent factors computed by the caller:
/// `e_kd = exp_v(kd_slope_per_mv * (v - KD_REF_MV))` and `mg_free = mg_block(v)`
/// (shared by the pools of a neuron where they are the same numbers), and with
/// `one_minus_exp_neg` reusing the exponential the step computes anyway. Otherwise
/// the same operations in the same order, so the same bits (checked against
/// `pool_step` in this module's tests and by `tests/cpu_paths.rs`).
#[inline(always)]
fn pool_step_twin(
    s: [f32; 4],
    r: &PoolRates,
    x: f32,
    e_kd: f32,
    mg_free: f32,
    conc_um: f32,
) -> [f32; 4] {
    let [o, b, t, _] = s;
    let a = r.alpha_dt * x;
    let ab = a + r.beta_dt;
    let e_gate = exp_v(-ab);
    let g_gate = a * (1.0 / ab) * one_minus_exp_neg_with(ab, e_gate);
    let c = 1.0 - o - b - t;
    let unblocked = c + o;
    let blocked = t + b;
    let o1 = o * e_gate + unblocked * g_gate;
    let b1 = b * e_gate + blocked * g_gate;
    let t1 = blocked - b1;
    let kb = r.kon_dt * conc_um * mg_free;
    let ku = r.kon_dt * r.kd_ref_um * e_kd;
    let kk = kb + ku;
    let e_block = exp_v(-kk);
    let g_block = kb * (1.0 / kk) * one_minus_exp_neg_with(kk, e_block);
    let open_all = o1 + b1;
    let b2 = b1 * e_block + open_all * g_block;
    [open_all - b2, b2, t1, 0.0]
}

/// Phase 3 of [`update_population`] for a population with `NP` NMDA receptor pools:
/// the membrane as in [`membrane`] plus the NMDA current, then each pool's kinetics,
/// branch-free and fully inlined so that the loop (exponentials included) vectorises.
/// Per neuron, `exp_v(-MG_SLOPE_PER_MV v)` is computed once for the Mg2+ block of
/// every pool (current and kinetics: `mg_block`'s operations), and the unblocking
/// exponential once where the pools share its slope.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn membrane_pools<const NP: usize>(
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
) -> (u32, u32) {
    let same_slope = (0..NP)
        .all(|k| p.pools[k].kd_slope_per_mv.to_bits() == p.pools[0].kd_slope_per_mv.to_bits());
    if same_slope {
        membrane_pools_impl::<NP, true>(
            p, v, rf, pools, ga_out, gg_out, x_out, ga_in, gg_in, x_in, fired, conc_um,
        )
    } else {
        membrane_pools_impl::<NP, false>(
            p, v, rf, pools, ga_out, gg_out, x_out, ga_in, gg_in, x_in, fired, conc_um,
        )
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn membrane_pools_impl<const NP: usize, const SHARED_KD: bool>(
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
) -> (u32, u32) {
    let p = *p;
    let n = v.len();
    let rates: [PoolRates; NP] = std::array::from_fn(|k| p.pools[k].rates());
    let frac: [f32; NP] = std::array::from_fn(|k| p.pools[k].fraction);
    let mg_k0: [f32; NP] = std::array::from_fn(|k| p.pools[k].mg_over_k0);
    // Two named slices, not an array of them indexed by pool: the vectoriser needs
    // to see each store's base pointer.
    let [pool0, pool1] = pools;
    let (pool0, pool1) = (&mut pool0[..n], &mut pool1[..n]);
    let (rf, ga_out, gg_out, x_out) = (
        &mut rf[..n],
        &mut ga_out[..n],
        &mut gg_out[..n],
        &mut x_out[..n],
    );
    let (ga_in, gg_in, x_in, fired) = (&ga_in[..n], &gg_in[..n], &x_in[..n], &mut fired[..n]);
    let (mut unstable, mut worst_bits) = (0u32, 0u32);
    for j in 0..n {
        let (ga, gg, x, v0, r0) = (ga_in[j], gg_in[j], x_in[j], v[j], rf[j]);
        let s = [pool0[j], if NP > 1 { pool1[j] } else { [0.0; 4] }];
        // mg_block(v0, m) = 1 / (1 + m exp_f32(-MG_SLOPE_PER_MV v0)), per pool.
        let e_mg = exp_v(-MG_SLOPE_PER_MV * v0);
        let mg: [f32; NP] = std::array::from_fn(|k| 1.0 / (1.0 + mg_k0[k] * e_mg));
        let mut i_syn = ga * (p.e_ampa - v0) + gg * (p.e_gaba - v0);
        let mut g_open = 0.0;
        for k in 0..NP {
            g_open += frac[k] * s[k][0] * mg[k];
        }
        let g_nmda = p.g_nmda_max * g_open;
        i_syn += g_nmda * (p.e_nmda - v0);
        let v1 = v0 + p.dt_over_c * (p.g_l * (p.e_l - v0) + i_syn + p.i_ext);
        let active = r0 == 0;
        let g_total = p.g_l + ga + gg + g_nmda;
        let (bad, bits) = unstable_lane(active, p.dt_over_c * g_total, v1);
        // Wrapping: a block holds far fewer than 2^32 neurons, and an overflow check
        // (test builds) would keep the loop from vectorising.
        unstable = unstable.wrapping_add(bad);
        worst_bits = worst_bits.max(bits);
        let fire = active & (v1 >= p.v_th);
        // See `membrane`: a refractory neuron's V is V_reset.
        v[j] = if fire | !active { p.v_reset } else { v1 };
        rf[j] = if fire {
            p.ref_steps
        } else {
            r0.saturating_sub(1)
        };
        fired[j] = fire as u32;
        ga_out[j] = ga * p.decay_ampa;
        gg_out[j] = gg * p.decay_gaba;
        let e_kd0 = exp_v(rates[0].kd_slope_per_mv * (v0 - KD_REF_MV));
        pool0[j] = pool_step_twin(s[0], &rates[0], x, e_kd0, mg[0], conc_um);
        if NP > 1 {
            let e_kd1 = if SHARED_KD {
                e_kd0
            } else {
                exp_v(rates[NP - 1].kd_slope_per_mv * (v0 - KD_REF_MV))
            };
            pool1[j] = pool_step_twin(s[1], &rates[NP - 1], x, e_kd1, mg[NP - 1], conc_um);
        }
        x_out[j] = x * p.decay_nmda_rise;
    }
    (unstable, worst_bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Subunit;

    /// The pool twin gives the bits of `pool_step`, and the shared Mg2+ exponential
    /// those of `mg_block`.
    #[test]
    fn pool_twin_matches_pool_step() {
        let subunits = [Subunit::N2A, Subunit::N2B, Subunit::N2C, Subunit::N2D];
        let mut h = 12345u32;
        let mut rnd = || {
            h = threefry2x32(UVec2::new(h, 7), UVec2::new(1, 2)).x;
            uniform01(h)
        };
        for i in 0..200_000 {
            let sub = subunits[i % 4];
            let r = PoolRates::new(sub, 0.1, 0.5, 20.0 + 300.0 * rnd() as f64);
            let o = rnd() * 0.5;
            let b = rnd() * 0.3;
            let t = rnd() * 0.2;
            let x = if i % 3 == 0 { 0.0 } else { rnd() * 5.0 };
            let v = -90.0 + 90.0 * rnd();
            let m = 1.0 / 3.57 * rnd() * 2.0;
            let conc = if i % 5 == 0 { 0.0 } else { rnd() * 50.0 };
            let mg = mg_block(v, m);
            let e_mg = exp_v(-MG_SLOPE_PER_MV * v);
            assert_eq!(mg.to_bits(), (1.0 / (1.0 + m * e_mg)).to_bits());
            let want = pool_step(PoolState { o, b, t }, &r, x, v, mg, conc);
            let e_kd = exp_v(r.kd_slope_per_mv * (v - KD_REF_MV));
            let got = pool_step_twin([o, b, t, 0.0], &r, x, e_kd, mg, conc);
            assert_eq!(
                [want.o.to_bits(), want.b.to_bits(), want.t.to_bits()],
                [got[0].to_bits(), got[1].to_bits(), got[2].to_bits()],
                "{o} {b} {t} {x} {v} {conc}"
            );
        }
    }
}
