// Memory-bandwidth probe: STREAM's Copy (McCalpin 1995, "Memory bandwidth and machine
// balance in current high performance computers", IEEE TCCA Newsletter), one 16-byte
// element per invocation, dst[i] = src[i], so every byte is read once and written
// once. It is built and dispatched as the simulation's kernels are (the same SPIR-V
// path, bounds checks, workgroup size and 2-D grid), so the bandwidth it reaches is
// what this toolchain can reach on the device: `bench --suite` sets the neuron
// update's bandwidth against it. Twin: src/cpu/stream.rs.

@group(0) @binding(2) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<u32>>;

@compute @workgroup_size(WG_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_id(wid, nwg, lid, WG_SIZE);
    if (i < arrayLength(&src)) {
        dst[i] = src[i];
    }
}
