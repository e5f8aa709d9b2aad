// Slow signalling state (SCIENCE.md section 7), one invocation per neuron of a
// signalling population, once per interval between readouts (never per step). Twin:
// slow_update in src/cpu/slow.rs; equations and sources in docs/signalling.md.
//
// State per neuron: reference R (nS/s), BDNF b, mTOR m, synaptic protein P (1 = basal)
// and, in sig_nrn.x, synapse density s. Over each of n_sub substeps of h hours, with
// the population's local AMPA activation A interpolated linearly across the interval:
//   r = A / R                 relative AMPA activation
//   D = r^n / (r^n + K^n)     AMPA-driven Ca2+/BDNF-release drive (Hill)
//   R += (A - R)(1 - e^-h/tau_adapt)
//   b += (D - b)(1 - e^-h/tau_bdnf)
//   m += ((1 - mtor_block)(1 - bdnf_block) b - m)(1 - e^-h/tau_mtor)
//   P += (m / m_rest - P)(1 - e^-h/tau_protein)
//   ds/dt = g (s_max - s) - (s - s_set) / tau_loss,  g = k max(P - 1 - theta, 0),
//   solved exactly for g constant over the substep.
// mode 1 captures the baseline: R = A, b = m = m_rest = D(1), P = 1.
// Population sums of R (SIG_SCALE), b, m, P, s (SLOW_SCALE) go to slow_sums.

@group(0) @binding(2) var<uniform> slow: SlowParams;
@group(0) @binding(3) var<storage, read_write> sig_nrn: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> slow_state: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> slow_sums: array<atomic<u32>>;
// Per population: whether it carries the state, its activation over the span, its
// set point.
@group(0) @binding(6) var<storage, read> slow_pops: array<SlowPop>;

fn add64_u(idx: u32, a: u32) {
    let old = atomicAdd(&slow_sums[2u * idx], a);
    if (old + a < old) {
        atomicAdd(&slow_sums[2u * idx + 1u], 1u);
    }
}

fn hill(r: f32) -> f32 {
    var rn = 1.0;
    for (var k = 0u; k < slow.hill_n; k++) {
        rn = rn * r;
    }
    return div_rn(rn, rn + slow.hill_k_pow);
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
    let sp = slow_pops[pop];
    if (sp.on == 0u) {
        return;
    }
    var st = slow_state[i];
    var sg = sig_nrn[i];
    if (slow.mode == 1u) {
        st = vec4<f32>(sp.a_end, slow.m_rest, slow.m_rest, 1.0);
    } else {
        let inv_n = div_rn(1.0, f32(slow.n_sub));
        for (var j = 0u; j < slow.n_sub; j++) {
            let a = sp.a_start + (sp.a_end - sp.a_start) * ((f32(j) + 0.5) * inv_n);
            var r = 1.0;
            if (st.x > 0.0) {
                r = div_rn(a, st.x);
            }
            let d = hill(r);
            st.x = st.x + (a - st.x) * slow.adapt_rate;
            st.y = st.y + (d - st.y) * slow.bdnf_rate;
            st.z = st.z + (slow.mtor_gain * (slow.bdnf_gain * st.y) - st.z) * slow.mtor_rate;
            st.w = st.w + (div_rn(st.z, slow.m_rest) - st.w) * slow.protein_rate;
            let g = slow.growth_per_h * max(st.w - 1.0 - slow.threshold, 0.0);
            let lam = g + slow.loss_per_h;
            let s_inf = div_rn(g * slow.max_density + sp.s_set * slow.loss_per_h, lam);
            sg.x = s_inf + (sg.x - s_inf) * exp_f32(-lam * slow.h_hours);
        }
        sig_nrn[i] = sg;
    }
    slow_state[i] = st;
    let base = pop * SLOW_SUMS_PER_POP + SLOW_STATE;
    add64_u(base, fixed_u32(st.x, SIG_SCALE));
    add64_u(base + 1u, fixed_u32(st.y, SLOW_SCALE));
    add64_u(base + 2u, fixed_u32(st.z, SLOW_SCALE));
    add64_u(base + 3u, fixed_u32(st.w, SLOW_SCALE));
    add64_u(base + 4u, fixed_u32(sg.x, SLOW_SCALE));
}
