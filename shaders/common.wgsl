// Shared definitions for every ketasim kernel. The host prepends a generated header
// (src/gpu/shaders.rs) with the constants that Rust and WGSL share: WG_SIZE, PROC_SPLIT, MAX_WG_DIM, STREAM_*, RULE_*, NO_SPIKE,
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
    fuse_steps: u32,
    // Chunk-control slot of this dispatch (GpuCtrl.chunks), alternating per chunk.
    parity: u32,
    // Workgroups per spike in propagate (SimParams::spike_groups).
    spike_groups: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    inv_scale: vec4<f32>,
}

// Control words of one chunk of fused steps; the GPU keeps two, used by alternate
// chunks (SimParams.parity). See ChunkCtrl in src/model/layout.rs.
struct ChunkCtrl {
    // Indirect dispatch size of the chunk's propagation.
    dispatch_x: u32,
    dispatch_y: u32,
    dispatch_z: u32,
    // Spikes of the chunk.
    n_spikes: u32,
    // First step of the chunk.
    step: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// The two chunk slots and the words shared by a read-back batch's chunks.
struct GpuCtrl {
    chunks: array<ChunkCtrl, 2>,
    n_rec: u32,
    batch_end: u32,
    _pad1: u32,
    _pad2: u32,
}

struct PoolParams {
    fraction: f32,
    mg_over_k0: f32,
    alpha_dt: f32,
    beta_dt: f32,
    kon_dt: f32,
    kd_ref_um: f32,
    kd_slope_per_mv: f32,
    _pad0: f32,
}

struct PopParams {
    offset: u32,
    size: u32,
    ref_steps: u32,
    drive_start: u32,
    n_drives: u32,
    record_spikes: u32,
    n_pools: u32,
    glu_on: u32,
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
    decay_ampa: f32,
    decay_gaba: f32,
    decay_nmda_rise: f32,
    glu_p_release: f32,
    glu_sites: f32,
    glu_rec_rate: f32,
    glu_um_per_vesicle: f32,
    glu_vmax_dt: f32,
    glu_km_um: f32,
    sig_on: u32,
    syn_current: u32,
    cur_p22: f32,
    cur_p21ex: f32,
    cur_p21in: f32,
    cur_p20: f32,
    proj_first: u32,
    proj_count: u32,
    _pad_cur2: f32,
    pools: array<PoolParams, MAX_NMDA_POOLS>,
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
    seed_lo: u32,
    seed_hi: u32,
    w_mean_fixed: f32,
    w_sd_fixed: f32,
    d_mean_steps: f32,
    d_sd_steps: f32,
}

struct DriveParams {
    receptor: u32,
    index: u32,
    key_lo: u32,
    key_hi: u32,
    mean: f32,
    exp_neg_mean: f32,
    weight: f32,
    neuron_base: u32,
}

struct DrugParams {
    conc0_um: f32,
    slope_um_per_step: f32,
    step0: u32,
    ampa_block: f32,
}

struct SlowPop {
    on: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    a_start: f32,
    a_end: f32,
    s_set: f32,
    _pad3: f32,
}

struct SlowParams {
    mode: u32,
    n_sub: u32,
    hill_n: u32,
    _pad0: u32,
    inv_interval_s: f32,
    adapt_rate: f32,
    bdnf_rate: f32,
    mtor_rate: f32,
    protein_rate: f32,
    hill_k_pow: f32,
    m_rest: f32,
    mtor_gain: f32,
    bdnf_gain: f32,
    growth_per_h: f32,
    threshold: f32,
    max_density: f32,
    loss_per_h: f32,
    h_hours: f32,
    _pad1: f32,
    _pad2: f32,
}

struct IsiStat {
    last_step: u32,
    count: u32,
    sum_steps: u32,
    sum_sq: f32,
}

// Every kernel binds the simulation constants (a uniform block) and the populations
// (a storage array, as large as the simulation needs: thousands of small networks side
// by side fit); kernels number their own bindings from 2.
@group(0) @binding(0) var<uniform> sim: SimParams;
@group(0) @binding(1) var<storage, read> pops: array<PopParams>;

// Population of neuron i: the last population whose first neuron is at or before i,
// by binary search (populations are contiguous and ordered; twin of
// ParamsBlock::find_pop).
fn find_pop(i: u32) -> u32 {
    var lo = 0u;
    var hi = sim.n_pop;
    while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (i >= pops[mid].offset) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// Steps of the chunk that starts at `step` (twin: model::chunk_len): at most
// sim.fuse_steps, ending at the next sample step (so that reduce_stats sees that
// step's state) and at the batch's end.
fn chunk_len(step: u32, batch_end: u32) -> u32 {
    let to_sample = sim.sample_interval - step % sim.sample_interval;
    return max(min(min(sim.fuse_steps, to_sample), batch_end - step), 1u);
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

// One Threefry round: x0 += x1, x1 = rotl(x1, r) ^ x0.
fn tf_round(x: vec2<u32>, r: u32) -> vec2<u32> {
    let x0 = x.x + x.y;
    return vec2<u32>(x0, rotl(x.y, r) ^ x0);
}

// The 20 rounds and 5 key injections written out (the twin's loop unrolled, the same
// operations in the same order), so that no driver has to unroll a loop or keep the
// key schedule in an indexed array: rounds 8j..8j+3 rotate by 13, 15, 26, 6 and
// rounds 8j+4..8j+7 by 17, 29, 16, 24; injection s adds ks[s % 3] and
// ks[(s + 1) % 3] + s.
fn threefry2x32(ctr: vec2<u32>, k: vec2<u32>) -> vec2<u32> {
    let ks0 = k.x;
    let ks1 = k.y;
    let ks2 = KS_PARITY ^ k.x ^ k.y;
    var x = vec2<u32>(ctr.x + ks0, ctr.y + ks1);
    x = tf_round(tf_round(tf_round(tf_round(x, 13u), 15u), 26u), 6u);
    x = vec2<u32>(x.x + ks1, x.y + (ks2 + 1u));
    x = tf_round(tf_round(tf_round(tf_round(x, 17u), 29u), 16u), 24u);
    x = vec2<u32>(x.x + ks2, x.y + (ks0 + 2u));
    x = tf_round(tf_round(tf_round(tf_round(x, 13u), 15u), 26u), 6u);
    x = vec2<u32>(x.x + ks0, x.y + (ks1 + 3u));
    x = tf_round(tf_round(tf_round(tf_round(x, 17u), 29u), 16u), 24u);
    x = vec2<u32>(x.x + ks1, x.y + (ks2 + 4u));
    x = tf_round(tf_round(tf_round(tf_round(x, 13u), 15u), 26u), 6u);
    return vec2<u32>(x.x + ks2, x.y + (ks0 + 5u));
}

// Key of a projection's stream: the seed of the projection's own network.
fn proj_key(pr: ProjParams, stream: u32) -> vec2<u32> {
    return vec2<u32>(pr.seed_lo, pr.seed_hi ^ stream);
}

fn uniform01(x: u32) -> f32 {
    return f32(x >> 8u) * (1.0 / 16777216.0);
}

fn uniform_open0(x: u32) -> f32 {
    return f32((x >> 8u) + 1u) * (1.0 / 16777216.0);
}

// ---- Cephes logf / expf with +, *, floor and bit casts only (twins of src/rng.rs).

// c[0] x^8 + ... + c[8] by Horner's rule, as the twins' loops over a coefficient
// table: written out with constant indices, so no array is indexed at run time (a
// driver could keep it in per-thread memory; docs/performance.md).
fn horner9(c: array<f32, 9>, x: f32) -> f32 {
    var y = c[0] * x + c[1];
    y = y * x + c[2];
    y = y * x + c[3];
    y = y * x + c[4];
    y = y * x + c[5];
    y = y * x + c[6];
    y = y * x + c[7];
    return y * x + c[8];
}

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
    var y = horner9(LN_POLY, m);
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
    var y = EXP_POLY[0] * r + EXP_POLY[1];
    y = y * r + EXP_POLY[2];
    y = y * r + EXP_POLY[3];
    y = y * r + EXP_POLY[4];
    y = y * r + EXP_POLY[5];
    y = y * z + r + 1.0;
    let scale = bitcast<f32>(u32(i32(n) + 127) << 23u);
    return y * scale;
}

// 1 - e^-x for x >= 0, series below EXPM1_SERIES_MAX (twin of rng::one_minus_exp_neg).
fn one_minus_exp_neg(x: f32) -> f32 {
    if (x < EXPM1_SERIES_MAX) {
        var t = 1.0 - x * (1.0 / 6.0);
        t = 1.0 - x * (1.0 / 5.0) * t;
        t = 1.0 - x * (1.0 / 4.0) * t;
        t = 1.0 - x * (1.0 / 3.0) * t;
        t = 1.0 - x * 0.5 * t;
        return x * t;
    }
    return 1.0 - exp_f32(-x);
}

// a / b rounded to nearest, ties to even, as IEEE 754 division (and so the CPU
// twin's `/`) gives it. Vulkan lets OpFDiv be off by 2.5 ulp ("Precision and
// Operation of SPIR-V Instructions"), and NVIDIA's is: on an H200 the NMDA sums of
// the mixed test circuit drifted by one fixed-point unit within 34 steps. Normal
// operands with a normal quotient divide their 24-bit significands exactly: with
// mb <= ma < 2 mb, the quotient's significand is Q = floor(ma 2^23 / mb) in
// [2^23, 2^24) and the remainder R = ma 2^23 - Q mb in [0, mb) decides the rounding
// (up if 2R > mb, or 2R = mb and Q odd). Q is first estimated from the native
// quotient of the two significands (within 2.5 ulp of ma / mb in [1, 2), so its
// truncation is Q - 2 to Q + 3), corrected by the sign and size of the remainder's
// low word (integer arithmetic), and the corrected Q is verified exactly (the
// remainder is in [0, mb), and an f32 bound on it shows that its low word is the
// whole remainder); a driver whose native division is outside Vulkan's bound fails
// that check and takes the 24-step restoring long division (div_rn_long) instead, so
// the result is exact either way.
// Zeros, subnormals, infinities, NaN and quotients at the ends of the exponent range
// fall back to the native division. From the generated header (shaders::Division):
// EXACT_DIV is false on the plain WGSL path, which is not exact anyway
// (src/gpu/strict.rs); LONG_DIV makes every division take the long division, for
// measuring what the estimate saves (KETASIM_GPU_DIV=long); DIV_ESTIMATE_OFFSET (0)
// and DIV_FALLBACK (true) differ only in tests that move the estimate as an
// out-of-bound driver would, with and without the fallback.
fn div_rn(a: f32, b: f32) -> f32 {
    if (!EXACT_DIV) {
        return a / b;
    }
    let ba = bitcast<u32>(a);
    let bb = bitcast<u32>(b);
    let ea = i32((ba >> 23u) & 0xffu);
    let eb = i32((bb >> 23u) & 0xffu);
    var e = ea - eb + 127;
    if (ea == 0 || ea == 255 || eb == 0 || eb == 255 || e < 2 || e > 253) {
        return a / b;
    }
    var ma = (ba & 0x7fffffu) | 0x800000u;
    let mb = (bb & 0x7fffffu) | 0x800000u;
    if (ma < mb) {
        ma = ma << 1u;
        e -= 1;
    }
    // mb <= ma < 2 mb: the quotient is in [1, 2). ma < 2^25 is even when it was
    // doubled, so both significands are exact as f32.
    var q = 0u;
    var r = 0u;
    var ok = false;
    if (!LONG_DIV) {
        // Within Vulkan's 2.5 ulp the truncated estimate is Q - 2 to Q + 3; three
        // corrections fix Q - 3 to Q + 3.
        q = u32(f32(ma) / f32(mb) * 8388608.0) + DIV_ESTIMATE_OFFSET;
        // The remainder's low word, ma 2^23 - q mb modulo 2^32.
        var qr = vec2<u32>(q, (ma << 23u) - q * mb);
        qr = div_correct(div_correct(div_correct(qr, mb), mb), mb);
        q = qr.x;
        r = qr.y;
        // r is the exact remainder T = ma 2^23 - q mb if |T| < 2^31. Checked in f32,
        // whose conversions, multiply and subtract are correctly rounded (Vulkan):
        // f32(q) f32(mb) is within 2^-23 q mb of q mb, and ma 2^23 < 2^48 is exact,
        // so a computed |T| <= 2^27 means |T| < 2^28. Then q = Q iff r < mb.
        let t = f32(ma) * 8388608.0 - f32(q) * f32(mb);
        ok = abs(t) <= 134217728.0 && r < mb;
    }
    if (!ok) {
        if (!DIV_FALLBACK) {
            return bitcast<f32>(0x7fc00000u);
        }
        let qr = div_rn_long(ma, mb);
        q = qr.x;
        r = qr.y;
    }
    var m = q;
    let twice = r << 1u;
    if (twice > mb || (twice == mb && (q & 1u) != 0u)) {
        m += 1u;
    }
    if (m == 0x1000000u) {
        m = 0x800000u;
        e += 1;
    }
    return bitcast<f32>(((ba ^ bb) & 0x80000000u) | (u32(e) << 23u) | (m & 0x7fffffu));
}

// One correction of a quotient estimate (q, low word of ma 2^23 - q mb): down if the
// remainder is negative, up if it is at least mb (div_rn).
fn div_correct(qr: vec2<u32>, mb: u32) -> vec2<u32> {
    let ri = bitcast<i32>(qr.y);
    let low = ri < 0;
    let high = ri >= i32(mb);
    let q = select(select(qr.x, qr.x + 1u, high), qr.x - 1u, low);
    let r = select(select(qr.y, qr.y - mb, high), qr.y + mb, low);
    return vec2<u32>(q, r);
}

// Q = floor(ma 2^23 / mb) and R = ma 2^23 - Q mb for mb <= ma < 2 mb, by 24 steps of
// restoring long division, one quotient bit each (div_rn's fallback). After step k,
// r = 2 (ma 2^k - q mb) with 0 <= r / 2 < mb.
fn div_rn_long(ma: u32, mb: u32) -> vec2<u32> {
    var q = 0u;
    var r = ma;
    for (var k = 0u; k < 24u; k++) {
        q = q << 1u;
        if (r >= mb) {
            r -= mb;
            q |= 1u;
        }
        r = r << 1u;
    }
    return vec2<u32>(q, r >> 1u);
}

// Whether population p has its first (second) NMDA pool, folded to false where no
// population of the network has one (NMDA_POOLS, Features in src/gpu/shaders.rs).
fn has_pool0(p: PopParams) -> bool {
    return NMDA_POOLS > 0u && p.n_pools > 0u;
}

fn has_pool1(p: PopParams) -> bool {
    return NMDA_POOLS > 1u && p.n_pools > 1u;
}

// Whether population p is conductance-based (else current-based), folded to a
// constant where the network has only one kind (Features in src/gpu/shaders.rs).
fn is_conductance(p: PopParams) -> bool {
    return HAS_COND && (!HAS_CURRENT || p.syn_current == 0u);
}

// Mg2+ unblocked fraction, Jahr & Stevens 1990 (twin of model::mg_block).
fn mg_block(v: f32, mg_over_k0: f32) -> f32 {
    return mg_block_e(exp_f32(-MG_SLOPE * v), mg_over_k0);
}

// mg_block with e_mg = exp_f32(-MG_SLOPE V) given: a neuron's pools share it.
fn mg_block_e(e_mg: f32, mg_over_k0: f32) -> f32 {
    return div_rn(1.0, 1.0 + mg_over_k0 * e_mg);
}

// 1 - e^-x for x >= 0 where the caller has e = exp_f32(-x) already: the same value as
// one_minus_exp_neg(x) without a second exponential (twin of
// cpu::simd::one_minus_exp_neg_with).
fn one_minus_exp_neg_with(x: f32, e: f32) -> f32 {
    if (x < EXPM1_SERIES_MAX) {
        return one_minus_exp_neg(x);
    }
    return 1.0 - e;
}

// One exact split step of an NMDA pool's four-state ketamine scheme (twin of
// model::ketamine::pool_step): st = (O, B, T, 0), C = 1 - O - B - T. Gating pairs
// (C,O) and (T,B) relax exactly for opening a = alpha x and closing beta, then the
// block pair (O,B) for block kb = k_on [K] B_Mg and unblock ku = k_on K_d(V).
fn pool_step(st: vec4<f32>, pl: PoolParams, x: f32, v: f32, mg_free: f32, conc: f32) -> vec4<f32> {
    return pool_step_e(st, pl, x, exp_f32(pl.kd_slope_per_mv * (v - KD_REF_MV)), mg_free, conc);
}

// pool_step with the unblocking exponential e_kd = exp_f32(kd_slope (V - KD_REF_MV))
// given (the pools of a neuron share it where their slopes are equal) and 1 - e^-x
// from the step's own exponentials: the same operations, so the same bits (twin of
// pool_step_twin in src/cpu/neuron_update.rs).
fn pool_step_e(st: vec4<f32>, pl: PoolParams, x: f32, e_kd: f32, mg_free: f32, conc: f32) -> vec4<f32> {
    let a = pl.alpha_dt * x;
    let ab = a + pl.beta_dt;
    let e_gate = exp_f32(-ab);
    let g_gate = a * div_rn(1.0, ab) * one_minus_exp_neg_with(ab, e_gate);
    let c = 1.0 - st.x - st.y - st.z;
    let unblocked = c + st.x;
    let blocked = st.z + st.y;
    let o1 = st.x * e_gate + unblocked * g_gate;
    let b1 = st.y * e_gate + blocked * g_gate;
    let t1 = blocked - b1;
    let kb = pl.kon_dt * conc * mg_free;
    let ku = pl.kon_dt * pl.kd_ref_um * e_kd;
    let kk = kb + ku;
    let e_block = exp_f32(-kk);
    let g_block = kb * div_rn(1.0, kk) * one_minus_exp_neg_with(kk, e_block);
    let open_all = o1 + b1;
    let b2 = b1 * e_block + open_all * g_block;
    return vec4<f32>(open_all - b2, b2, t1, 0.0);
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

// Standard normal deviate from one random word (twin of rng::normal_f32): Giles'
// single-precision erfinv of 2u - 1, u = (k + 1/2) / 2^23 from the top 23 bits.
fn normal_f32(x: u32) -> f32 {
    let u = (f32(x >> 9u) + 0.5) * (1.0 / 8388608.0);
    let t = 2.0 * u - 1.0;
    var w = -ln_f32(4.0 * u * (1.0 - u));
    var p: f32;
    if (w < 5.0) {
        w = w - 2.5;
        p = horner9(ERFINV_CENTRAL, w);
    } else {
        w = exp_f32(0.5 * ln_f32(w)) - 3.0;
        p = horner9(ERFINV_TAIL, w);
    }
    return SQRT_2 * (p * t);
}

// Whether a projection draws a weight or delay per synapse.
fn has_random_synapses(pr: ProjParams) -> bool {
    return pr.w_sd_fixed > 0.0 || pr.d_sd_steps > 0.0;
}

// Fixed-point weight (x) and delay in steps (y) of synapse `id` of presynaptic neuron
// `pre_local` (twin of model::connectivity::synapse_draw): normal draws keyed by
// (pre_local, id) on the projection's STREAM_SYN stream, attempt a on stream + a; a
// weight whose sign differs from the mean's and a delay below one step are redrawn
// (NEST's `redraw`), at most SYN_REDRAWS attempts (then 0 and 1 step).
fn synapse_draw(pr: ProjParams, pre_local: u32, id: u32) -> vec2<u32> {
    var w = pr.weight_fixed;
    var d = pr.delay_steps;
    var w_done = pr.w_sd_fixed <= 0.0;
    var d_done = pr.d_sd_steps <= 0.0;
    if (!w_done) {
        w = 0;
    }
    if (!d_done) {
        d = 1u;
    }
    let stream = (pr.stream & 0x0fffffffu) | STREAM_SYN;
    for (var a = 0u; a < SYN_REDRAWS; a++) {
        if (w_done && d_done) {
            break;
        }
        let r = threefry2x32(vec2<u32>(pre_local, id), proj_key(pr, stream + a));
        if (!w_done) {
            let x = floor(pr.w_mean_fixed + pr.w_sd_fixed * normal_f32(r.x) + 0.5);
            if ((pr.w_mean_fixed >= 0.0 && x >= 0.0) || (pr.w_mean_fixed < 0.0 && x <= 0.0)) {
                w = i32(x);
                w_done = true;
            }
        }
        if (!d_done) {
            let x = floor(pr.d_mean_steps + pr.d_sd_steps * normal_f32(r.y) + 0.5);
            if (x >= 1.0) {
                d = min(u32(x), sim.ring_slots - 1u);
                d_done = true;
            }
        }
    }
    return vec2<u32>(bitcast<u32>(w), d);
}

// A non-negative quantity in fixed point (LSB 1/scale), rounded once; negative values
// give 0 and values beyond u32 saturate. Twin: rng::fixed_u32.
fn fixed_u32(x: f32, scale: f32) -> u32 {
    return u32(min(max(x * scale, 0.0), FIXED_U32_MAX) + 0.5);
}
