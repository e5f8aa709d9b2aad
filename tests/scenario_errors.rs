//! Scenario validation errors, table-driven: a small valid scenario, one mutation per
//! case, and the error must name the file, the offending field and (where the message
//! says what is allowed) a fragment of that. Then `--set` overrides through
//! `Scenario::load`.

use ketasim::scenario::{apply_override, Scenario, Source};

/// File name every case is loaded under; each error must carry it.
const FILE: &str = "case.toml";

/// A valid scenario that touches every table. The `# @...` comments are anchors for
/// the mutations below (an edit applies to the first match after its anchor).
const BASE: &str = r#"# @top
name = "case"
dt_ms = 0.1
duration_ms = 10.0
seed = 3
synapse_decay = "exact"

[[populations]] # @popE
name = "E"
size = 8
[populations.neuron] # @neuronE
c_pF = 200.0
g_l_nS = 10.0
v_th_mV = -50.0
v_reset_mV = -60.0
t_ref_ms = 2.0
tau_ampa_ms = 5.0
[populations.nmda] # @nmdaE
subunit = "2B"
g_max_nS = 1.0
[populations.init] # @initE
v_mean_mV = -58.0
v_sd_mV = 2.0

[[populations]] # @popI
name = "I"
size = 4
[populations.neuron] # @neuronI
c_pF = 150.0

[[projections]] # @projAmpa
pre = "E"
post = "I"
receptor = "ampa"
rule = "fixed_probability"
p = 0.5
weight_nS = 1.0
delay_ms = 0.1

[[projections]] # @projNmda
pre = "E"
post = "E"
receptor = "nmda"
rule = "fixed_outdegree"
k = 3
drive = 0.1
delay_ms = 0.5
autapses = false

[[projections]] # @projGaba
pre = "I"
post = "E"
receptor = "gaba_a"
rule = "fixed_indegree"
k = 2
weight_nS = 2.0
delay_ms = 0.2
storage = "table"

[[drives]] # @driveE
population = "E"
rate_hz = 1000.0
receptor = "ampa"
weight_nS = 0.5

[record] # @record
spikes = ["E"]
rate_bin_ms = 1.0
sample_interval_ms = 0.5
"#;

/// Replace the first `from` after `anchor` in `text` by `to`.
fn edit(text: &str, anchor: &str, from: &str, to: &str) -> String {
    let a = text
        .find(anchor)
        .unwrap_or_else(|| panic!("anchor `{anchor}` not in the base scenario"));
    let rel = text[a..]
        .find(from)
        .unwrap_or_else(|| panic!("`{from}` not found after anchor `{anchor}`"));
    let at = a + rel;
    format!("{}{}{}", &text[..at], to, &text[at + from.len()..])
}

/// One mutation of [`BASE`] and what its error must contain.
struct Case {
    /// Short description, printed on failure.
    what: &'static str,
    /// Anchor comment (`@...`) the edit starts from.
    anchor: &'static str,
    /// Text replaced (first match after the anchor).
    from: &'static str,
    /// Replacement.
    to: &'static str,
    /// Fragments naming the field (and what is allowed); all must appear.
    expect: &'static [&'static str],
}

const fn case(
    what: &'static str,
    anchor: &'static str,
    from: &'static str,
    to: &'static str,
    expect: &'static [&'static str],
) -> Case {
    Case {
        what,
        anchor,
        from,
        to,
        expect,
    }
}

