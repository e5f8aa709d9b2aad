// Population means on sample steps: each neuron's V, g_AMPA, g_GABA, NMDA open and
// blocked fractions, and NMDA, AMPA and GABA_A currents (a current-based population's
// excitatory and inhibitory synaptic currents, which its g_ampa and g_gaba hold; it
// has no conductances, whose entries it leaves 0) are quantised once
// (STAT_SCALES), summed per population in workgroup memory with integer atomics, and
// added to 64-bit sums (lo/hi word pairs with carry) in global memory. A workgroup's
// REDUCE_WG_SIZE neurons span at most REDUCE_WG_SIZE populations (none is empty),
// counted from the population of its first neuron, so the workgroup accumulator has
// REDUCE_WG_SIZE slots however many populations the simulation holds. Integer sums
// are exact, so the result does not depend on order; REDUCE_WG_SIZE is fixed (not
// the other kernels' WG_SIZE) so that a workgroup's i32 sum cannot overflow
// (REDUCE_WORKGROUP_SIZE in src/model/limits.rs). A value at or past STAT_CLAMP is
// clamped, and its quantity's bit is OR-ed into the population's clip mask (entry
// CLIP_ENTRY of its SAMPLE_ENTRIES_PER_POP), so the host can report that mean as
// unknown instead of biased. The mask goes straight to global memory, by the rare
// neuron that has a clipped value, so the workgroup accumulator holds only the
// STATS_PER_POP sums: 2,048 bytes, where an accumulated mask took 2,304 and let
// AMD's compiler fit 7 workgroups per SIMD instead of 8 (docs/performance.md).
// Twin: src/cpu/reduce_stats.rs and the sampling block of CpuBackend::step.

@group(0) @binding(2) var<storage, read> v_mv: array<f32>;
@group(0) @binding(3) var<storage, read> g_ampa: array<f32>;
@group(0) @binding(4) var<storage, read> g_gaba: array<f32>;
@group(0) @binding(5) var<storage, read> nmda_pool0: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> nmda_pool1: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> ctrl: GpuCtrl;
@group(0) @binding(8) var<storage, read_write> samples: array<atomic<u32>>;

var<workgroup> acc: array<atomic<i32>, REDUCE_WG_SIZE * STATS_PER_POP>;

fn quantise(x: f32, scale: f32) -> i32 {
    return i32(clamp(floor(x * scale + 0.5), -STAT_CLAMP, STAT_CLAMP));
}

// Bit `k` of the clip mask when the quantised `q` is at the clamp (twin: clip_bit in
// src/cpu/reduce_stats.rs).
fn clip_bit(q: i32, k: u32) -> i32 {
    return select(0, 1 << k, abs(q) >= i32(STAT_CLAMP));
}

// Add quantity `k`'s quantised value to the workgroup sum at `base` and return its
// clip bit. The caller indexes STAT_SCALES by a constant (a runtime index would keep
// the table in per-thread memory).
fn add_stat(base: u32, k: u32, x: f32, scale: f32) -> i32 {
    let q = quantise(x, scale);
    atomicAdd(&acc[base + k], q);
    return clip_bit(q, k);
}

fn add64(idx: u32, a: i32) {
    let add_lo = bitcast<u32>(a);
    let add_hi = select(0u, 0xffffffffu, a < 0);
    let old = atomicAdd(&samples[2u * idx], add_lo);
    let carry = select(0u, 1u, old + add_lo < old);
    atomicAdd(&samples[2u * idx + 1u], add_hi + carry);
}

@compute @workgroup_size(REDUCE_WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    for (var k = lid; k < REDUCE_WG_SIZE * STATS_PER_POP; k += REDUCE_WG_SIZE) {
        atomicStore(&acc[k], 0);
    }
    workgroupBarrier();
    // Population of the workgroup's first neuron (the same in every invocation).
    let pop0 = find_pop(min(linear_id(wid, nwg, 0u, REDUCE_WG_SIZE), sim.n_total - 1u));
    // The chunk ends at this sample step, so its first step is in the same interval.
    let slot = (ctrl.chunks[sim.parity].step / sim.sample_interval) % sim.sample_capacity;
    let out_base = (slot * sim.n_pop + pop0) * SAMPLE_ENTRIES_PER_POP;
    let i = linear_id(wid, nwg, lid, REDUCE_WG_SIZE);
    if (i < sim.n_total) {
        let pop = find_pop(i);
        let p = pops[pop];
        let v = v_mv[i];
        var open = 0.0;
        var blocked = 0.0;
        var g_open = 0.0;
        // The pools by constant index (MAX_NMDA_POOLS is 2), sharing mg_block's
        // exponential (twin: nmda_sums in src/cpu/reduce_stats.rs).
        if (has_pool0(p)) {
            let e_mg = exp_f32(-MG_SLOPE * v);
            let pl0 = p.pools[0];
            let st0 = nmda_pool0[i];
            open += pl0.fraction * st0.x;
            blocked += pl0.fraction * (st0.y + st0.z);
            g_open += pl0.fraction * st0.x * mg_block_e(e_mg, pl0.mg_over_k0);
            if (has_pool1(p)) {
                let pl1 = p.pools[1];
                let st1 = nmda_pool1[i];
                open += pl1.fraction * st1.x;
                blocked += pl1.fraction * (st1.y + st1.z);
                g_open += pl1.fraction * st1.x * mg_block_e(e_mg, pl1.mg_over_k0);
            }
        }
        let ga = g_ampa[i];
        let gg = g_gaba[i];
        // The STATS_PER_POP quantities, in the order of STAT_SCALES.
        let base = (pop - pop0) * STATS_PER_POP;
        let cond = is_conductance(p);
        let clip = add_stat(base, 0u, v, STAT_SCALES[0])
            | add_stat(base, 1u, select(0.0, ga, cond), STAT_SCALES[1])
            | add_stat(base, 2u, select(0.0, gg, cond), STAT_SCALES[2])
            | add_stat(base, 3u, open, STAT_SCALES[3])
            | add_stat(base, 4u, blocked, STAT_SCALES[4])
            | add_stat(base, 5u, p.g_nmda_max * g_open * (p.e_nmda - v), STAT_SCALES[5])
            | add_stat(base, 6u, select(ga, ga * (p.e_ampa - v), cond), STAT_SCALES[6])
            | add_stat(base, 7u, select(gg, gg * (p.e_gaba - v), cond), STAT_SCALES[7]);
        if (clip != 0) {
            let entry = out_base + (pop - pop0) * SAMPLE_ENTRIES_PER_POP + CLIP_ENTRY;
            atomicOr(&samples[2u * entry], bitcast<u32>(clip));
        }
    }
    workgroupBarrier();
    // Sum k of the workgroup's population j (acc[j STATS_PER_POP + k]) is entry k of
    // that population's SAMPLE_ENTRIES_PER_POP.
    for (var k = lid; k < REDUCE_WG_SIZE * STATS_PER_POP; k += REDUCE_WG_SIZE) {
        let a = atomicLoad(&acc[k]);
        if (a != 0) {
            add64(out_base + (k / STATS_PER_POP) * SAMPLE_ENTRIES_PER_POP + k % STATS_PER_POP, a);
        }
    }
}
