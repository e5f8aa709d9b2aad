//! WGSL sources: a header generated from the Rust constants (so nothing is typed
//! twice), then `shaders/common.wgsl`, then one kernel file.

use crate::model::connectivity::has_random_synapses;
use crate::model::layout::{
    ParamsBlock, RULE_OUTDEGREE, RULE_PROBABILITY, RULE_TABLE, RULE_TOTAL, SIG_SCALE, SLOW_SCALE,
    SLOW_SIGNAL, SLOW_STATE, SLOW_SUMS_PER_POP,
};
use crate::model::limits::*;
use crate::model::MG_SLOPE_PER_MV;
use crate::rng;

/// Shared definitions included by every kernel.
pub const COMMON: &str = include_str!("../../shaders/common.wgsl");

/// One compute kernel: its file stem and WGSL body.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    /// File stem in `shaders/`.
    pub name: &'static str,
    /// WGSL text of the kernel file.
    pub body: &'static str,
}

/// Neuron update (`shaders/neuron_update.wgsl`).
pub const NEURON_UPDATE: Kernel = Kernel {
    name: "neuron_update",
    body: include_str!("../../shaders/neuron_update.wgsl"),
};
/// Population sums on sample steps (`shaders/reduce_stats.wgsl`).
pub const REDUCE_STATS: Kernel = Kernel {
    name: "reduce_stats",
    body: include_str!("../../shaders/reduce_stats.wgsl"),
};
/// Spike propagation and the glutamate pools (`shaders/propagate.wgsl`).
pub const PROPAGATE: Kernel = Kernel {
    name: "propagate",
    body: include_str!("../../shaders/propagate.wgsl"),
};

/// AMPA-activation signal sums (`shaders/signal_sum.wgsl`), once per readout.
pub const SIGNAL_SUM: Kernel = Kernel {
    name: "signal_sum",
    body: include_str!("../../shaders/signal_sum.wgsl"),
};
/// Slow signalling state (`shaders/slow_update.wgsl`), once per readout.
pub const SLOW_UPDATE: Kernel = Kernel {
    name: "slow_update",
    body: include_str!("../../shaders/slow_update.wgsl"),
};

/// The memory-bandwidth probe (`shaders/stream.wgsl`; `crate::stream`): not part of
/// a simulation.
pub const STREAM: Kernel = Kernel {
    name: "stream",
    body: include_str!("../../shaders/stream.wgsl"),
};

/// The dispatch probe (`shaders/chain.wgsl`; `crate::stream::measure_dispatch`): not
/// part of a simulation.
pub const CHAIN: Kernel = Kernel {
    name: "chain",
    body: include_str!("../../shaders/chain.wgsl"),
};

/// The per-step kernels, in dispatch order.
pub const STEP_KERNELS: [Kernel; 3] = [NEURON_UPDATE, REDUCE_STATS, PROPAGATE];

/// Every kernel: the per-step ones, then the slow signalling ones.
pub const KERNELS: [Kernel; 5] = [
    NEURON_UPDATE,
    REDUCE_STATS,
    PROPAGATE,
    SIGNAL_SUM,
    SLOW_UPDATE,
];

// common.wgsl writes the polynomials' Horner steps out with constant indices (no
// indexed constant array in a kernel): they have these lengths, and the Poisson
// inversion's unrolled steps are 8.
const _: () = assert!(rng::LN_POLY.len() == 9 && rng::EXP_POLY.len() == 6);
const _: () = assert!(rng::ERFINV_CENTRAL.len() == 9 && rng::ERFINV_TAIL.len() == 9);
const _: () = assert!(rng::POISSON_UNROLLED == 8);

/// An f32 as an exact WGSL hexadecimal float literal (`0x1.8p-3f`).
pub fn hex_f32(x: f32) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0f".into()
        } else {
            "0.0f".into()
        };
    }
    let bits = x.to_bits();
    let sign = if bits >> 31 != 0 { "-" } else { "" };
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x007f_ffff;
    if exp == 0 {
        // Subnormal: 0x0.mmmmmm p-126.
        return format!("{sign}0x0.{:06x}p-126f", man << 1);
    }
    format!("{sign}0x1.{:06x}p{}f", man << 1, exp - 127)
}

fn f32_array(name: &str, values: &[f32]) -> String {
    let items: Vec<String> = values.iter().map(|v| hex_f32(*v)).collect();
    format!(
        "const {name} = array<f32, {}>({});\n",
        values.len(),
        items.join(", ")
    )
}

