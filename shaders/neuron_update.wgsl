// Neuron update: one invocation per neuron and step. Twin: src/cpu/neuron_update.rs.
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

struct Ctrl {
    step: u32,
    n_spikes: atomic<u32>,
    prop_n: u32,
    prop_step: u32,
    n_rec: atomic<u32>,
    _pad0: u32,
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
@group(0) @binding(13) var<storage, read_write> spikes: array<u32>;
@group(0) @binding(14) var<storage, read_write> ctrl: Ctrl;
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

fn pool_get(k: u32, i: u32) -> vec4<f32> {
    if (k == 0u) {
        return nmda_pool0[i];
    }
    return nmda_pool1[i];
}

fn pool_set(k: u32, i: u32, st: vec4<f32>) {
    if (k == 0u) {
        nmda_pool0[i] = st;
    } else {
        nmda_pool1[i] = st;
    }
}

fn poisson_inversion(u: f32, mean: f32, exp_neg_mean: f32) -> u32 {
    var k = 0u;
    var p = exp_neg_mean;
    var cdf = p;
    while (u >= cdf && k < POISSON_MAX_K) {
        k += 1u;
        p = p * mean * POISSON_RECIPS[k];
        cdf += p;
    }
    return k;
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
    let p = pops[pop];
    let step = ctrl.step;
    if (p.syn_current != 0u) {
        if (current_update(i, p, step)) {
            on_spike(i, pop, p, step);
        }
        return;
    }
    let slot = step % sim.ring_slots;
    let idx = slot * sim.n_total + i;
    let in_a = ring_ampa[idx];
    let in_g = ring_gaba[idx];
    let in_n = ring_nmda[idx];
    ring_ampa[idx] = 0;
    ring_gaba[idx] = 0;
    ring_nmda[idx] = 0;
    let ampa_gain = 1.0 - drug.ampa_block;
    var in_af = f32(in_a) * sim.inv_scale.x;
    var in_nf = f32(in_n) * sim.inv_scale.z;
    if (p.sig_on != 0u) {
        // The activation signal is the input per synapse (before the density scaling).
        var sg = sig_nrn[i];
        if (in_a != 0) {
            sg.y = sg.y + in_af * ampa_gain;
            sig_nrn[i] = sg;
        }
        in_af = in_af * sg.x;
        in_nf = in_nf * sg.x;
    }
    var ga = g_ampa[i] + in_af * ampa_gain;
    var gg = g_gaba[i] + f32(in_g) * sim.inv_scale.y;
    var x = x_nmda[i] + in_nf;
    for (var d = 0u; d < p.n_drives; d++) {
        let dp = drives[p.drive_start + d];
        let r = threefry2x32(vec2<u32>(i - dp.neuron_base, step), vec2<u32>(dp.key_lo, dp.key_hi));
        let k = poisson_inversion(uniform01(r.x), dp.mean, dp.exp_neg_mean);
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
    let v0 = v_mv[i];
    var v = v0;
    var rf = refrac[i];
    var spiked = false;
    if (rf > 0u) {
        rf -= 1u;
    } else {
        var i_syn = ga * (p.e_ampa - v) + gg * (p.e_gaba - v);
        if (p.n_pools > 0u) {
            var g_open = 0.0;
            for (var k = 0u; k < p.n_pools; k++) {
                let pl = p.pools[k];
                g_open += pl.fraction * pool_get(k, i).x * mg_block(v, pl.mg_over_k0);
            }
            i_syn += p.g_nmda_max * g_open * (p.e_nmda - v);
        }
        v += p.dt_over_c * (p.g_l * (p.e_l - v) + i_syn + p.i_ext);
        if (v >= p.v_th) {
            v = p.v_reset;
            rf = p.ref_steps;
            spiked = true;
        }
    }
    g_ampa[i] = ga * p.decay_ampa;
    g_gaba[i] = gg * p.decay_gaba;
    let conc = max(drug.conc0_um + drug.slope_um_per_step * f32(step - drug.step0), 0.0);
    for (var k = 0u; k < p.n_pools; k++) {
        let pl = p.pools[k];
        pool_set(k, i, pool_step(pool_get(k, i), pl, x, v0, mg_block(v0, pl.mg_over_k0), conc));
    }
    x_nmda[i] = x * p.decay_nmda_rise;
    v_mv[i] = v;
    refrac[i] = rf;
    if (spiked) {
        on_spike(i, pop, p, step);
    }
}

// A spike of neuron i (population pop) in this step: glutamate release, ISI
// accumulators, the step's spike list, the population count and the spike record.
// Twin: record_spike in src/cpu/neuron_update.rs.
fn on_spike(i: u32, pop: u32, p: PopParams, step: u32) {
    var st = isi[i];
    if (p.glu_on != 0u) {
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
    let n = atomicAdd(&ctrl.n_spikes, 1u);
    spikes[n] = i;
    atomicAdd(&pop_counts[(step % sim.count_capacity) * sim.n_pop + pop], 1u);
    if (p.record_spikes != 0u) {
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
fn current_update(i: u32, p: PopParams, step: u32) -> bool {
    let slot = step % sim.ring_slots;
    let idx = slot * sim.n_total + i;
    let in_e = ring_ampa[idx];
    let in_i = ring_gaba[idx];
    ring_ampa[idx] = 0;
    ring_gaba[idx] = 0;
    let ie0 = g_ampa[i];
    let ii0 = g_gaba[i];
    var v = v_mv[i];
    var rf = refrac[i];
    var spiked = false;
    if (rf > 0u) {
        rf -= 1u;
    } else {
        v = p.e_l + (v - p.e_l) * p.cur_p22 + ie0 * p.cur_p21ex + ii0 * p.cur_p21in + p.i_ext * p.cur_p20;
        if (v >= p.v_th) {
            v = p.v_reset;
            rf = p.ref_steps;
            spiked = true;
        }
    }
    var ie = ie0 * p.decay_ampa + f32(in_e) * sim.inv_scale.x;
    var ii = ii0 * p.decay_gaba + f32(in_i) * sim.inv_scale.y;
    for (var d = 0u; d < p.n_drives; d++) {
        let dp = drives[p.drive_start + d];
        let r = threefry2x32(vec2<u32>(i - dp.neuron_base, step), vec2<u32>(dp.key_lo, dp.key_hi));
        let k = poisson_inversion(uniform01(r.x), dp.mean, dp.exp_neg_mean);
        if (k > 0u) {
            let add = f32(k) * dp.weight;
            if (dp.receptor == 0u) {
                ie += add;
            } else {
                ii += add;
            }
        }
    }
    g_ampa[i] = ie;
    g_gaba[i] = ii;
    v_mv[i] = v;
    refrac[i] = rf;
    return spiked;
}
