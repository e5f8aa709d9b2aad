//! CPU twin of `shaders/neuron_update.wgsl`: one call per neuron, the same operations
//! in the same order, so that spikes and state match the shader bit for bit.

use glam::UVec2;

use super::Buffers;
use crate::model::layout::{Ctrl, ParamsBlock};
use crate::model::limits::NO_SPIKE;
use crate::model::mg_block;
use crate::rng::{key, poisson_inversion, threefry2x32, uniform01, STREAM_POISSON};

/// Integrate neuron `i` of population `pop` over one step.
///
/// `C dV/dt = g_L (E_L - V) + g_AMPA (E_AMPA - V) + g_GABA (E_GABA - V)
///  + g_NMDA s B_Mg(V) (E_NMDA - V) + I_ext` (SCIENCE.md section 1), forward Euler;
/// inputs that arrive this step (ring-buffer slot `step % slots`, plus Poisson drive)
/// are added to the conductances before V is advanced; conductances then decay by
/// their per-step factors and the NMDA open fraction follows
/// `ds = (alpha x (1 - s) - s / tau_decay) dt` (Brunel & Wang 2001).
pub fn neuron_update(
    i: u32,
    pop: u32,
    prm: &ParamsBlock,
    recips: &[f32],
    b: &mut Buffers,
    ctrl: &mut Ctrl,
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
    let mut v = b.v[iu];
    let s = b.s_nmda[iu];
    let mut rf = b.refrac[iu];
    let mut spiked = false;
    if rf > 0 {
        rf -= 1;
    } else {
        let mut i_syn = ga * (p.e_ampa - v) + gg * (p.e_gaba - v);
        if p.g_nmda_max > 0.0 {
            let blk = mg_block(v, p.mg_over_k0);
            i_syn += p.g_nmda_max * s * blk * (p.e_nmda - v);
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
    // s + alpha x (1 - s) dt - s dt / tau as s (1 - dt/tau - alpha x dt) + alpha x dt
    // (see the shader for why this form).
    let open = p.nmda_alpha_dt * x;
    b.s_nmda[iu] = s * ((1.0 - p.nmda_dt_over_tau) - open) + open;
    b.x_nmda[iu] = x * p.decay_nmda_rise;
    b.v[iu] = v;
    b.refrac[iu] = rf;
    if spiked {
        let st = &mut b.isi[iu];
        if st.last_step != NO_SPIKE {
            let isi = step - st.last_step;
            st.count += 1;
            st.sum_steps += isi;
            st.sum_sq += isi as f32 * isi as f32;
        }
        st.last_step = step;
        let n = ctrl.n_spikes;
        ctrl.n_spikes += 1;
        b.spikes[n as usize] = i;
        b.pop_counts[((step % sim.count_capacity) * sim.n_pop + pop) as usize] += 1;
        if p.record_spikes != 0 {
            let r = ctrl.n_rec;
            ctrl.n_rec += 1;
            if r < sim.rec_capacity {
                b.rec[2 * r as usize] = step;
                b.rec[2 * r as usize + 1] = i;
            }
        }
    }
}
