//! CPU twin of `shaders/propagate.wgsl`: each spike of the step is delivered through
//! its network's projections (`ParamsBlock::proj_range`), by each of `PROC_SPLIT`
//! slices, to the ring-buffer slot of its arrival step (per synapse where a projection
//! draws its weights or delays); projections in the CPU's connectivity cache deliver
//! the same synapses from their packed tables. Wrapping i32
//! adds are the integer atomics of the shader: the sums do not depend on order.

use super::{Buffers, SynapseCache};
use crate::model::connectivity::{for_each_synapse, has_random_synapses, synapse_draw};
use crate::model::layout::{Ctrl, ParamsBlock, RULE_TABLE};
use crate::model::limits::PROC_SPLIT;
use rayon::prelude::*;
use std::sync::atomic::{AtomicI32, Ordering};

/// Deliver spike number `s` of the step being propagated: every slice `tid` of the
/// shader's workgroup in turn (table rows, whose slices only interleave the same
/// entries, are walked in one pass).
pub fn propagate(s: u32, prm: &ParamsBlock, b: &mut Buffers, ctrl: &Ctrl) {
    let sim = &prm.sim;
    let pre = b.spikes[s as usize];
    for pj in prm.proj_range(prm.find_pop(pre)) {
        let pr = &prm.projs[pj];
        if pre < pr.pre_offset || pre >= pr.pre_offset + pr.pre_size {
            continue;
        }
        let pre_local = pre - pr.pre_offset;
        let ring = &mut b.ring[pr.receptor as usize];
        if let Some(packed) = b.cache.get(pj) {
            // Cached: the same synapses, generated once (`cache.rs`).
            let (r, n) = (sim.ring_slots, sim.n_total);
            packed.for_each_arrival(pre_local, ctrl.prop_step, r, n, pr.post_offset, |i, w| {
                ring[i] = ring[i].wrapping_add(w);
            });
            continue;
        }
        let slot = (ctrl.prop_step + pr.delay_steps) % sim.ring_slots;
        let base = (slot * sim.n_total + pr.post_offset) as usize;
        let w = pr.weight_fixed;
        let n_total = sim.n_total as usize;
        let post = pr.post_offset as usize;
        let slot_of = |d: u32| ((ctrl.prop_step + d) % sim.ring_slots) as usize * n_total + post;
        if pr.rule == RULE_TABLE {
            let row = (pr.table_base + pre_local) as usize;
            let (start, end) = (b.table_rows[row] as usize, b.table_rows[row + 1] as usize);
            if has_random_synapses(pr) {
                // Per-synapse weights and delays, drawn once when the table was made.
                for idx in start..end {
                    let t = &mut ring[slot_of(b.table_d[idx]) + b.table_cols[idx] as usize];
                    *t = t.wrapping_add(b.table_w[idx]);
                }
            } else {
                let ring = &mut ring[base..];
                for &c in &b.table_cols[start..end] {
                    let t = &mut ring[c as usize];
                    *t = t.wrapping_add(w);
                }
            }
        } else if has_random_synapses(pr) {
            for tid in 0..PROC_SPLIT {
                for_each_synapse(pr, &b.table_rows, pre_local, tid, |j, id| {
                    let (w, d) = synapse_draw(pr, pre_local, id, sim.ring_slots);
                    let t = slot_of(d) + j as usize;
                    ring[t] = ring[t].wrapping_add(w);
                });
            }
        } else {
            for tid in 0..PROC_SPLIT {
                for_each_synapse(pr, &b.table_rows, pre_local, tid, |j, _| {
                    let t = base + j as usize;
                    ring[t] = ring[t].wrapping_add(w);
                });
            }
        }
    }
}