/// How `div_rn` (`shaders/common.wgsl`) divides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Division {
    /// The driver's own division, `a / b` (the plain WGSL path, which is not exact
    /// anyway: `src/gpu/strict.rs`).
    Native,
    /// Correctly rounded: the driver's quotient of the significands as an estimate,
    /// corrected and verified exactly with integer arithmetic, with the long division
    /// where the check fails. `offset` and `fallback` are for the tests that drive
    /// the corrections and the fallback as an out-of-bound driver would
    /// (`tests/kernel_twins.rs`).
    Estimated {
        /// Units added to the estimate (0 in every simulation).
        offset: i32,
        /// Whether a failed check falls back to the long division (in every
        /// simulation); without it the quotient is NaN, so a test sees the
        /// corrected estimate alone.
        fallback: bool,
    },
    /// Correctly rounded by the 24-step long division alone (`KETASIM_GPU_DIV=long`,
    /// to measure what the estimate saves).
    Long,
}

impl Division {
    /// The exact division every strict kernel uses unless asked otherwise.
    pub const EXACT: Division = Division::Estimated {
        offset: 0,
        fallback: true,
    };
}

/// Environment variable choosing the strict kernels' exact division: `estimate`
/// (default, [`Division::EXACT`]) or `long` ([`Division::Long`]). Both give the same
/// bits; it is for measuring on a GPU.
pub const DIV_ENV: &str = "KETASIM_GPU_DIV";

/// The exact division [`DIV_ENV`] asks for ([`Division::EXACT`] when unset); an error
/// naming the variable for any other value.
pub fn division_from_env() -> crate::error::Result<Division> {
    match std::env::var_os(DIV_ENV) {
        None => Ok(Division::EXACT),
        Some(v) => match v.to_str().map(str::trim) {
            Some("estimate") => Ok(Division::EXACT),
            Some("long") => Ok(Division::Long),
            _ => Err(crate::error::Error::Capacity(format!(
                "environment variable {DIV_ENV}={v:?} is neither `estimate` nor `long`: give one of them, or unset it"
            ))),
        },
    }
}

/// The code paths of the kernels that a network can take, from its parameters. A
/// simulation's kernels are compiled with the paths it cannot take left out
/// (`HAS_*` and `NMDA_POOLS` in the generated header): a path the header switches off
/// is one that no population, projection or drive of the network selects, so the
/// kernels compute exactly what the full kernels would, bit for bit
/// (`tests/gpu_vs_cpu.rs` runs networks with every combination), while the driver
/// allocates registers only for what remains. The parameters never change after a
/// network is built (the drug, the slow state and the step live in other buffers), so
/// the paths cannot change during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Features {
    /// Some population has conductance-based synapses (`syn_current == 0`).
    pub conductance: bool,
    /// Some population has current-based synapses (`syn_current != 0`).
    pub current: bool,
    /// The most NMDA receptor pools of any population (0 to `MAX_NMDA_POOLS`).
    pub nmda_pools: u32,
    /// Some population has a Poisson drive.
    pub drives: bool,
    /// Some projection or drive targets the NMDA channel (receptor 2), so its ring
    /// buffer can hold input; without one it stays zero and is neither read nor
    /// cleared.
    pub nmda_input: bool,
    /// Some population has slow signalling state (`sig_on`).
    pub signalling: bool,
    /// Some population releases glutamate into a pool (`glu_on`).
    pub glutamate: bool,
    /// Some population records its spikes.
    pub record: bool,
    /// Projections by rule: probability, fixed out-degree, table, fixed total number.
    pub rules: [bool; 4],
    /// Some projection draws its weights or delays per synapse
    /// (`connectivity::has_random_synapses`).
    pub drawn_synapses: bool,
}

impl Features {
    /// Every path: the kernels as written, whatever the network.
    pub const ALL: Features = Features {
        conductance: true,
        current: true,
        nmda_pools: MAX_NMDA_POOLS as u32,
        drives: true,
        nmda_input: true,
        signalling: true,
        glutamate: true,
        record: true,
        rules: [true; 4],
        drawn_synapses: true,
    };

    /// The paths the populations, projections and drives of `params` can take (its
    /// first `sim.n_pop` populations and `sim.n_proj` projections, the ones uploaded).
    pub fn of(params: &ParamsBlock) -> Features {
        let pops = &params.pops[..params.sim.n_pop as usize];
        let projs = &params.projs[..params.sim.n_proj as usize];
        let rule = |r: u32| projs.iter().any(|p| p.rule == r);
        let nmda = crate::scenario::Receptor::Nmda.index();
        Features {
            conductance: pops.iter().any(|p| p.syn_current == 0),
            current: pops.iter().any(|p| p.syn_current != 0),
            nmda_pools: pops
                .iter()
                .map(|p| p.n_pools.min(MAX_NMDA_POOLS as u32))
                .max()
                .unwrap_or(0),
            drives: pops.iter().any(|p| p.n_drives > 0),
            nmda_input: projs.iter().any(|p| p.receptor == nmda)
                || params.drives.iter().any(|d| d.receptor == nmda),
            signalling: pops.iter().any(|p| p.sig_on != 0),
            glutamate: pops.iter().any(|p| p.glu_on != 0),
            record: pops.iter().any(|p| p.record_spikes != 0),
            rules: [
                rule(RULE_PROBABILITY),
                rule(RULE_OUTDEGREE),
                rule(RULE_TABLE),
                rule(RULE_TOTAL),
            ],
            drawn_synapses: projs.iter().any(has_random_synapses),
        }
    }

