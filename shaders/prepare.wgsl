// End-of-step bookkeeping, one invocation: hand this step's spike count to the
// propagation kernel (as its indirect dispatch size), reset the counter, advance the
// step. Twin: the `prepare` block of CpuBackend::step (src/cpu/mod.rs).

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

@compute @workgroup_size(1)
fn main() {
    // Keep the shared parameter block in this kernel's layout (binding 0 everywhere).
    _ = prm.sim.n_total;
    let n = ctrl.n_spikes;
    ctrl.prop_n = n;
    ctrl.prop_step = ctrl.step;
    ctrl.n_spikes = 0u;
    ctrl.step += 1u;
    indirect[0] = min(n, MAX_WG_DIM);
    indirect[1] = max((n + MAX_WG_DIM - 1u) / MAX_WG_DIM, 1u);
    indirect[2] = 1u;
}
