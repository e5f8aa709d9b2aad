// Spike propagation: sim.spike_groups workgroups of PROC_SPLIT invocations per spike
// of the chunk (each spike carries its own step), dispatched indirectly with the size
// the neuron update wrote (ChunkCtrl); at least one workgroup runs, and the first
// also advances the extracellular glutamate pools through the chunk
// (advance_glutamate). The spike's invocations (lanes) share the synapses of the
// tables and of the out-degree and total-number rules, numbered consecutively across
// the spike's projections (flat index = the projection's offset + m), lane l taking
// flat indices l, l + lanes, ... (at most about one, as spike_groups is sized); the
// probability rule's PROC_SPLIT slices, each with its own random stream, stay with
// the first workgroup's invocations. Each synapse adds its fixed-point
// weight to the ring-buffer slot of the arrival step with an integer atomic
// (order-independent sums), so no result depends on the split. Projections with normally distributed weights or
// delays draw them per synapse from the seed (synapse_draw). Procedural rules regenerate the targets from the
// seed. Twins: src/cpu/propagate.rs, src/model/connectivity.rs.

// (neuron, step) of each spike of the chunk.
@group(0) @binding(2) var<storage, read> spikes: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> ctrl: GpuCtrl;
@group(0) @binding(4) var<storage, read_write> ring_ampa: array<atomic<i32>>;
@group(0) @binding(5) var<storage, read_write> ring_gaba: array<atomic<i32>>;
@group(0) @binding(6) var<storage, read_write> ring_nmda: array<atomic<i32>>;
@group(0) @binding(7) var<storage, read> table_rows: array<u32>;
@group(0) @binding(8) var<storage, read> table_cols: array<u32>;
@group(0) @binding(9) var<storage, read> projs: array<ProjParams>;
@group(0) @binding(10) var<storage, read> glu_release: array<u32>;
@group(0) @binding(11) var<storage, read_write> glu_state: array<f32>;
@group(0) @binding(12) var<storage, read_write> glu_trace: array<f32>;

// Each releasing population's extracellular glutamate takes, step by step through
// the chunk the neuron update just advanced, that step's release and
// Michaelis-Menten uptake, G <- G + release - Vmax dt G / (K_m + G) (SCIENCE.md);
// the workgroup's invocations share the populations. Twin: glutamate_step
// (src/cpu/mod.rs).
fn advance_glutamate(tid: u32) {
    let start = ctrl.chunks[sim.parity].step;
    let len = chunk_len(start, ctrl.batch_end);
    for (var pop = tid; pop < sim.n_pop; pop += PROC_SPLIT) {
        let p = pops[pop];
        if (p.glu_on == 0u) {
            continue;
        }
        var g = glu_state[pop];
        for (var k = 0u; k < len; k++) {
            let idx = ((start + k) % sim.count_capacity) * sim.n_pop + pop;
            let rel = f32(glu_release[2u * idx + 1u]) * 4294967296.0 + f32(glu_release[2u * idx]);
            g = g + rel * (1.0 / GLU_SCALE) * p.glu_um_per_vesicle;
            g = g - p.glu_vmax_dt * g * div_rn(1.0, p.glu_km_um + g);
            glu_trace[idx] = g;
        }
        glu_state[pop] = g;
    }
}

fn deliver(receptor: u32, idx: u32, w: i32) {
    if (receptor == 0u) {
        atomicAdd(&ring_ampa[idx], w);
    } else if (receptor == 1u) {
        atomicAdd(&ring_gaba[idx], w);
    } else {
        atomicAdd(&ring_nmda[idx], w);
    }
}

// The ring slot `delay` steps after the spike's own slot `spike_slot` (its step
// modulo sim.ring_slots): both are below sim.ring_slots (delays are at most the
// ring's length less one), so one conditional subtraction does the modulo, which a
// GPU, without an integer divider, would otherwise spend some 20 instructions on per
// synapse.
fn slot_after(spike_slot: u32, delay: u32) -> u32 {
    let slot = spike_slot + delay;
    return select(slot, slot - sim.ring_slots, slot >= sim.ring_slots);
}

// A synapse with its own normal weight and delay (synapse_draw in common.wgsl).
fn deliver_drawn(pr: ProjParams, pre_local: u32, id: u32, t: u32, spike_slot: u32) {
    let sd = synapse_draw(pr, pre_local, id);
    let slot = slot_after(spike_slot, sd.y);
    deliver(pr.receptor, slot * sim.n_total + pr.post_offset + t, bitcast<i32>(sd.x));
}

// Balanced split of 0..size into PROC_SPLIT slices (twin of slice_bounds).
fn slice_bounds(size: u32, tid: u32) -> vec2<u32> {
    let base = size / PROC_SPLIT;
    let rem = size % PROC_SPLIT;
    let lo = base * tid + min(tid, rem);
    return vec2<u32>(lo, lo + base + select(0u, 1u, tid < rem));
}

