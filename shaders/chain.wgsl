// Dispatch probe: the fixed cost of a dispatch that depends on the one before it, as
// each of the simulation's kernels depends on the one before it. One workgroup; its
// first invocation adds 1 to a counter the previous dispatch wrote (read_write
// storage, so wgpu puts a barrier between the two, as between the simulation's
// kernels). `bench --suite` reports the time per dispatch, direct and indirect (the
// propagation's kind): the floor under a step's kernels on the device. Twin: the
// count itself, which `crate::stream::measure_dispatch` checks against the number of
// dispatches.

@group(0) @binding(2) var<storage, read_write> counter: array<u32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        counter[0] = counter[0] + 1u;
    }
}
