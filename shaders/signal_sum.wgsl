// AMPA-activation signal (SCIENCE.md section 7), one invocation per neuron: the local
// AMPA input that neuron_update accumulated for a signalling population's neuron since
// the last call becomes a rate (nS/s), is rounded once to fixed point (SIG_SCALE) and
// added to its population's 64-bit sum; the accumulator is reset. Integer sums, so
// the result does not depend on the order of the atomics. Twin: signal_sum in
// src/cpu/slow.rs.

@group(0) @binding(2) var<uniform> slow: SlowParams;
@group(0) @binding(3) var<storage, read_write> sig_nrn: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> slow_sums: array<atomic<u32>>;

// 64-bit add of a non-negative 32-bit value into a (lo, hi) pair of atomics.
fn add64_u(idx: u32, a: u32) {
    let old = atomicAdd(&slow_sums[2u * idx], a);
    if (old + a < old) {
        atomicAdd(&slow_sums[2u * idx + 1u], 1u);
    }
}

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_id(wid, nwg, lid, WG_SIZE);
    if (i >= sim.n_total) {
        return;
    }
    let pop = find_pop(i);
    if (pops[pop].sig_on == 0u) {
        return;
    }
    var sg = sig_nrn[i];
    add64_u(pop * SLOW_SUMS_PER_POP + SLOW_SIGNAL, fixed_u32(sg.y * slow.inv_interval_s, SIG_SCALE));
    sg.y = 0.0;
    sig_nrn[i] = sg;
}