@compute @workgroup_size(PROC_SPLIT)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let w = wid.y * MAX_WG_DIM + wid.x;
    if (HAS_GLU && w == 0u) {
        advance_glutamate(tid);
    }
    let s = w / sim.spike_groups;
    let part = w % sim.spike_groups;
    if (s >= ctrl.chunks[sim.parity].n_spikes) {
        return;
    }
    let lane = part * PROC_SPLIT + tid;
    let lanes = sim.spike_groups * PROC_SPLIT;
    // Where this lane starts in the next projection (tables and the out-degree and
    // total-number rules): the lane takes flat indices lane, lane + lanes, ..., so
    // in a projection whose synapses begin at flat index o it starts at the first
    // m >= 0 with o + m = lane modulo lanes. Kept without a modulo: the index after
    // the lane's last synapse of a projection of d synapses, less d, is where it
    // starts in the next.
    var first = lane;
    let pre = spikes[s].x;
    let spike_slot = spikes[s].y % sim.ring_slots;
    // Only the spike's own network's projections can carry it (a batch holds many
    // networks side by side).
    let pp = pops[find_pop(pre)];
    for (var pj = pp.proj_first; pj < pp.proj_first + pp.proj_count; pj++) {
        let pr = projs[pj];
        if (pre < pr.pre_offset || pre >= pr.pre_offset + pr.pre_size) {
            continue;
        }
        let pre_local = pre - pr.pre_offset;
        let slot = slot_after(spike_slot, pr.delay_steps);
        let base = slot * sim.n_total + pr.post_offset;
        let exclude_self = pr.same_pop != 0u && pr.autapses == 0u;
        let drawn = HAS_DRAWN && has_random_synapses(pr);
        // A rule no projection of the network has is left out (Features in
        // src/gpu/shaders.rs); the last branch takes the two remaining rules.
        if (HAS_RULE_TABLE && pr.rule == RULE_TABLE) {
            let row = pr.table_base + pre_local;
            let start = table_rows[row];
            let end = table_rows[row + 1u];
            var idx = start + first;
            for (; idx < end; idx += lanes) {
                if (drawn) {
                    deliver_drawn(pr, pre_local, idx - start, table_cols[idx], spike_slot);
                } else {
                    deliver(pr.receptor, base + table_cols[idx], pr.weight_fixed);
                }
            }
            first = idx - end;
        } else if (HAS_RULE_PROBABILITY && pr.rule == RULE_PROBABILITY) {
            if (part != 0u) {
                continue;
            }
            // Geometric skipping over this slice: gaps between targets are
            // floor(ln(u) / ln(1 - p)), u uniform in (0, 1].
            let b = slice_bounds(pr.post_size, tid);
            let hi = b.y;
            let k = proj_key(pr, pr.stream + tid);
            let span = f32(hi - b.x);
            var j = b.x;
            var c = 0u;
            loop {
                if (j >= hi) {
                    break;
                }
                let r = threefry2x32(vec2<u32>(pre_local, c), k);
                c += 1u;
                j += u32(min(floor(ln_f32(uniform_open0(r.x)) * pr.inv_ln_1mp), span));
                if (j >= hi) {
                    break;
                }
                if (!(exclude_self && j == pre_local)) {
                    if (drawn) {
                        deliver_drawn(pr, pre_local, j, j, spike_slot);
                    } else {
                        deliver(pr.receptor, base + j, pr.weight_fixed);
                    }
                }
                j += 1u;
                if (j >= hi) {
                    break;
                }
                j += u32(min(floor(ln_f32(uniform_open0(r.y)) * pr.inv_ln_1mp), span));
                if (j >= hi) {
                    break;
                }
                if (!(exclude_self && j == pre_local)) {
                    if (drawn) {
                        deliver_drawn(pr, pre_local, j, j, spike_slot);
                    } else {
                        deliver(pr.receptor, base + j, pr.weight_fixed);
                    }
                }
                j += 1u;
            }
        } else if (HAS_RULE_OUTDEGREE || HAS_RULE_TOTAL) {
            // Fixed out-degree, or fixed total number with this neuron's drawn share
            // (the span of its row pointers): target m < degree is
            // mul_hi(word, range), with replacement. Twin: connectivity::out_degree.
            var degree = pr.k;
            if (HAS_RULE_TOTAL && pr.rule == RULE_TOTAL) {
                let row = pr.table_base + pre_local;
                degree = table_rows[row + 1u] - table_rows[row];
            }
            let k = proj_key(pr, pr.stream);
            var range = pr.post_size;
            if (exclude_self) {
                range -= 1u;
            }
            var m = first;
            for (; m < degree; m += lanes) {
                let r = threefry2x32(vec2<u32>(pre_local, m), k);
                var t = mul_hi_u32(r.x, range);
                if (exclude_self && t >= pre_local) {
                    t += 1u;
                }
                if (drawn) {
                    deliver_drawn(pr, pre_local, m, t, spike_slot);
                } else {
                    deliver(pr.receptor, base + t, pr.weight_fixed);
                }
            }
            first = m - degree;
        }
    }
}
