//! CPU twin of `shaders/propagate.wgsl`: each spike of the step is delivered, by each
//! of `PROC_SPLIT` slices, to the ring-buffer slot of its arrival step. Wrapping i32
//! adds are the integer atomics of the shader: the sums do not depend on order.

use super::Buffers;
use crate::model::connectivity::for_each_target;
use crate::model::layout::{Ctrl, ParamsBlock, RULE_TABLE};
use crate::model::limits::PROC_SPLIT;

/// Deliver spike number `s` of the step being propagated: every slice `tid` of the
/// shader's workgroup in turn (table rows, whose slices only interleave the same
/// entries, are walked in one pass).
pub fn propagate(s: u32, prm: &ParamsBlock, b: &mut Buffers, ctrl: &Ctrl) {
    let sim = &prm.sim;
    let seed = sim.seed_lo as u64 | ((sim.seed_hi as u64) << 32);
    let pre = b.spikes[s as usize];
    for pj in 0..sim.n_proj {
        let pr = &prm.projs[pj as usize];
        if pre < pr.pre_offset || pre >= pr.pre_offset + pr.pre_size {
            continue;
        }
        let pre_local = pre - pr.pre_offset;
        let slot = (ctrl.prop_step + pr.delay_steps) % sim.ring_slots;
        let base = (slot * sim.n_total + pr.post_offset) as usize;
        let ring = &mut b.ring[pr.receptor as usize];
        let w = pr.weight_fixed;
        if pr.rule == RULE_TABLE {
            let row = (pr.table_base + pre_local) as usize;
            let (start, end) = (b.table_rows[row] as usize, b.table_rows[row + 1] as usize);
            let ring = &mut ring[base..];
            for &c in &b.table_cols[start..end] {
                let t = &mut ring[c as usize];
                *t = t.wrapping_add(w);
            }
        } else {
            for tid in 0..PROC_SPLIT {
                for_each_target(pr, seed, pre_local, tid, |j| {
                    let t = base + j as usize;
                    ring[t] = ring[t].wrapping_add(w);
                });
            }
        }
    }
}
