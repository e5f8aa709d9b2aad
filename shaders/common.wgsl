// Shared definitions for every ketasim kernel. The host prepends a generated header
// (src/gpu/shaders.rs) with the constants that Rust and WGSL share: MAX_POP,
// MAX_PROJ, MAX_DRIVES, WG_SIZE, PROC_SPLIT, MAX_WG_DIM, STREAM_*, RULE_*, NO_SPIKE,
// the Cephes coefficients and the Poisson reciprocals (as exact hex floats).
//
// The structs mirror src/model/layout.rs; tests/layout.rs checks every member offset.

struct SimParams {
    n_total: u32,
    n_pop: u32,
    n_proj: u32,
    ring_slots: u32,
    seed_lo: u32,
    seed_hi: u32,
    count_capacity: u32,
    sample_interval: u32,
    sample_capacity: u32,
    rec_capacity: u32,
    _pad0: u32,
    _pad1: u32,
    inv_scale: vec4<f32>,
}

struct PopParams {
    offset: u32,
    size: u32,
    ref_steps: u32,
    drive_start: u32,
    n_drives: u32,
    record_spikes: u32,
    _pad0: u32,
    _pad1: u32,
    dt_over_c: f32,
    g_l: f32,
    e_l: f32,
    v_th: f32,
    v_reset: f32,
    i_ext: f32,
    e_ampa: f32,
    e_gaba: f32,
    e_nmda: f32,
    g_nmda_max: f32,
    mg_over_k0: f32,
    nmda_alpha_dt: f32,
    nmda_dt_over_tau: f32,
    decay_ampa: f32,
    decay_gaba: f32,
    decay_nmda_rise: f32,
}

struct ProjParams {
    pre_offset: u32,
    pre_size: u32,
    post_offset: u32,
    post_size: u32,
    rule: u32,
    receptor: u32,
    delay_steps: u32,
    k: u32,
    weight_fixed: i32,
    stream: u32,
    autapses: u32,
    table_base: u32,
    inv_ln_1mp: f32,
    same_pop: u32,
    _pad0: u32,
    _pad1: u32,
}

struct DriveParams {
    receptor: u32,
    index: u32,
    _pad0: u32,
    _pad1: u32,
    mean: f32,
    exp_neg_mean: f32,
    weight: f32,
    _pad2: f32,
}

struct Params {
    sim: SimParams,
    pops: array<PopParams, MAX_POP>,
    projs: array<ProjParams, MAX_PROJ>,
    drives: array<DriveParams, MAX_DRIVES>,
}

struct IsiStat {
    last_step: u32,
    count: u32,
    sum_steps: u32,
    sum_sq: f32,
}

// Population of neuron i (populations are contiguous and ordered).
fn find_pop(i: u32) -> u32 {
    var pop = 0u;
    for (var p = 1u; p < prm.sim.n_pop; p++) {
        if (i >= prm.pops[p].offset) {
            pop = p;
        }
    }
    return pop;
}

// Linear index of this invocation in a 2-D grid of 1-D workgroups (more than 65535
// workgroups spill into y).
fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, size: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * size + lid;
}

// ---- Counter-based RNG: Threefry-2x32-20 (Salmon et al. 2011), twin of src/rng.rs.

fn rotl(x: u32, r: u32) -> u32 {
    return (x << r) | (x >> (32u - r));
}

fn threefry2x32(ctr: vec2<u32>, k: vec2<u32>) -> vec2<u32> {
    let ks = array<u32, 3>(k.x, k.y, KS_PARITY ^ k.x ^ k.y);
    var x0 = ctr.x + ks[0];
    var x1 = ctr.y + ks[1];
    for (var s = 1u; s <= 5u; s++) {
        // Rounds 8j..8j+3 use rotations 13, 15, 26, 6; rounds 8j+4..8j+7 use 17, 29, 16, 24.
        var rot = vec4<u32>(13u, 15u, 26u, 6u);
        if (s % 2u == 0u) {
            rot = vec4<u32>(17u, 29u, 16u, 24u);
        }
        x0 += x1; x1 = rotl(x1, rot.x); x1 ^= x0;
        x0 += x1; x1 = rotl(x1, rot.y); x1 ^= x0;
        x0 += x1; x1 = rotl(x1, rot.z); x1 ^= x0;
        x0 += x1; x1 = rotl(x1, rot.w); x1 ^= x0;
        x0 += ks[s % 3u];
        x1 += ks[(s + 1u) % 3u] + s;
    }
    return vec2<u32>(x0, x1);
}

fn rng_key(stream: u32) -> vec2<u32> {
    return vec2<u32>(prm.sim.seed_lo, prm.sim.seed_hi ^ stream);
}

fn uniform01(x: u32) -> f32 {
    return f32(x >> 8u) * (1.0 / 16777216.0);
}

fn uniform_open0(x: u32) -> f32 {
    return f32((x >> 8u) + 1u) * (1.0 / 16777216.0);
}

// ---- Cephes logf / expf with +, *, floor and bit casts only (twins of src/rng.rs).

fn ln_f32(x: f32) -> f32 {
    let bits = bitcast<u32>(x);
    var e = i32((bits >> 23u) & 0xffu) - 126;
    var m = bitcast<f32>((bits & 0x007fffffu) | 0x3f000000u);
    if (m < LN_SQRT_HALF) {
        e -= 1;
        m = m + m - 1.0;
    } else {
        m -= 1.0;
    }
    let z = m * m;
    var y = LN_POLY[0];
    for (var c = 1u; c < 9u; c++) {
        y = y * m + LN_POLY[c];
    }
    y = y * m * z;
    let ef = f32(e);
    y += LN2_LO * ef;
    y += -0.5 * z;
    let r = m + y;
    return r + LN2_HI * ef;
}

fn exp_f32(x_in: f32) -> f32 {
    let x = clamp(x_in, EXP_MIN, EXP_MAX);
    let n = floor(x * LOG2_E + 0.5);
    var r = x - n * LN2_HI;
    r -= n * LN2_LO;
    let z = r * r;
    var y = EXP_POLY[0];
    for (var c = 1u; c < 6u; c++) {
        y = y * r + EXP_POLY[c];
    }
    y = y * z + r + 1.0;
    let scale = bitcast<f32>(u32(i32(n) + 127) << 23u);
    return y * scale;
}

// Mg2+ unblocked fraction, Jahr & Stevens 1990 (twin of model::mg_block).
fn mg_block(v: f32, mg_over_k0: f32) -> f32 {
    return 1.0 / (1.0 + mg_over_k0 * exp_f32(-MG_SLOPE * v));
}

// High word of a * b (twin of model::connectivity::mul_hi_u32).
fn mul_hi_u32(a: u32, b: u32) -> u32 {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let lo_lo = a_lo * b_lo;
    let hi_lo = a_hi * b_lo;
    let lo_hi = a_lo * b_hi;
    let hi_hi = a_hi * b_hi;
    let cross = (lo_lo >> 16u) + (hi_lo & 0xffffu) + (lo_hi & 0xffffu);
    return hi_hi + (hi_lo >> 16u) + (lo_hi >> 16u) + (cross >> 16u);
}
