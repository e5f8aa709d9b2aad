// End-of-chunk bookkeeping, one workgroup: each releasing population's extracellular
// glutamate takes, step by step through the chunk the neuron update just advanced,
// that step's release and Michaelis-Menten uptake (the workgroup's invocations share
// the populations); then the first invocation hands the chunk's spike count to the
// propagation kernel (as its indirect dispatch size), resets the counter and
// advances the step past the chunk. Twins: `glutamate_step` and the `prepare`
// block of CpuBackend::step (src/cpu/mod.rs).

struct Ctrl {
    step: u32,
    n_spikes: u32,
    prop_n: u32,
    prop_step: u32,
    n_rec: u32,
    batch_end: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(2) var<storage, read_write> ctrl: Ctrl;
@group(0) @binding(3) var<storage, read_write> indirect: array<u32, 3>;
@group(0) @binding(4) var<storage, read> glu_release: array<u32>;
@group(0) @binding(5) var<storage, read_write> glu_state: array<f32>;
@group(0) @binding(6) var<storage, read_write> glu_trace: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(local_invocation_index) lid: u32) {
    let start = ctrl.step;
    let len = chunk_len(start, ctrl.batch_end);
    for (var pop = lid; pop < sim.n_pop; pop += WG_SIZE) {
        let p = pops[pop];
        if (p.glu_on == 0u) {
            continue;
        }
        var g = glu_state[pop];
        for (var k = 0u; k < len; k++) {
            let idx = ((start + k) % sim.count_capacity) * sim.n_pop + pop;
            let rel = f32(glu_release[2u * idx + 1u]) * 4294967296.0 + f32(glu_release[2u * idx]);
            g = g + rel * (1.0 / GLU_SCALE) * p.glu_um_per_vesicle;
            g = g - p.glu_vmax_dt * g * (1.0 / (p.glu_km_um + g));
            glu_trace[idx] = g;
        }
        glu_state[pop] = g;
    }
    // Every invocation has read the step before the first one advances it.
    storageBarrier();
    if (lid != 0u) {
        return;
    }
    let n = ctrl.n_spikes;
    ctrl.prop_n = n;
    ctrl.prop_step = start;
    ctrl.n_spikes = 0u;
    ctrl.step = start + len;
    indirect[0] = min(n, MAX_WG_DIM);
    indirect[1] = max((n + MAX_WG_DIM - 1u) / MAX_WG_DIM, 1u);
    indirect[2] = 1u;
}