const CASES: &[Case] = &[
    // Unknown fields: serde names the key and lists the allowed ones.
    case(
        "unknown field at top level",
        "@top",
        "seed = 3",
        "seed = 3\ncolour = 1",
        &["unknown field `colour`", "dt_ms", "populations"],
    ),
    case(
        "unknown field in a population",
        "@popE",
        "size = 8",
        "size = 8\ncolour = \"red\"",
        &["unknown field `colour`", "size", "neuron"],
    ),
    case(
        "unknown field in a neuron table",
        "@neuronE",
        "c_pF = 200.0",
        "c_pF = 200.0\nv_rest_mV = -65.0",
        &["unknown field `v_rest_mV`", "v_reset_mV", "c_pF"],
    ),
    case(
        "unknown field in an nmda table",
        "@nmdaE",
        "g_max_nS = 1.0",
        "g_max_nS = 1.0\ntau_nS = 3.0",
        &["unknown field `tau_nS`", "g_max_nS", "subunit"],
    ),
    case(
        "unknown field in an init table",
        "@initE",
        "v_sd_mV = 2.0",
        "v_sd_mV = 2.0\nv_max_mV = 0.0",
        &["unknown field `v_max_mV`", "v_mean_mV"],
    ),
    case(
        "unknown field in a projection",
        "@projAmpa",
        "weight_nS = 1.0",
        "weight = 1.0",
        &["unknown field `weight`", "weight_nS", "delay_ms"],
    ),
    case(
        "unknown field in a drive",
        "@driveE",
        "rate_hz = 1000.0",
        "rate = 1000.0",
        &["unknown field `rate`", "rate_hz"],
    ),
    case(
        "unknown field in record",
        "@record",
        "spikes = [\"E\"]",
        "spike = [\"E\"]",
        &["unknown field `spike`", "spikes", "rate_bin_ms"],
    ),
    // Missing required fields.
    case(
        "dt_ms missing",
        "@top",
        "dt_ms = 0.1\n",
        "",
        &["missing field `dt_ms`"],
    ),
    case(
        "delay_ms missing",
        "@projAmpa",
        "delay_ms = 0.1\n",
        "",
        &["missing field `delay_ms`"],
    ),
    // Wrong types.
    case(
        "string for an integer (size)",
        "@popE",
        "size = 8",
        "size = \"eight\"",
        &["size", "invalid type", "string"],
    ),
    case(
        "float for an integer (size)",
        "@popE",
        "size = 8",
        "size = 8.5",
        &["size", "invalid type"],
    ),
    case(
        "string for a number (dt_ms)",
        "@top",
        "dt_ms = 0.1",
        "dt_ms = \"0.1\"",
        &["dt_ms", "invalid type", "string"],
    ),
    case(
        "string for a number (weight_nS)",
        "@projAmpa",
        "weight_nS = 1.0",
        "weight_nS = \"strong\"",
        &["weight_nS", "invalid type"],
    ),
    case(
        "string for a bool (autapses)",
        "@projNmda",
        "autapses = false",
        "autapses = \"no\"",
        &["autapses", "invalid type"],
    ),
    case(
        "negative seed",
        "@top",
        "seed = 3",
        "seed = -1",
        &["seed", "u64"],
    ),
    // Populations.
    case(
        "negative population size",
        "@popE",
        "size = 8",
        "size = -3",
        &["populations[0] (\"E\").size", ">= 1", "-3"],
    ),
    case(
        "zero population size",
        "@popI",
        "size = 4",
        "size = 0",
        &["populations[1] (\"I\").size", ">= 1"],
    ),
    case(
        "duplicate population names",
        "@popI",
        "name = \"I\"",
        "name = \"E\"",
        &["populations[1]", ".name", "`E`", "unique"],
    ),
    case(
        "empty population name",
        "@popE",
        "name = \"E\"",
        "name = \" \"",
        &["populations[0].name", "empty"],
    ),
    case(
        "zero capacitance",
        "@neuronE",
        "c_pF = 200.0",
        "c_pF = 0.0",
        &["neuron.c_pF", "> 0"],
    ),
    case(
        "negative leak conductance",
        "@neuronE",
        "g_l_nS = 10.0",
        "g_l_nS = -1.0",
        &["neuron.g_l_nS", ">= 0"],
    ),
    case(
        "a leak too fast for the forward-Euler step",
        "@neuronE",
        "g_l_nS = 10.0",
        "g_l_nS = 30000.0",
        &["neuron.g_l_nS", "tau_m", "dt_ms <= tau_m / 10"],
    ),
    case(
        "v_reset equal to v_th",
        "@neuronE",
        "v_reset_mV = -60.0",
        "v_reset_mV = -50.0",
        &["neuron.v_reset_mV", "below v_th_mV"],
    ),
    case(
        "v_reset above v_th",
        "@neuronE",
        "v_reset_mV = -60.0",
        "v_reset_mV = -40.0",
        &["neuron.v_reset_mV", "below v_th_mV"],
    ),
    case(
        "non-finite threshold",
        "@neuronE",
        "v_th_mV = -50.0",
        "v_th_mV = nan",
        &["neuron.v_th_mV", "finite"],
    ),
    case(
        "negative refractory period",
        "@neuronE",
        "t_ref_ms = 2.0",
        "t_ref_ms = -1.0",
        &["neuron.t_ref_ms", ">= 0"],
    ),
    case(
        "zero AMPA time constant",
        "@neuronE",
        "tau_ampa_ms = 5.0",
        "tau_ampa_ms = 0.0",
        &["neuron.tau_ampa_ms", "> 0"],
    ),
    case(
        "unknown subunit",
        "@nmdaE",
        "subunit = \"2B\"",
        "subunit = \"2E\"",
        &["subunit", "`2E`", "`2A`", "`2B`", "`2C`", "`2D`"],
    ),
    case(
        "nmda table without g_max_nS",
        "@nmdaE",
        "g_max_nS = 1.0",
        "mg_mM = 1.0",
        &["missing field `g_max_nS`"],
    ),
    case(
        "NMDA pool fractions not summing to 1",
        "@nmdaE",
        "g_max_nS = 1.0",
        "g_max_nS = 1.0\npools = [{ subunit = \"2A\", fraction = 0.5 }, { subunit = \"2B\", fraction = 0.4 }]",
        &["nmda.pools", "sum to 1", "0.9"],
    ),
    case(
        "too many NMDA pools",
        "@nmdaE",
        "g_max_nS = 1.0",
        "g_max_nS = 1.0\npools = [{ subunit = \"2A\", fraction = 0.5 }, { subunit = \"2B\", fraction = 0.25 }, { subunit = \"2D\", fraction = 0.25 }]",
        &["nmda.pools", "at most 2"],
    ),
    case(
        "NMDA pool fraction out of range",
        "@nmdaE",
        "g_max_nS = 1.0",
        "g_max_nS = 1.0\npools = [{ subunit = \"2A\", fraction = 1.5 }]",
        &["nmda.pools[0].fraction", "[0, 1]"],
    ),
    case(
        "unknown field in an NMDA pool",
        "@nmdaE",
        "g_max_nS = 1.0",
        "g_max_nS = 1.0\npools = [{ subunit = \"2A\", fraction = 1.0, kd = 3 }]",
        &["unknown field `kd`", "ketamine_kd_um"],
    ),
    case(
        "negative drug concentration",
        "@top",
        "seed = 3",
        "seed = 3\ndrug = { conc_um = -1.0 }",
        &["drug.conc_um", "0..=1000"],
    ),
    case(
        "negative init sd",
        "@initE",
        "v_sd_mV = 2.0",
        "v_sd_mV = -2.0",
        &["init.v_sd_mV", ">= 0"],
    ),
    // Time.
    case(
        "dt_ms zero",
        "@top",
        "dt_ms = 0.1",
        "dt_ms = 0.0",
        &["dt_ms", "> 0"],
    ),
    case(
        "dt_ms negative",
        "@top",
        "dt_ms = 0.1",
        "dt_ms = -0.1",
        &["dt_ms", "> 0"],
    ),
    case(
        "duration shorter than one step",
        "@top",
        "duration_ms = 10.0",
        "duration_ms = 0.05",
        &["duration_ms", "at least one step"],
    ),
    case(
        "zero duration",
        "@top",
        "duration_ms = 10.0",
        "duration_ms = 0.0",
        &["duration_ms", "missing or 0", "> 0"],
    ),
    case(
        "seed too large",
        "@top",
        "seed = 3",
        "seed = 1152921504606846976",
        &["seed", "below 2^60"],
    ),
    case(
        "unknown synapse_decay",
        "@top",
        "synapse_decay = \"exact\"",
        "synapse_decay = \"rk4\"",
        &["synapse_decay", "`rk4`", "`exact`", "`euler`"],
    ),
    // Projections.
    case(
        "delay shorter than dt",
        "@projAmpa",
        "delay_ms = 0.1",
        "delay_ms = 0.05",
        &["projections[0] (E -> I).delay_ms", "at least one time step"],
    ),
    case(
        "delay longer than the ring buffer",
        "@projAmpa",
        "delay_ms = 0.1",
        "delay_ms = 500.0",
        &["projections[0] (E -> I).delay_ms", "4096"],
    ),
    case(
        "missing pre population",
        "@projAmpa",
        "pre = \"E\"",
        "pre = \"X\"",
        &["projections[0] (X -> I).pre", "`X`", "E, I"],
    ),
    case(
        "missing post population",
        "@projAmpa",
        "post = \"I\"",
        "post = \"X\"",
        &["projections[0] (E -> X).post", "`X`", "E, I"],
    ),
    case(
        "p zero",
        "@projAmpa",
        "p = 0.5",
        "p = 0.0",
        &["projections[0] (E -> I).p:", "(0, 1]"],
    ),
    case(
        "p above one",
        "@projAmpa",
        "p = 0.5",
        "p = 1.5",
        &["projections[0] (E -> I).p:", "(0, 1]"],
    ),
    case(
        "p negative",
        "@projAmpa",
        "p = 0.5",
        "p = -0.1",
        &["projections[0] (E -> I).p:", "(0, 1]"],
    ),
    case(
        "p not a number",
        "@projAmpa",
        "p = 0.5",
        "p = nan",
        &["projections[0] (E -> I).p:", "(0, 1]"],
    ),
    case(
        "p missing for fixed_probability",
        "@projAmpa",
        "p = 0.5\n",
        "",
        &["projections[0] (E -> I).p:", "missing", "(0, 1]"],
    ),
    case(
        "k given for fixed_probability",
        "@projAmpa",
        "p = 0.5",
        "p = 0.5\nk = 4",
        &["projections[0] (E -> I).k:", "takes `p`"],
    ),
    case(
        "p given for fixed_outdegree",
        "@projNmda",
        "k = 3",
        "k = 3\np = 0.1",
        &["projections[1] (E -> E).p:", "takes `k`"],
    ),
    case(
        "k missing for fixed_outdegree",
        "@projNmda",
        "k = 3\n",
        "",
        &["projections[1] (E -> E).k:", "missing"],
    ),
    case(
        "k missing for fixed_indegree",
        "@projGaba",
        "k = 2\n",
        "",
        &["projections[2] (I -> E).k:", "missing"],
    ),
    case(
        "k zero",
        "@projNmda",
        "k = 3",
        "k = 0",
        &["projections[1] (E -> E).k:", ">= 1"],
    ),
    case(
        "n missing for fixed_total_number",
        "@projNmda",
        "rule = \"fixed_outdegree\"\nk = 3",
        "rule = \"fixed_total_number\"",
        &["projections[1] (E -> E).n:", "missing", "total number of synapses"],
    ),
    case(
        "k given for fixed_total_number",
        "@projNmda",
        "rule = \"fixed_outdegree\"",
        "rule = \"fixed_total_number\"\nn = 20",
        &["projections[1] (E -> E).k:", "takes `n`"],
    ),
    case(
        "n zero for fixed_total_number",
        "@projNmda",
        "rule = \"fixed_outdegree\"\nk = 3",
        "rule = \"fixed_total_number\"\nn = 0",
        &["projections[1] (E -> E).n:", "1..="],
    ),
    case(
        "n given for fixed_outdegree",
        "@projNmda",
        "k = 3",
        "k = 3\nn = 10",
        &["projections[1] (E -> E).n:", "takes `k`"],
    ),
    case(
        "n given for fixed_probability",
        "@projAmpa",
        "p = 0.5",
        "p = 0.5\nn = 10",
        &["projections[0] (E -> I).n:", "takes `p`"],
    ),
    case(
        "NMDA projection onto a population without an nmda table",
        "@projNmda",
        "post = \"E\"",
        "post = \"I\"",
        &["projections[1] (E -> I).receptor", "[populations.nmda]"],
    ),
    case(
        "weight_nS on an NMDA projection",
        "@projNmda",
        "drive = 0.1",
        "drive = 0.1\nweight_nS = 1.0",
        &["projections[1] (E -> E).weight_nS", "`drive`"],
    ),
    case(
        "drive missing on an NMDA projection",
        "@projNmda",
        "drive = 0.1\n",
        "",
        &["projections[1] (E -> E).drive", "missing", ">= 0"],
    ),
    case(
        "drive on an AMPA projection",
        "@projAmpa",
        "weight_nS = 1.0",
        "weight_nS = 1.0\ndrive = 0.2",
        &["projections[0] (E -> I).drive", "only NMDA", "`weight_nS`"],
    ),
    case(
        "weight_nS missing on a GABA_A projection",
        "@projGaba",
        "weight_nS = 2.0\n",
        "",
        &["projections[2] (I -> E).weight_nS", "missing", ">= 0"],
    ),
    case(
        "negative weight",
        "@projGaba",
        "weight_nS = 2.0",
        "weight_nS = -2.0",
        &["projections[2] (I -> E).weight_nS", ">= 0"],
    ),
    case(
        "negative NMDA drive",
        "@projNmda",
        "drive = 0.1",
        "drive = -0.1",
        &["projections[1] (E -> E).drive", ">= 0"],
    ),
    case(
        "unknown receptor",
        "@projAmpa",
        "receptor = \"ampa\"",
        "receptor = \"glycine\"",
        &["receptor", "`glycine`", "`ampa`", "`gaba_a`", "`nmda`"],
    ),
    case(
        "unknown rule",
        "@projAmpa",
        "rule = \"fixed_probability\"",
        "rule = \"random\"",
        &[
            "rule",
            "`random`",
            "`fixed_probability`",
            "`fixed_outdegree`",
            "`fixed_indegree`",
        ],
    ),
    case(
        "unknown storage",
        "@projGaba",
        "storage = \"table\"",
        "storage = \"sparse\"",
        &["storage", "`sparse`", "`auto`", "`procedural`", "`table`"],
    ),
    case(
        "fixed_indegree with procedural storage",
        "@projGaba",
        "storage = \"table\"",
        "storage = \"procedural\"",
        &["projections[2] (I -> E).storage", "\"table\"", "\"auto\""],
    ),
    // Drives.
    case(
        "drive onto a missing population",
        "@driveE",
        "population = \"E\"",
        "population = \"X\"",
        &["drives[0] (X).population", "`X`"],
    ),
    case(
        "negative drive rate",
        "@driveE",
        "rate_hz = 1000.0",
        "rate_hz = -5.0",
        &["drives[0] (E).rate_hz", ">= 0"],
    ),
    case(
        "Poisson drive too fast for dt",
        "@driveE",
        "rate_hz = 1000.0",
        "rate_hz = 300000.0",
        &["drives[0] (E).rate_hz", "at most 20"],
    ),
    case(
        "drive with `drive` on AMPA",
        "@driveE",
        "weight_nS = 0.5",
        "drive = 0.5",
        &["drives[0] (E).drive", "only NMDA"],
    ),
    case(
        "NMDA drive onto a population without an nmda table",
        "@driveE",
        "population = \"E\"\nrate_hz = 1000.0\nreceptor = \"ampa\"\nweight_nS = 0.5",
        "population = \"I\"\nrate_hz = 1000.0\nreceptor = \"nmda\"\ndrive = 0.5",
        &["drives[0] (I).receptor", "[populations.nmda]"],
    ),
    // Recording.
    case(
        "record.spikes naming a missing population",
        "@record",
        "spikes = [\"E\"]",
        "spikes = [\"E\", \"X\"]",
        &["record.spikes", "`X`"],
    ),
    case(
        "rate bin shorter than dt",
        "@record",
        "rate_bin_ms = 1.0",
        "rate_bin_ms = 0.01",
        &["record.rate_bin_ms", "at least dt_ms"],
    ),
    case(
        "sample interval zero",
        "@record",
        "sample_interval_ms = 0.5",
        "sample_interval_ms = 0.0",
        &["record.sample_interval_ms", "> 0"],
    ),
    case(
        "max_spikes_per_batch zero",
        "@record",
        "rate_bin_ms = 1.0",
        "rate_bin_ms = 1.0\nmax_spikes_per_batch = 0",
        &["record.max_spikes_per_batch", "1..="],
    ),
    // Protocol (multiscale mode).
    case(
        "multiscale without a dosing protocol",
        "@record",
        "sample_interval_ms = 0.5",
        "sample_interval_ms = 0.5\n[protocol]\nmode = \"multiscale\"\nwindow_times_min = [0.0]",
        &["protocol.mode", "[pharmacokinetics]"],
    ),
    case(
        "multiscale without windows",
        "@record",
        "sample_interval_ms = 0.5",
        "sample_interval_ms = 0.5\n[pharmacokinetics]\nconc_table = [[0.0, 1.0]]\n[protocol]\nmode = \"multiscale\"",
        &["protocol.window_times_min", "at least one"],
    ),
    case(
        "overlapping multiscale windows",
        "@record",
        "sample_interval_ms = 0.5",
        "sample_interval_ms = 0.5\n[pharmacokinetics]\nconc_table = [[0.0, 1.0]]\n[protocol]\nmode = \"multiscale\"\nwindow_times_min = [0.0, 0.01]",
        &["protocol.window_times_min", "overlaps", "space them"],
    ),
    case(
        "first multiscale window after the first dose",
        "@record",
        "sample_interval_ms = 0.5",
        "sample_interval_ms = 0.5\n[pharmacokinetics]\nspecies = \"human\"\ndoses = [{ time_min = 0, route = \"iv-bolus\", dose_mg_per_kg = 0.5 }]\n[protocol]\nmode = \"multiscale\"\nwindow_times_min = [1.0]",
        &["protocol.window_times_min", "before the first dose"],
    ),
    case(
        "multiscale with a contradicting duration_ms",
        "@record",
        "sample_interval_ms = 0.5",
        "sample_interval_ms = 0.5\n[pharmacokinetics]\nconc_table = [[0.0, 1.0]]\n[protocol]\nmode = \"multiscale\"\nwindow_times_min = [0.0]",
        &["duration_ms", "follows from [protocol]"],
    ),
    case(
        "a dose whose effect-site peak is beyond any experiment",
        "@record",
        "sample_interval_ms = 0.5",
        "sample_interval_ms = 0.5\n[pharmacokinetics]\nspecies = \"human\"\ndoses = [{ time_min = 0, route = \"iv-bolus\", dose_mg_per_kg = 1e300 }]",
        &["pharmacokinetics.doses", "1000 µM", "lower dose_mg_per_kg"],
    ),
    case(
        "a concentration table beyond any experiment",
        "@record",
        "sample_interval_ms = 0.5",
        "sample_interval_ms = 0.5\n[pharmacokinetics]\nconc_table = [[0.0, 1.0], [1.0, 5000.0]]",
        &["pharmacokinetics.conc_table[1][1] (conc_um)", "at most 1000 µM"],
    ),
    case(
        "negative settle",
        "@record",
        "sample_interval_ms = 0.5",
        "sample_interval_ms = 0.5\n[pharmacokinetics]\nconc_table = [[0.0, 1.0]]\n[protocol]\nmode = \"multiscale\"\nwindow_times_min = [0.0]\nsettle_ms = -1.0",
        &["protocol.settle_ms", ">= 0"],
    ),
    case(
        "missing duration_ms",
        "@top",
        "duration_ms = 10.0\n",
        "",
        &["duration_ms", "missing"],
    ),
];