    /// The header's `HAS_*` and `NMDA_POOLS` constants.
    fn header(&self) -> String {
        let mut h = format!("const NMDA_POOLS: u32 = {}u;\n", self.nmda_pools);
        for (name, on) in [
            ("HAS_COND", self.conductance),
            ("HAS_CURRENT", self.current),
            ("HAS_DRIVES", self.drives),
            ("HAS_NMDA_INPUT", self.nmda_input),
            ("HAS_SIG", self.signalling),
            ("HAS_GLU", self.glutamate),
            ("HAS_RECORD", self.record),
            ("HAS_RULE_PROBABILITY", self.rules[0]),
            ("HAS_RULE_OUTDEGREE", self.rules[1]),
            ("HAS_RULE_TABLE", self.rules[2]),
            ("HAS_RULE_TOTAL", self.rules[3]),
            ("HAS_DRAWN", self.drawn_synapses),
        ] {
            h.push_str(&format!("const {name}: bool = {on};\n"));
        }
        h
    }
}

/// How a simulation's kernels are compiled, besides the division ([`Division`], which
/// the translation path decides): the code paths, the per-neuron kernels' workgroup
/// size, and where the neuron update keeps its population's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelConfig {
    /// Threads per workgroup of the per-neuron kernels (`WG_SIZE`).
    pub wg_size: u32,
    /// The code paths compiled in (`HAS_*`, `NMDA_POOLS`).
    pub features: Features,
    /// Whether the neuron update reads its population's parameters again in every
    /// step of a chunk (`REREAD_PARAMS`) rather than holding them, read once, in
    /// registers across the chunk's steps. Held, every word a step uses stays live
    /// through the whole loop: AMD's compiler gave the `pfc_ketamine` update 84
    /// vector registers held and 48 re-read, so more threads fit a GPU's register
    /// file (`scripts/shader-stats.sh`); on llvmpipe the two ran equally fast
    /// (docs/performance.md). `GpuContext::hold_params` holds them. No result
    /// depends on it.
    pub reread_params: bool,
}

impl KernelConfig {
    /// Every code path, the default workgroup size, parameters re-read per step (a
    /// GPU's default).
    pub const DEFAULT: KernelConfig = KernelConfig {
        wg_size: WORKGROUP_SIZE,
        features: Features::ALL,
        reread_params: true,
    };
}

/// The generated header: every constant that Rust and WGSL share, with `div_rn`
/// exact ([`Division::EXACT`]), as the strict SPIR-V path runs it, and
/// [`KernelConfig::DEFAULT`].
pub fn header() -> String {
    header_for(Division::EXACT, &KernelConfig::DEFAULT)
}

