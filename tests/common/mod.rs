//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ketasim::gpu::GpuContext;

/// A GPU context, or `None` after a loud notice when no adapter exists. With
/// `KETASIM_REQUIRE_GPU=1` (set by `.ci/run`) a missing adapter fails the test.
///
/// The notice is written straight to the process's stderr, past the test harness's
/// output capture, so a skip is always visible.
pub fn gpu_or_skip(test: &str) -> Option<GpuContext> {
    match GpuContext::new() {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            if std::env::var("KETASIM_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("{test}: KETASIM_REQUIRE_GPU=1 but no GPU adapter: {e}");
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED GPU TEST {test}: no GPU adapter ({e}). Install mesa-vulkan-drivers, or set KETASIM_REQUIRE_GPU=1 to make this a failure. ***\n"
            );
            None
        }
    }
}

/// A fresh folder under the system temp dir, removed on drop (the process id keeps
/// test binaries that run at once apart).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ketasim-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run the `ketasim` binary with `args`.
pub fn ketasim<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ketasim"))
        .args(args)
        .output()
        .expect("cannot start the ketasim binary")
}

/// Everything the process printed, for assertion messages.
pub fn report(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A file's text, or a panic naming it.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A small network that exercises every path of the kernels: two populations with
/// AMPA, GABA_A and NMDA (2B pool in E, 2D in I), Poisson drive on every receptor,
/// fixed-probability (procedural), fixed-out-degree (procedural, no autapses),
/// fixed-in-degree (table), fixed total number (procedural) and a procedural rule
/// stored as a table, delays of 1 to 7
/// steps, spikes recorded everywhere, two NMDA subunit pools in E, ketamine, and
/// glutamate release with short-term depression from E.
pub const MIXED: &str = r#"
name = "mixed"
dt_ms = 0.1
duration_ms = 30.0
seed = 7

[[populations]]
name = "E"
size = 240
[populations.neuron]
c_pF = 200.0
g_l_nS = 10.0
e_l_mV = -60.0
v_th_mV = -50.0
v_reset_mV = -60.0
t_ref_ms = 2.0
e_gaba_mV = -80.0
tau_ampa_ms = 5.0
tau_gaba_ms = 10.0
[populations.nmda]
g_max_nS = 8.0
pools = [{ subunit = "2A", fraction = 0.4 }, { subunit = "2B", fraction = 0.6 }]
[populations.glutamate]
release_probability = 0.4
tau_recovery_ms = 300.0
release_sites = 5.0
initial_um = 0.5
[populations.init]
v_mean_mV = -58.0
v_sd_mV = 4.0
g_ampa_mean_nS = 5.0
g_ampa_sd_nS = 2.0

[[populations]]
name = "I"
size = 70
[populations.neuron]
c_pF = 200.0
g_l_nS = 20.0
t_ref_ms = 1.0
e_l_mV = -65.0
v_reset_mV = -60.0
[populations.nmda]
subunit = "2D"
g_max_nS = 4.0
[populations.init]
v_mean_mV = -55.0
v_sd_mV = 3.0

[[projections]]
pre = "E"
post = "E"
receptor = "ampa"
rule = "fixed_probability"
p = 0.1
weight_nS = 3.0
delay_ms = 0.1

[[projections]]
pre = "E"
post = "E"
receptor = "nmda"
rule = "fixed_outdegree"
k = 20
drive = 0.05
delay_ms = 0.7
autapses = false

[[projections]]
pre = "E"
post = "I"
receptor = "ampa"
rule = "fixed_indegree"
k = 25
weight_nS = 2.0
delay_ms = 0.3

[[projections]]
pre = "I"
post = "E"
receptor = "gaba_a"
rule = "fixed_probability"
p = 0.3
weight_nS = 10.0
delay_ms = 0.2
storage = "table"

[[projections]]
pre = "I"
post = "I"
receptor = "gaba_a"
rule = "fixed_probability"
p = 0.2
weight_nS = 5.0
delay_ms = 0.15
autapses = false

[[projections]]
pre = "E"
post = "I"
receptor = "ampa"
rule = "fixed_total_number"
n = 1500
weight_nS = 0.5
delay_ms = 0.4

[[drives]]
population = "E"
rate_hz = 2000.0
receptor = "ampa"
weight_nS = 1.5

[[drives]]
population = "E"
rate_hz = 300.0
receptor = "nmda"
drive = 0.02

[[drives]]
population = "I"
rate_hz = 1500.0
receptor = "ampa"
weight_nS = 2.0

[[drives]]
population = "I"
rate_hz = 200.0
receptor = "gaba_a"
weight_nS = 1.0

[record]
spikes = ["E", "I"]
sample_interval_ms = 0.5
rate_bin_ms = 1.0

[drug]
conc_um = 0.8
"#;

/// `MIXED` with E's NMDA conductance raised from 8 to 50,000 nS: as E's receptors
/// open, the forward-Euler step factor `dt g_total / C` passes
/// `MAX_EULER_STEP_FACTOR` through the NMDA term, first at step 54 (2.58). At 20,000
/// nS E fires at 467 Hz but stays below the bound.
pub fn mixed_unstable() -> String {
    let nmda = "g_max_nS = 8.0";
    assert_eq!(MIXED.matches(nmda).count(), 1, "MIXED changed");
    MIXED.replace(nmda, "g_max_nS = 50000.0")
}

/// `MIXED` with E's initial AMPA conductance raised from 5 to 2,000 nS: a stable step
/// (dt g / C = 1.0) whose AMPA current, about 2,000 nS x 60 mV = 120,000 pA, is past
/// the sampler's limit of 65,536 pA per neuron until the conductance has decayed
/// below about 1,100 nS (3 ms at tau 5 ms); I's quantities stay inside it.
#[allow(dead_code)]
pub fn mixed_clipped() -> String {
    let g = "g_ampa_mean_nS = 5.0";
    assert_eq!(MIXED.matches(g).count(), 1, "MIXED changed");
    MIXED.replace(g, "g_ampa_mean_nS = 2000.0")
}

/// Bit of the AMPA current (`STAT_SCALES` order) in a sample's clip mask.
#[allow(dead_code)]
pub const CLIP_I_AMPA: u32 = 1 << 6;

/// The embedded Potjans-Diesmann microcircuit scaled to `n` neurons (in-degrees
/// kept), as TOML text.
#[allow(dead_code)]
pub fn microcircuit_small(n: u64) -> String {
    let src = ketasim::scenario::Source::locate(Some("microcircuit")).expect("embedded");
    let s = ketasim::scenario::Scenario::load(&src, &[]).expect("valid");
    let s = ketasim::bench::scale_scenario(&s, n).expect("scales");
    toml::to_string(&s).expect("serialises")
}
