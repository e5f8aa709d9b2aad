// Neuron update: one invocation per neuron, advancing it through a chunk of steps
// (main, below). Twin: src/cpu/neuron_update.rs (one step at a time; the same).
// Populations with current-based synapses take current_update (end of file) instead.
//
// C dV/dt = g_L (E_L - V) + g_AMPA (E_AMPA - V) + g_GABA (E_GABA - V)
//           + g_NMDA sum_k f_k O_k B_Mg,k(V) (E_NMDA - V) + I_ext   (SCIENCE.md 1, 3)
// Inputs arriving this step (ring slot step % slots, Poisson drive) are added first;
// V takes a forward-Euler step unless refractory; conductances decay by per-step
// factors; each NMDA pool takes one exact split step of the C/O/B/T ketamine scheme
// with this step's drive, the pre-step V and the free ketamine of this step.
// Populations with slow signalling state (sig_on) accumulate the local AMPA input per
// synapse (nS at healthy density) for the AMPA-activation signal
// (shaders/signal_sum.wgsl) and scale their recurrent AMPA and NMDA input by the
// neuron's synapse density. An AMPA block (NBQX) scales
// every AMPA increment by 1 - ampa_block.

// GpuCtrl and ChunkCtrl (common.wgsl) with the words this kernel updates atomically:
// this chunk counts its spikes and sizes the propagation's dispatch in slot
// sim.parity, and sets up the other slot for the next chunk.
struct ChunkCtrlAtomic {
    dispatch_x: atomic<u32>,
    dispatch_y: atomic<u32>,
    dispatch_z: u32,
    n_spikes: atomic<u32>,
    step: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct GpuCtrlAtomic {
    chunks: array<ChunkCtrlAtomic, 2>,
    n_rec: atomic<u32>,
    batch_end: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(2) var<storage, read_write> v_mv: array<f32>;
@group(0) @binding(3) var<storage, read_write> refrac: array<u32>;
@group(0) @binding(4) var<storage, read_write> g_ampa: array<f32>;
@group(0) @binding(5) var<storage, read_write> g_gaba: array<f32>;
@group(0) @binding(6) var<storage, read_write> x_nmda: array<f32>;
@group(0) @binding(7) var<storage, read_write> nmda_pool0: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> nmda_pool1: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> isi: array<IsiStat>;
@group(0) @binding(10) var<storage, read_write> ring_ampa: array<i32>;
@group(0) @binding(11) var<storage, read_write> ring_gaba: array<i32>;
@group(0) @binding(12) var<storage, read_write> ring_nmda: array<i32>;
@group(0) @binding(13) var<storage, read_write> spikes: array<vec2<u32>>;
@group(0) @binding(14) var<storage, read_write> ctrl: GpuCtrlAtomic;
@group(0) @binding(15) var<storage, read_write> pop_counts: array<atomic<u32>>;
@group(0) @binding(16) var<storage, read_write> rec: array<u32>;
@group(0) @binding(17) var<uniform> drug: DrugParams;
@group(0) @binding(18) var<storage, read_write> glu_r: array<f32>;
@group(0) @binding(19) var<storage, read_write> glu_release: array<atomic<u32>>;
// Per neuron: (synapse density, accumulated local AMPA input in nS).
@group(0) @binding(20) var<storage, read_write> sig_nrn: array<vec2<f32>>;
// Poisson drives, grouped by population (drive_start, n_drives).
@group(0) @binding(21) var<storage, read> drives: array<DriveParams>;

// 64-bit add of a non-negative 32-bit value into a (lo, hi) pair of atomics.
fn add64_u(idx: u32, a: u32) {
    let old = atomicAdd(&glu_release[2u * idx], a);
    if (old + a < old) {
        atomicAdd(&glu_release[2u * idx + 1u], 1u);
    }
}

// Poisson count by sequential inversion (twin of rng::poisson_inversion): the first
// POISSON_UNROLLED steps written out with constant table indices (no indexed constant
// array for a driver to keep in memory), the rare rest in a loop whose reciprocals
// 1/k are div_rn's, the same f32 values as the table's (rng::tests checks every k).
fn poisson_inversion(u: f32, mean: f32, exp_neg_mean: f32) -> u32 {
    var p = exp_neg_mean;
    var cdf = p;
    if (u < cdf) { return 0u; }
    p = p * mean * POISSON_RECIPS[1]; cdf += p; if (u < cdf) { return 1u; }
    p = p * mean * POISSON_RECIPS[2]; cdf += p; if (u < cdf) { return 2u; }
    p = p * mean * POISSON_RECIPS[3]; cdf += p; if (u < cdf) { return 3u; }
    p = p * mean * POISSON_RECIPS[4]; cdf += p; if (u < cdf) { return 4u; }
    p = p * mean * POISSON_RECIPS[5]; cdf += p; if (u < cdf) { return 5u; }
    p = p * mean * POISSON_RECIPS[6]; cdf += p; if (u < cdf) { return 6u; }
    p = p * mean * POISSON_RECIPS[7]; cdf += p; if (u < cdf) { return 7u; }
    p = p * mean * POISSON_RECIPS[8]; cdf += p; if (u < cdf) { return 8u; }
    var k = POISSON_UNROLLED;
    while (u >= cdf && k < POISSON_MAX_K) {
        k += 1u;
        p = p * mean * div_rn(1.0, f32(k));
        cdf += p;
    }
    return k;
}

// Events of Poisson drive dp at neuron i in this step: a Threefry uniform keyed by
// (the neuron's index in its own network, step), by inversion (twin: the uniforms and
// poisson_count_* of update_block in src/cpu/neuron_update.rs).
fn drive_events(i: u32, dp: DriveParams, step: u32) -> u32 {
    let r = threefry2x32(vec2<u32>(i - dp.neuron_base, step), vec2<u32>(dp.key_lo, dp.key_hi));
    return poisson_inversion(uniform01(r.x), dp.mean, dp.exp_neg_mean);
}

// A neuron's state, held in registers across the fused steps of one dispatch.
struct NState {
    v: f32,
    rf: u32,
    ga: f32,
    gg: f32,
    x: f32,
    pool0: vec4<f32>,
    pool1: vec4<f32>,
    sg: vec2<f32>,
}

// Several steps per dispatch: the kernel advances each neuron through the chunk of
// steps chunk_len gives (at most sim.fuse_steps, which never exceeds the shortest
// synaptic delay, so no spike of the chunk arrives within it, nor the refractory
// period plus one, so each neuron fires at most once per chunk), with its state in
// registers: read once and written once per chunk instead of every step. The steps
// themselves are the one-step update's, operation for operation.
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
    let start = ctrl.chunks[sim.parity].step;
    let len = chunk_len(start, ctrl.batch_end);
    if (i == 0u) {
        // Set up the next chunk's slot; the previous chunk's propagation, the last
        // kernel to read it, has finished, and nothing in this dispatch reads it.
        let next = 1u - sim.parity;
        ctrl.chunks[next].step = start + len;
        atomicStore(&ctrl.chunks[next].n_spikes, 0u);
        atomicStore(&ctrl.chunks[next].dispatch_x, 1u);
        atomicStore(&ctrl.chunks[next].dispatch_y, 1u);
    }
    let pop = find_pop(i);
    let p = pops[pop];
    let cond = is_conductance(p);
    var s: NState;
    s.v = v_mv[i];
    s.rf = refrac[i];
    s.ga = g_ampa[i];
    s.gg = g_gaba[i];
    if (cond) {
        s.x = x_nmda[i];
        if (has_pool0(p)) {
            s.pool0 = nmda_pool0[i];
        }
        if (has_pool1(p)) {
            s.pool1 = nmda_pool1[i];
        }
        if (HAS_SIG && p.sig_on != 0u) {
            s.sg = sig_nrn[i];
        }
    }
    for (var k = 0u; k < len; k++) {
        let step = start + k;
        // On GPUs the population's parameters are read again in every step rather
        // than held from the load above across the chunk's steps, where every word
        // a step uses would stay live through the whole loop (REREAD_PARAMS,
        // KernelConfig in src/gpu/shaders.rs). A workgroup's neurons mostly share
        // one population, so the reads hit the cache.
        let ps = step_params(pop, p);
        var spiked: bool;
        if (cond) {
            spiked = conductance_update(i, pop, ps, step, &s);
        } else {
            spiked = current_update(i, pop, ps, step, &s);
        }
        if (spiked) {
            on_spike(i, pop, ps, step);
        }
    }
    v_mv[i] = s.v;
    refrac[i] = s.rf;
    g_ampa[i] = s.ga;
    g_gaba[i] = s.gg;
    if (cond) {
        x_nmda[i] = s.x;
        if (has_pool0(p)) {
            nmda_pool0[i] = s.pool0;
        }
        if (has_pool1(p)) {
            nmda_pool1[i] = s.pool1;
        }
        if (HAS_SIG && p.sig_on != 0u) {
            sig_nrn[i] = s.sg;
        }
    }
}

// The parameters of population pop for one step: read again (REREAD_PARAMS) or the
// ones held since the chunk began.
fn step_params(pop: u32, held: PopParams) -> PopParams {
    if (REREAD_PARAMS) {
        return pops[pop];
    }
    return held;
}

// One step of a conductance-based neuron. Returns whether it fired.
fn conductance_update(i: u32, pop: u32, p: PopParams, step: u32, s: ptr<function, NState>) -> bool {
    let slot = step % sim.ring_slots;
    let idx = slot * sim.n_total + i;
    let in_a = ring_ampa[idx];
    let in_g = ring_gaba[idx];
    ring_ampa[idx] = 0;
    ring_gaba[idx] = 0;
    // Without NMDA input anywhere in the network its ring buffer stays zero.
    var in_n = 0;
    if (HAS_NMDA_INPUT) {
        in_n = ring_nmda[idx];
        ring_nmda[idx] = 0;
    }
    let ampa_gain = 1.0 - drug.ampa_block;
    var in_af = f32(in_a) * sim.inv_scale.x;
    var in_nf = f32(in_n) * sim.inv_scale.z;
    if (HAS_SIG && p.sig_on != 0u) {
        // The activation signal is the input per synapse (before the density scaling).
        if (in_a != 0) {
            (*s).sg.y = (*s).sg.y + in_af * ampa_gain;
        }
        in_af = in_af * (*s).sg.x;
        in_nf = in_nf * (*s).sg.x;
    }
    var ga = (*s).ga + in_af * ampa_gain;
    var gg = (*s).gg + f32(in_g) * sim.inv_scale.y;
    var x = (*s).x + in_nf;
    if (HAS_DRIVES) {
        for (var d = 0u; d < p.n_drives; d++) {
            let dp = drives[p.drive_start + d];
            let k = drive_events(i, dp, step);
            if (k > 0u) {
                let add = f32(k) * dp.weight;
                if (dp.receptor == 0u) {
                    ga += add * ampa_gain;
                } else if (dp.receptor == 1u) {
                    gg += add;
                } else {
                    x += add;
                }
            }
        }
    }
    let v0 = (*s).v;
    // The Mg2+ block of each pool at the step's V (current and kinetics alike), with
    // the exponential shared by the pools (twin: membrane_pools in
    // src/cpu/neuron_update.rs), and the block itself where the pools share [Mg]/K0
    // (GluN2A and 2B do): the same operation on the same operands, so the same bits,
    // without a second exact division. Pools are indexed by constants:
    // MAX_NMDA_POOLS is 2.
    var mg0 = 0.0;
    var mg1 = 0.0;
    if (has_pool0(p)) {
        let e_mg = exp_f32(-MG_SLOPE * v0);
        mg0 = mg_block_e(e_mg, p.pools[0].mg_over_k0);
        if (has_pool1(p)) {
            mg1 = mg0;
            if (bitcast<u32>(p.pools[1].mg_over_k0) != bitcast<u32>(p.pools[0].mg_over_k0)) {
                mg1 = mg_block_e(e_mg, p.pools[1].mg_over_k0);
            }
        }
    }
    var v = v0;
    var rf = (*s).rf;
    var spiked = false;
    if (rf > 0u) {
        rf -= 1u;
    } else {
        var i_syn = ga * (p.e_ampa - v) + gg * (p.e_gaba - v);
        // The step's total conductance, for the stability check (MAX_EULER_STEP_FACTOR).
        var g_total = p.g_l + ga + gg;
        if (has_pool0(p)) {
            var g_open = 0.0;
            g_open += p.pools[0].fraction * (*s).pool0.x * mg0;
            if (has_pool1(p)) {
                g_open += p.pools[1].fraction * (*s).pool1.x * mg1;
            }
            let g_nmda = p.g_nmda_max * g_open;
            i_syn += g_nmda * (p.e_nmda - v);
            g_total += g_nmda;
        }
        v += p.dt_over_c * (p.g_l * (p.e_l - v) + i_syn + p.i_ext);
        check_step(pop, step, p.dt_over_c * g_total, v);
        if (v >= p.v_th) {
            v = p.v_reset;
            rf = p.ref_steps;
            spiked = true;
        }
    }
    (*s).ga = ga * p.decay_ampa;
    (*s).gg = gg * p.decay_gaba;
    if (has_pool0(p)) {
        let conc = max(drug.conc0_um + drug.slope_um_per_step * f32(step - drug.step0), 0.0);
        let pl0 = p.pools[0];
        let e_kd0 = exp_f32(pl0.kd_slope_per_mv * (v0 - KD_REF_MV));
        (*s).pool0 = pool_step_e((*s).pool0, pl0, x, e_kd0, mg0, conc);
        if (has_pool1(p)) {
            let pl1 = p.pools[1];
            var e_kd1 = e_kd0;
            if (bitcast<u32>(pl1.kd_slope_per_mv) != bitcast<u32>(pl0.kd_slope_per_mv)) {
                e_kd1 = exp_f32(pl1.kd_slope_per_mv * (v0 - KD_REF_MV));
            }
            (*s).pool1 = pool_step_e((*s).pool1, pl1, x, e_kd1, mg1, conc);
        }
    }
    (*s).x = x * p.decay_nmda_rise;
    (*s).v = v;
    (*s).rf = rf;
    return spiked;
}

// An integrated membrane step of population pop with step factor h = dt g_total / C
// and new V: counted as unstable if h > MAX_EULER_STEP_FACTOR or V is infinite or
// NaN, in the words after the batch's spike counts (UNSTABLE_WORDS_PER_POP per
// population: count, u32 max minus the first step, bits of the largest factor or
// +inf for a non-finite V). Twin: the membrane loops and neuron_update in
// src/cpu/neuron_update.rs, backend::note_unstable.
fn check_step(pop: u32, step: u32, h: f32, v: f32) {
    let bad_h = h > MAX_EULER_STEP_FACTOR;
    let non_finite = (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u;
    if (bad_h || non_finite) {
        let base = sim.count_capacity * sim.n_pop + UNSTABLE_WORDS_PER_POP * pop;
        atomicAdd(&pop_counts[base], 1u);
        atomicMax(&pop_counts[base + 1u], 0xffffffffu - step);
        atomicMax(&pop_counts[base + 2u], select(0x7f800000u, bitcast<u32>(h), bad_h));
    }
}

// A spike of neuron i (population pop) in this step: glutamate release, ISI
// accumulators, the step's spike list, the population count and the spike record.
// Twin: record_spike in src/cpu/neuron_update.rs.
fn on_spike(i: u32, pop: u32, p: PopParams, step: u32) {
    var st = isi[i];
    if (HAS_GLU && p.glu_on != 0u) {
        // Release p R per site; R recovered exponentially since the last spike
        // (Tsodyks & Markram 1997). Twin: record_spike in src/cpu/neuron_update.rs.
        var r = 1.0;
        if (st.last_step != NO_SPIKE) {
            r = 1.0 - (1.0 - glu_r[i]) * exp_f32(-p.glu_rec_rate * f32(step - st.last_step));
        }
        let rel = p.glu_p_release * r;
        glu_r[i] = r - rel;
        add64_u((step % sim.count_capacity) * sim.n_pop + pop, u32(rel * p.glu_sites * GLU_SCALE + 0.5));
    }
    if (st.last_step != NO_SPIKE) {
        let interval = step - st.last_step;
        st.count += 1u;
        st.sum_steps += interval;
        st.sum_sq += f32(interval) * f32(interval);
    }
    st.last_step = step;
    isi[i] = st;
    // The chunk's spike list, and the propagation's dispatch grown to cover it:
    // sim.spike_groups workgroups per spike, MAX_WG_DIM per row (ChunkCtrl in
    // src/model/layout.rs). Both sizes stay within MAX_WG_DIM, WebGPU's minimum
    // limit, whatever n is: wgpu does not check indirect dispatches
    // (instance_descriptor in src/gpu/context.rs), and the host sizes
    // sim.spike_groups so that a chunk's spikes never reach the clamp
    // (dispatch_bounded_spike_groups in src/gpu/backend.rs).
    let c = sim.parity;
    let n = atomicAdd(&ctrl.chunks[c].n_spikes, 1u);
    spikes[n] = vec2<u32>(i, step);
    let groups = (n + 1u) * sim.spike_groups;
    atomicMax(&ctrl.chunks[c].dispatch_x, min(groups, MAX_WG_DIM));
    if (groups > MAX_WG_DIM) {
        atomicMax(&ctrl.chunks[c].dispatch_y, min((groups - 1u) / MAX_WG_DIM + 1u, MAX_WG_DIM));
    }
    atomicAdd(&pop_counts[(step % sim.count_capacity) * sim.n_pop + pop], 1u);
    if (HAS_RECORD && p.record_spikes != 0u) {
        let r = atomicAdd(&ctrl.n_rec, 1u);
        if (r < sim.rec_capacity) {
            rec[2u * r] = step;
            rec[2u * r + 1u] = i;
        }
    }
}

// Current-based population (NEST's iaf_psc_exp; twin: current_update in
// src/cpu/neuron_update.rs). g_ampa/g_gaba hold the excitatory and inhibitory
// synaptic currents (pA). Exact integration in NEST's order: V takes the propagator
// step with the currents at the step's start (unless refractory), the currents decay,
// then this step's arrivals (ring slot, Poisson drive) are added, so that they act
// on V from the next step on, as NEST's ring buffers do. Returns whether it fired.
fn current_update(i: u32, pop: u32, p: PopParams, step: u32, s: ptr<function, NState>) -> bool {
    let slot = step % sim.ring_slots;
    let idx = slot * sim.n_total + i;
    let in_e = ring_ampa[idx];
    let in_i = ring_gaba[idx];
    ring_ampa[idx] = 0;
    ring_gaba[idx] = 0;
    let ie0 = (*s).ga;
    let ii0 = (*s).gg;
    var v = (*s).v;
    var rf = (*s).rf;
    var spiked = false;
    if (rf > 0u) {
        rf -= 1u;
    } else {
        v = p.e_l + (v - p.e_l) * p.cur_p22 + ie0 * p.cur_p21ex + ii0 * p.cur_p21in + p.i_ext * p.cur_p20;
        // The exact propagator is stable at any step: only a non-finite V counts.
        check_step(pop, step, 0.0, v);
        if (v >= p.v_th) {
            v = p.v_reset;
            rf = p.ref_steps;
            spiked = true;
        }
    }
    var ie = ie0 * p.decay_ampa + f32(in_e) * sim.inv_scale.x;
    var ii = ii0 * p.decay_gaba + f32(in_i) * sim.inv_scale.y;
    if (HAS_DRIVES) {
        for (var d = 0u; d < p.n_drives; d++) {
            let dp = drives[p.drive_start + d];
            let k = drive_events(i, dp, step);
            if (k > 0u) {
                let add = f32(k) * dp.weight;
                if (dp.receptor == 0u) {
                    ie += add;
                } else {
                    ii += add;
                }
            }
        }
    }
    (*s).ga = ie;
    (*s).gg = ii;
    (*s).v = v;
    (*s).rf = rf;
    return spiked;
}
