// End-of-step bookkeeping, one invocation: each releasing population's extracellular
// glutamate takes this step's release and Michaelis-Menten uptake; then this step's
// spike count goes to the propagation kernel (as its indirect dispatch size), the
// counter is reset and the step advanced. Twins: `glutamate_step` and the `prepare`
// block of CpuBackend::step (src/cpu/mod.rs).

struct Ctrl {
    step: u32,
    n_spikes: u32,
    prop_n: u32,
    prop_step: u32,
    n_rec: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read_write> ctrl: Ctrl;
@group(0) @binding(2) var<storage, read_write> indirect: array<u32, 3>;
@group(0) @binding(3) var<storage, read> glu_release: array<u32>;
@group(0) @binding(4) var<storage, read_write> glu_state: array<f32>;
@group(0) @binding(5) var<storage, read_write> glu_trace: array<f32>;

@compute @workgroup_size(1)
fn main() {
    for (var pop = 0u; pop < prm.sim.n_pop; pop++) {
        let p = prm.pops[pop];
        if (p.glu_on == 0u) {
            continue;
        }
        let idx = (ctrl.step % prm.sim.count_capacity) * prm.sim.n_pop + pop;
        let rel = f32(glu_release[2u * idx + 1u]) * 4294967296.0 + f32(glu_release[2u * idx]);
        var g = glu_state[pop] + rel * (1.0 / GLU_SCALE) * p.glu_um_per_vesicle;
        g = g - p.glu_vmax_dt * g * (1.0 / (p.glu_km_um + g));
        glu_state[pop] = g;
        glu_trace[idx] = g;
    }
    let n = ctrl.n_spikes;
    ctrl.prop_n = n;
    ctrl.prop_step = ctrl.step;
    ctrl.n_spikes = 0u;
    ctrl.step += 1u;
    indirect[0] = min(n, MAX_WG_DIM);
    indirect[1] = max((n + MAX_WG_DIM - 1u) / MAX_WG_DIM, 1u);
    indirect[2] = 1u;
}