/// Known gaps: cases whose message does not name the field yet. Empty: every case
/// above passes as written. (Add `what` strings here only with a report.)
const KNOWN_GAPS: &[&str] = &[];

#[test]
fn base_scenario_is_valid() {
    let s = Scenario::from_toml(FILE, BASE).unwrap_or_else(|e| panic!("base scenario: {e}"));
    assert_eq!(s.populations.len(), 2);
    assert_eq!(s.projections.len(), 3);
    assert_eq!(s.drives.len(), 1);
}

#[test]
fn every_mutation_is_rejected_naming_file_and_field() {
    let mut failures = Vec::new();
    for c in CASES {
        let text = edit(BASE, c.anchor, c.from, c.to);
        let msg = match Scenario::from_toml(FILE, &text) {
            Ok(_) => {
                failures.push(format!("[{}] was accepted\n--- text ---\n{text}", c.what));
                continue;
            }
            Err(e) => e.to_string(),
        };
        let mut missing: Vec<&str> = c
            .expect
            .iter()
            .copied()
            .filter(|f| !msg.contains(f))
            .collect();
        if !msg.contains(FILE) {
            missing.push(FILE);
        }
        if msg.contains("panicked") {
            missing.push("<no panic>");
        }
        let gap = KNOWN_GAPS.contains(&c.what);
        if missing.is_empty() && gap {
            failures.push(format!("[{}] is listed as a known gap but passes", c.what));
        } else if !missing.is_empty() && !gap {
            failures.push(format!(
                "[{}] message lacks {missing:?}\n--- actual error ---\n{msg}",
                c.what
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn scenario_without_populations_is_rejected() {
    for (text, expect) in [
        (
            "dt_ms = 0.1\nduration_ms = 1.0\npopulations = []\n",
            "populations: at least one",
        ),
        (
            "dt_ms = 0.1\nduration_ms = 1.0\n",
            "missing field `populations`",
        ),
    ] {
        let e = Scenario::from_toml(FILE, text)
            .map(|_| ())
            .expect_err("no populations must be rejected")
            .to_string();
        assert!(
            e.contains(FILE) && e.contains(expect),
            "expected {expect:?}: {e}"
        );
    }
}

#[test]
fn unknown_embedded_name_or_missing_file_is_named() {
    let e = Source::locate(Some("no/such/scenario.toml"))
        .expect_err("missing file must be an error")
        .to_string();
    assert!(e.contains("no/such/scenario.toml"), "{e}");
    assert!(e.contains("coba"), "should list the embedded names: {e}");
}

fn source() -> Source {
    Source {
        file: FILE.to_string(),
        text: BASE.to_string(),
    }
}

fn load(overrides: &[&str]) -> Result<Scenario, String> {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Scenario::load(&source(), &o).map_err(|e| e.to_string())
}

#[test]
fn valid_overrides_change_values() {
    let s = load(&[
        "populations.E.size=20",
        "populations.1.size=6",
        "projections.0.p=0.25",
        "drives.E.rate_hz=500",
        "dt_ms=0.05",
        "seed=99",
        "record.spikes=[\"E\", \"I\"]",
        "populations.E.neuron.v_th_mV=-48.5",
        "populations.E.nmda.subunit=2A",
    ])
    .unwrap_or_else(|e| panic!("valid overrides rejected: {e}"));
    assert_eq!(s.populations[0].size, 20);
    assert_eq!(s.populations[1].size, 6);
    assert_eq!(s.projections[0].p, Some(0.25));
    assert_eq!(s.drives[0].rate_hz, 500.0);
    assert_eq!(s.dt_ms, 0.05);
    assert_eq!(s.seed, 99);
    assert_eq!(s.record.spikes, ["E", "I"]);
    assert_eq!(s.populations[0].neuron.v_th_mV, -48.5);
    assert_eq!(
        s.populations[0].nmda.as_ref().map(|m| m.subunit.label()),
        Some("2A")
    );
    // Untouched fields keep their values.
    assert_eq!(s.duration_ms, 10.0);
    assert_eq!(s.projections[1].k, Some(3));
}

#[test]
fn later_override_wins() {
    let s =
        load(&["populations.E.size=20", "populations.E.size=30"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.populations[0].size, 30);
}

#[test]
fn apply_override_edits_the_table() {
    let mut t: toml::Table = toml::from_str(BASE).expect("base parses");
    apply_override(&mut t, "projections.2.k=7").unwrap_or_else(|e| panic!("{e}"));
    apply_override(&mut t, "populations.I.neuron.c_pF=120").unwrap_or_else(|e| panic!("{e}"));
    let s: Scenario = toml::Value::Table(t)
        .try_into()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.projections[2].k, Some(7));
    assert_eq!(s.populations[1].neuron.c_pF, 120.0);
}

/// (override, fragments the error must contain besides the file name).
const BAD_VALUE_OVERRIDES: &[(&str, &[&str])] = &[
    (
        "populations.E.size=-3",
        &["populations[0] (\"E\").size", ">= 1"],
    ),
    (
        "populations.I.size=0",
        &["populations[1] (\"I\").size", ">= 1"],
    ),
    ("dt_ms=0", &["dt_ms", "> 0"]),
    ("duration_ms=0.01", &["duration_ms", "at least one step"]),
    (
        "projections.0.p=2",
        &["projections[0] (E -> I).p:", "(0, 1]"],
    ),
    (
        "projections.0.delay_ms=0.01",
        &["delay_ms", "at least one time step"],
    ),
    (
        "projections.2.storage=procedural",
        &["storage", "\"table\""],
    ),
    ("drives.E.rate_hz=1e6", &["rate_hz", "at most 20"]),
    ("record.spikes=[\"Q\"]", &["record.spikes", "`Q`"]),
    ("seed=1152921504606846976", &["seed", "below 2^60"]),
    (
        "populations.E.neuron.v_reset_mV=-40",
        &["v_reset_mV", "below v_th_mV"],
    ),
    // Values serde rejects after the overrides.
    (
        "populations.E.colour=1",
        &["unknown field `colour`", "after the --set overrides"],
    ),
    (
        "projections.0.receptor=glycine",
        &["`glycine`", "`ampa`", "`nmda`"],
    ),
    ("populations.E.nmda.subunit=2E", &["`2E`", "`2A`", "`2D`"]),
];

#[test]
fn overrides_with_bad_values_are_rejected_naming_the_field() {
    let mut failures = Vec::new();
    for (o, expect) in BAD_VALUE_OVERRIDES {
        match load(&[o]) {
            Ok(_) => failures.push(format!("--set {o}: accepted")),
            Err(msg) => {
                let mut missing: Vec<&str> = expect
                    .iter()
                    .copied()
                    .filter(|f| !msg.contains(f))
                    .collect();
                if !msg.contains(FILE) {
                    missing.push(FILE);
                }
                if !missing.is_empty() {
                    failures.push(format!(
                        "--set {o}: message lacks {missing:?}\n  actual: {msg}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Wrong types through `--set`: the error must still name the field.
#[test]
fn overrides_with_wrong_types_name_the_field() {
    let mut failures = Vec::new();
    for (o, field) in [
        ("populations.E.size=ten", "size"),
        ("dt_ms=fast", "dt_ms"),
        ("projections.1.autapses=maybe", "autapses"),
    ] {
        match load(&[o]) {
            Ok(_) => failures.push(format!("--set {o}: accepted")),
            Err(msg) => {
                if !(msg.contains(FILE) && msg.contains(field) && msg.contains("invalid type")) {
                    failures.push(format!(
                        "--set {o}: message lacks {FILE:?}, {field:?} or \"invalid type\"\n  actual: {msg}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Paths that do not exist or cannot be set.
const BAD_PATH_OVERRIDES: &[(&str, &[&str])] = &[
    ("populations.X.size=3", &["populations.X.size", "`X`"]),
    ("projections.9.p=0.1", &["projections.9.p", "`9`"]),
    ("drives.I.rate_hz=10", &["drives.I.rate_hz", "`I`"]),
    ("dt_ms.x=1", &["dt_ms.x", "`dt_ms` is a value"]),
    ("populations.E=3", &["populations.E", "name a field"]),
    ("populations..size=3", &["empty segment"]),
    ("nosign", &["PATH=VALUE"]),
];

#[test]
fn overrides_with_bad_paths_are_rejected_naming_the_path() {
    let mut failures = Vec::new();
    for (o, expect) in BAD_PATH_OVERRIDES {
        match load(&[o]) {
            Ok(_) => failures.push(format!("--set {o}: accepted")),
            Err(msg) => {
                let missing: Vec<&str> = expect
                    .iter()
                    .copied()
                    .filter(|f| !msg.contains(f))
                    .collect();
                if !missing.is_empty() {
                    failures.push(format!(
                        "--set {o}: message lacks {missing:?}\n  actual: {msg}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A path into a table that does not exist yet is created, then rejected by the
/// unknown-field check with the new key named.
#[test]
fn override_of_an_unknown_top_level_table_is_rejected() {
    let e = load(&["stimulus.rate_hz=5"]).expect_err("unknown table must be rejected");
    assert!(e.contains(FILE) && e.contains("stimulus"), "{e}");
}

/// Every complete scenario (a ```toml block with `dt_ms`) in `docs/scenario.md` is
/// valid, so the reference cannot drift from the parser.
#[test]
fn docs_examples_are_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/scenario.md");
    let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut checked = 0;
    for block in doc.split("```toml\n").skip(1) {
        let text = block.split("```").next().unwrap_or("");
        if !text.contains("dt_ms") {
            continue;
        }
        Scenario::from_toml("docs/scenario.md", text)
            .unwrap_or_else(|e| panic!("example in docs/scenario.md: {e}\n{text}"));
        checked += 1;
    }
    assert!(checked >= 1, "no complete example found in {path}");
}

/// A valid scenario with current-based synapses (the microcircuit's kind), for the
/// keys that come with them.
const CURRENT_BASE: &str = r#"# @top
dt_ms = 0.1
duration_ms = 10.0

[[populations]] # @popE
name = "E"
size = 8
synapse = "current"
[populations.neuron] # @neuronE
c_pF = 250.0
g_l_nS = 25.0
tau_syn_ex_ms = 0.5
tau_syn_in_ms = 0.5

[[populations]] # @popC
name = "C"
size = 4

[[projections]] # @projE
pre = "E"
post = "E"
rule = "fixed_outdegree"
k = 3
weight_pA = 87.8
weight_sd_pA = 8.78
delay_ms = 1.5
delay_sd_ms = 0.75

[[projections]] # @projC
pre = "E"
post = "C"
receptor = "ampa"
rule = "fixed_outdegree"
k = 2
weight_nS = 1.0
delay_ms = 0.5
delay_sd_ms = 0.2

[[drives]] # @driveE
population = "E"
rate_hz = 1000.0
weight_pA = -50.0
"#;

const CURRENT_CASES: &[Case] = &[
    case(
        "unknown synapse kind",
        "@popE",
        "synapse = \"current\"",
        "synapse = \"currents\"",
        &["synapse", "conductance", "current"],
    ),
    case(
        "receptor on a current-based target",
        "@projE",
        "rule =",
        "receptor = \"ampa\"\nrule =",
        &["projections[0] (E -> E).receptor", "sign of weight_pA"],
    ),
    case(
        "weight_nS on a current-based target",
        "@projE",
        "weight_pA = 87.8",
        "weight_nS = 87.8",
        &["projections[0] (E -> E).weight_nS", "give weight_pA"],
    ),
    case(
        "missing weight_pA",
        "@projE",
        "weight_pA = 87.8\n",
        "",
        &["projections[0] (E -> E).weight_pA", "missing"],
    ),
    case(
        "weight_pA on a conductance-based target",
        "@projC",
        "weight_nS = 1.0",
        "weight_pA = 1.0",
        &[
            "projections[1] (E -> C).weight_pA",
            "conductance-based",
            "synapse = \"current\"",
        ],
    ),
    case(
        "weight_sd_pA on a conductance-based target",
        "@projC",
        "delay_ms = 0.5",
        "delay_ms = 0.5\nweight_sd_pA = 1.0",
        &["projections[1] (E -> C).weight_sd_pA", "current-based"],
    ),
    case(
        "missing receptor on a conductance-based target",
        "@projC",
        "receptor = \"ampa\"\n",
        "",
        &["projections[1] (E -> C).receptor", "missing", "gaba_a"],
    ),
    case(
        "negative weight_sd_pA",
        "@projE",
        "weight_sd_pA = 8.78",
        "weight_sd_pA = -1.0",
        &["projections[0] (E -> E).weight_sd_pA", ">= 0"],
    ),
    case(
        "negative delay_sd_ms",
        "@projE",
        "delay_sd_ms = 0.75",
        "delay_sd_ms = -0.5",
        &["projections[0] (E -> E).delay_sd_ms", ">= 0"],
    ),
    case(
        "delay_sd_ms beyond the longest delay",
        "@projE",
        "delay_sd_ms = 0.75",
        "delay_sd_ms = 100.0",
        &["projections[0] (E -> E).delay_sd_ms", "at most 4096 steps"],
    ),
    case(
        "tau_syn_ex_ms on a conductance-based population",
        "@popC",
        "size = 4",
        "size = 4\n[populations.neuron]\ntau_syn_ex_ms = 0.5",
        &[
            "populations[1] (\"C\").neuron.tau_syn_ex_ms",
            "synapse = \"current\"",
        ],
    ),
    case(
        "non-positive tau_syn_in_ms",
        "@neuronE",
        "tau_syn_in_ms = 0.5",
        "tau_syn_in_ms = 0.0",
        &["populations[0] (\"E\").neuron.tau_syn_in_ms"],
    ),
    case(
        "current-based population without leak",
        "@neuronE",
        "g_l_nS = 25.0",
        "g_l_nS = 0.0",
        &["populations[0] (\"E\").neuron.g_l_nS", "tau_m"],
    ),
    case(
        "NMDA on a current-based population",
        "@neuronE",
        "tau_syn_in_ms = 0.5",
        "tau_syn_in_ms = 0.5\n[populations.nmda]\ng_max_nS = 1.0",
        &["populations[0] (\"E\").nmda", "no NMDA receptors"],
    ),
    case(
        "initial conductance on a current-based population",
        "@neuronE",
        "tau_syn_in_ms = 0.5",
        "tau_syn_in_ms = 0.5\n[populations.init]\ng_ampa_mean_nS = 1.0",
        &[
            "populations[0] (\"E\").init.g_ampa_mean_nS",
            "zero synaptic currents",
        ],
    ),
    case(
        "receptor on a drive of a current-based population",
        "@driveE",
        "weight_pA = -50.0",
        "weight_pA = -50.0\nreceptor = \"gaba_a\"",
        &["drives[0] (E).receptor", "remove receptor"],
    ),
    case(
        "weight_nS on a drive of a current-based population",
        "@driveE",
        "weight_pA = -50.0",
        "weight_nS = 50.0",
        &["drives[0] (E).weight_nS", "give weight_pA"],
    ),
    case(
        "infinite weight_pA",
        "@driveE",
        "weight_pA = -50.0",
        "weight_pA = -inf",
        &["drives[0] (E).weight_pA"],
    ),
];

#[test]
fn current_based_base_scenario_is_valid() {
    let s = Scenario::from_toml(FILE, CURRENT_BASE).unwrap_or_else(|e| panic!("{e}"));
    let net = ketasim::model::Network::build(&s, 10).expect("builds");
    assert_eq!(net.pops()[0].syn_current, 1);
    assert_eq!(net.pops()[1].syn_current, 0);
    // The drive's negative weight selects the inhibitory current.
    assert_eq!(net.params.drives[0].receptor, 1);
}

#[test]
fn current_based_mutations_are_rejected_naming_file_and_field() {
    let mut failures = Vec::new();
    for c in CURRENT_CASES {
        let text = edit(CURRENT_BASE, c.anchor, c.from, c.to);
        match Scenario::from_toml(FILE, &text) {
            Ok(_) => failures.push(format!("[{}] was accepted\n--- text ---\n{text}", c.what)),
            Err(e) => {
                let msg = e.to_string();
                let missing: Vec<&str> = c
                    .expect
                    .iter()
                    .copied()
                    .chain([FILE])
                    .filter(|f| !msg.contains(f))
                    .collect();
                if !missing.is_empty() {
                    failures.push(format!("[{}] message lacks {missing:?}: {msg}", c.what));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `[signalling]` and `[interventions]`: bad values through `--set` on the embedded
/// stress scenarios (and `coba` for blockers without signalling) name the field and
/// the fix.
#[test]
fn signalling_and_intervention_errors_name_the_field() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "stress_ketamine",
            &["signalling.populations=[\"X\"]"],
            &["signalling.populations", "`X`"],
        ),
        (
            "stress_ketamine",
            &["signalling.populations=[]"],
            &["signalling.populations", "at least one"],
        ),
        (
            "stress_ketamine",
            &["signalling.populations=[\"E\",\"E\"]"],
            &["signalling.populations", "twice"],
        ),
        (
            "stress_ketamine",
            &["signalling.hill_n=0"],
            &["signalling.hill_n", "1 to 8"],
        ),
        (
            "stress_ketamine",
            &["signalling.tau_bdnf_min=-1.0"],
            &["signalling.tau_bdnf_min", "> 0"],
        ),
        (
            "stress_ketamine",
            &["signalling.stress_density=0.0"],
            &["signalling.stress_density", "> 0"],
        ),
        (
            "stress_ketamine",
            &["signalling.step_s=600.0"],
            &["signalling.step_s", "fifth"],
        ),
        (
            "stress_ketamine",
            &["signalling.max_density=0.5"],
            &["signalling.max_density", "set point"],
        ),
        (
            "stress_ketamine",
            &["signalling.baseline=\"depressed\""],
            &["baseline", "healthy", "chronic_stress"],
        ),
        (
            "stress_ketamine",
            &["signalling.colour=1"],
            &["unknown field `colour`"],
        ),
        (
            "stress_ketamine",
            &["interventions.mtor_block=1.5"],
            &["interventions.mtor_block", "[0, 1]"],
        ),
        (
            "stress_ketamine",
            &["interventions.ampa_block=-0.1"],
            &["interventions.ampa_block", "[0, 1]"],
        ),
        (
            "stress_ketamine",
            &["interventions.bdnf_block=\"all\""],
            &["bdnf_block", "invalid type"],
        ),
        (
            "stress_ketamine",
            &["interventions.time_min=-20.0"],
            &["interventions.time_min", "baseline"],
        ),
        (
            "stress_ketamine",
            &["protocol.mode=\"continuous\"", "duration_ms=4000.0"],
            &["signalling", "baseline", "drug starts at 0 min"],
        ),
        (
            "stress_ketamine",
            &["protocol.window_times_min=[-10]"],
            &["signalling", "two readouts"],
        ),
        (
            "coba",
            &["interventions.mtor_block=1.0"],
            &["interventions", "[signalling]"],
        ),
        (
            "microcircuit",
            &["interventions.ampa_block=0.5"],
            &["interventions.ampa_block", "current-based"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, sets, expect) in cases {
        let src = Source::locate(Some(name)).expect("embedded scenario");
        let v: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        match Scenario::load(&src, &v) {
            Ok(_) => failures.push(format!("{name} --set {sets:?}: accepted")),
            Err(e) => {
                let msg = e.to_string();
                let missing: Vec<&str> = expect
                    .iter()
                    .copied()
                    .filter(|f| !msg.contains(f))
                    .collect();
                if !missing.is_empty() {
                    failures.push(format!(
                        "{name} --set {sets:?}: message lacks {missing:?}\n  actual: {msg}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // ampa_block alone works without [signalling], and each blocker is reachable by
    // --set on the stress scenario.
    let coba = Source::locate(Some("coba")).unwrap();
    Scenario::load(&coba, &["interventions.ampa_block=0.5".to_string()])
        .expect("ampa_block on coba");
    let sk = Source::locate(Some("stress_ketamine")).unwrap();
    for b in ["mtor_block", "ampa_block", "bdnf_block"] {
        let s = Scenario::load(&sk, &[format!("interventions.{b}=1.0")]).expect(b);
        assert!(s.interventions.any());
    }
}