/// [`propagate`] for all `ctrl.prop_n` spikes of the step, spread over the threads
/// of the current rayon pool: the ring buffers are added to with relaxed atomic
/// wrapping adds (the shader's integer atomics), so the sums, and hence the results,
/// are those of the sequential loop in any order and on any number of threads.
pub fn propagate_parallel(prm: &ParamsBlock, b: &mut Buffers, ctrl: &Ctrl) {
    let Buffers {
        ring,
        spikes,
        table_rows,
        table_cols,
        table_w,
        table_d,
        cache,
        ..
    } = b;
    let rings = ring.each_mut().map(|r| as_atomic(r.as_mut_slice()));
    let spikes = &spikes[..];
    let t = Tables {
        rows: table_rows,
        cols: table_cols,
        w: table_w,
        d: table_d,
        cache,
    };
    (0..ctrl.prop_n)
        .into_par_iter()
        .with_min_len(4)
        .for_each(|s| propagate_atomic(s, prm, spikes, &t, &rings, ctrl));
}

const _: () = assert!(
    std::mem::size_of::<AtomicI32>() == std::mem::size_of::<i32>()
        && std::mem::align_of::<AtomicI32>() == std::mem::align_of::<i32>()
);

/// The slice as atomics (what the unstable `AtomicI32::from_mut_slice` does).
fn as_atomic(s: &mut [i32]) -> &[AtomicI32] {
    // SAFETY: AtomicI32 has the size and alignment of i32 (asserted above), and the
    // exclusive borrow guarantees that no non-atomic access overlaps while the
    // returned slice lives.
    unsafe { &*(s as *mut [i32] as *const [AtomicI32]) }
}

/// The CPU backend's synapse tables: CSR rows and columns, per-synapse weights
/// and delays (empty unless a projection draws them), and the cached procedural
/// projections.
struct Tables<'a> {
    rows: &'a [u32],
    cols: &'a [u32],
    w: &'a [i32],
    d: &'a [u32],
    cache: &'a SynapseCache,
}

/// [`propagate`] of spike `s` into atomic ring buffers.
fn propagate_atomic(
    s: u32,
    prm: &ParamsBlock,
    spikes: &[u32],
    tb: &Tables,
    rings: &[&[AtomicI32]; 3],
    ctrl: &Ctrl,
) {
    let (rows, cols) = (tb.rows, tb.cols);
    let sim = &prm.sim;
    let pre = spikes[s as usize];
    for pj in prm.proj_range(prm.find_pop(pre)) {
        let pr = &prm.projs[pj];
        if pre < pr.pre_offset || pre >= pr.pre_offset + pr.pre_size {
            continue;
        }
        let pre_local = pre - pr.pre_offset;
        let full = rings[pr.receptor as usize];
        if let Some(packed) = tb.cache.get(pj) {
            let (r, n) = (sim.ring_slots, sim.n_total);
            packed.for_each_arrival(pre_local, ctrl.prop_step, r, n, pr.post_offset, |i, w| {
                full[i].fetch_add(w, Ordering::Relaxed);
            });
            continue;
        }
        let slot = (ctrl.prop_step + pr.delay_steps) % sim.ring_slots;
        let base = (slot * sim.n_total + pr.post_offset) as usize;
        let ring = &full[base..];
        let w = pr.weight_fixed;
        let n_total = sim.n_total as usize;
        let post = pr.post_offset as usize;
        let slot_of = |d: u32| ((ctrl.prop_step + d) % sim.ring_slots) as usize * n_total + post;
        if pr.rule == RULE_TABLE {
            let row = (pr.table_base + pre_local) as usize;
            let (start, end) = (rows[row] as usize, rows[row + 1] as usize);
            if has_random_synapses(pr) {
                for idx in start..end {
                    full[slot_of(tb.d[idx]) + cols[idx] as usize]
                        .fetch_add(tb.w[idx], Ordering::Relaxed);
                }
            } else {
                for &c in &cols[start..end] {
                    ring[c as usize].fetch_add(w, Ordering::Relaxed);
                }
            }
        } else if has_random_synapses(pr) {
            for tid in 0..PROC_SPLIT {
                for_each_synapse(pr, rows, pre_local, tid, |j, id| {
                    let (w, d) = synapse_draw(pr, pre_local, id, sim.ring_slots);
                    full[slot_of(d) + j as usize].fetch_add(w, Ordering::Relaxed);
                });
            }
        } else {
            for tid in 0..PROC_SPLIT {
                for_each_synapse(pr, rows, pre_local, tid, |j, _| {
                    ring[j as usize].fetch_add(w, Ordering::Relaxed);
                });
            }
        }
    }
}