/// The generated header: `division` says how `div_rn` (common.wgsl) divides
/// (`EXACT_DIV`, `LONG_DIV`, `DIV_ESTIMATE_OFFSET`, `DIV_FALLBACK`;
/// [`Division::Native`] on the plain WGSL path, `src/gpu/strict.rs`); `config` the
/// workgroup size (`WG_SIZE`), the code paths compiled in and `REREAD_PARAMS`.
pub fn header_for(division: Division, config: &KernelConfig) -> String {
    let wg_size = config.wg_size;
    let mut h =
        String::from("// Generated by src/gpu/shaders.rs from the Rust constants. Do not edit.\n");
    h.push_str(&config.features.header());
    h.push_str(&format!(
        "const REREAD_PARAMS: bool = {};\n",
        config.reread_params
    ));
    let (exact, long, offset, fallback) = match division {
        Division::Native => (false, false, 0, true),
        Division::Estimated { offset, fallback } => (true, false, offset, fallback),
        Division::Long => (true, true, 0, true),
    };
    h.push_str(&format!("const EXACT_DIV: bool = {exact};\n"));
    h.push_str(&format!("const LONG_DIV: bool = {long};\n"));
    h.push_str(&format!("const DIV_FALLBACK: bool = {fallback};\n"));
    h.push_str(&format!(
        "const DIV_ESTIMATE_OFFSET: u32 = {}u;\n",
        offset as u32
    ));
    for (name, v) in [
        ("MAX_NMDA_POOLS", MAX_NMDA_POOLS as u32),
        ("WG_SIZE", wg_size),
        ("REDUCE_WG_SIZE", REDUCE_WORKGROUP_SIZE),
        ("PROC_SPLIT", PROC_SPLIT),
        ("MAX_WG_DIM", MAX_WORKGROUPS_PER_DIM),
        ("STATS_PER_POP", STATS_PER_POP as u32),
        ("SAMPLE_ENTRIES_PER_POP", SAMPLE_ENTRIES_PER_POP as u32),
        ("CLIP_ENTRY", CLIP_ENTRY as u32),
        ("NO_SPIKE", NO_SPIKE),
        ("RULE_PROBABILITY", RULE_PROBABILITY),
        ("RULE_OUTDEGREE", RULE_OUTDEGREE),
        ("RULE_TABLE", RULE_TABLE),
        ("RULE_TOTAL", RULE_TOTAL),
        ("STREAM_INIT", rng::STREAM_INIT),
        ("STREAM_POISSON", rng::STREAM_POISSON),
        ("STREAM_CONN", rng::STREAM_CONN),
        ("STREAM_SYN", rng::STREAM_SYN),
        ("KS_PARITY", rng::KS_PARITY),
        ("POISSON_MAX_K", rng::POISSON_MAX_K),
        ("POISSON_UNROLLED", rng::POISSON_UNROLLED),
        ("SLOW_SUMS_PER_POP", SLOW_SUMS_PER_POP as u32),
        ("SLOW_SIGNAL", SLOW_SIGNAL as u32),
        ("SLOW_STATE", SLOW_STATE as u32),
        ("SYN_REDRAWS", SYN_REDRAWS),
        ("UNSTABLE_WORDS_PER_POP", UNSTABLE_WORDS_PER_POP),
    ] {
        h.push_str(&format!("const {name}: u32 = {v}u;\n"));
    }
    for (name, v) in [
        ("LN_SQRT_HALF", rng::LN_SQRT_HALF),
        ("LN2_HI", rng::LN2_HI),
        ("LN2_LO", rng::LN2_LO),
        ("EXP_MIN", rng::EXP_MIN),
        ("EXP_MAX", rng::EXP_MAX),
        ("LOG2_E", std::f32::consts::LOG2_E),
        ("MG_SLOPE", MG_SLOPE_PER_MV),
        ("STAT_CLAMP", STAT_CLAMP),
        ("GLU_SCALE", crate::model::layout::GLU_SCALE),
        ("KD_REF_MV", crate::model::ketamine::KD_REF_MV),
        ("EXPM1_SERIES_MAX", rng::EXPM1_SERIES_MAX),
        ("FIXED_U32_MAX", rng::FIXED_U32_MAX),
        ("SIG_SCALE", SIG_SCALE),
        ("SLOW_SCALE", SLOW_SCALE),
        ("SQRT_2", std::f32::consts::SQRT_2),
        ("MAX_EULER_STEP_FACTOR", MAX_EULER_STEP_FACTOR),
    ] {
        h.push_str(&format!("const {name}: f32 = {};\n", hex_f32(v)));
    }
    h.push_str(&f32_array("LN_POLY", &rng::LN_POLY));
    h.push_str(&f32_array("EXP_POLY", &rng::EXP_POLY));
    h.push_str(&f32_array("STAT_SCALES", &STAT_SCALES));
    h.push_str(&f32_array("ERFINV_CENTRAL", &rng::ERFINV_CENTRAL));
    h.push_str(&f32_array("ERFINV_TAIL", &rng::ERFINV_TAIL));
    h.push_str(&f32_array("POISSON_RECIPS", &rng::poisson_recips()));
    h
}

/// Complete WGSL source of a kernel, with exact division and
/// [`KernelConfig::DEFAULT`] (see [`header`]).
pub fn source(kernel: &Kernel) -> String {
    source_for(kernel, Division::EXACT, &KernelConfig::DEFAULT)
}

/// Complete WGSL source of a kernel; `division` and `config` as in [`header_for`].
pub fn source_for(kernel: &Kernel, division: Division, config: &KernelConfig) -> String {
    format!(
        "{}\n{}\n{}",
        header_for(division, config),
        COMMON,
        kernel.body
    )
}

#[cfg(test)]
mod tests {
    use super::hex_f32;

    #[test]
    fn hex_floats_are_exact() {
        assert_eq!(hex_f32(1.0), "0x1.000000p0f");
        assert_eq!(hex_f32(-0.5), "-0x1.000000p-1f");
        assert_eq!(hex_f32(1.5), "0x1.000000p0f".replace("000000", "800000"));
        assert_eq!(hex_f32(0.0), "0.0f");
    }
}
