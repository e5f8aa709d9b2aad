//! The in-silico voltage clamp (`ketasim::clamp`) against the targets of SCIENCE.md
//! section 3: steady-state ketamine IC50 at -66 mV in 0 and 1 mM Mg2+ per GluN2
//! subunit (Kotermanski & Johnson 2009) with Hill slope about 1, use dependence, full
//! trapping, independence of dt, and the CLI function's output.

use clap::Parser;
use ketasim::clamp::{
    blocked, clamp_command, default_concentrations_um, fit_exponential, fit_hill, Clamp, ClampArgs,
    SATURATING_X,
};
use ketasim::model::ketamine::PoolState;
use ketasim::scenario::Subunit;
use serde_json::Value;

const SUBUNITS: [Subunit; 4] = [Subunit::N2A, Subunit::N2B, Subunit::N2C, Subunit::N2D];

fn clamp(s: Subunit, mg_mm: f64, dt_ms: f64) -> Clamp {
    Clamp::new(s, -66.0, mg_mm, dt_ms).expect("valid clamp")
}

/// Steady-state IC50 at -66 mV within a factor 1.5 of the Kotermanski & Johnson 2009
/// table, in 0 and in 1 mM Mg2+, for every subunit; Hill slope 0.8-1.2; and the fit
/// agrees with the scheme's closed form K_d(V) / B_Mg(V).
#[test]
fn ic50_and_hill_match_the_targets_per_subunit_and_mg() {
    let conc = default_concentrations_um();
    for s in SUBUNITS {
        let (t0, t1) = s.ketamine_ic50_target_um();
        for (mg, target) in [(0.0, t0), (1.0, t1)] {
            let c = clamp(s, mg, 0.1);
            let dr = c.dose_response(&conc).unwrap();
            let ic50 = dr.fit.ic50_um;
            let ratio = ic50 / target;
            eprintln!(
                "{} {mg} mM Mg: IC50 {ic50:.4} µM (target {target}, ratio {ratio:.3}, closed form {:.4}), Hill {:.4}, rms {:.1e}",
                s.label(),
                c.analytic_ic50_um(),
                dr.fit.hill,
                dr.fit.rms
            );
            assert!(
                (1.0 / 1.5..=1.5).contains(&ratio),
                "{} {mg} mM Mg2+: IC50 {ic50} µM vs target {target} µM",
                s.label()
            );
            assert!(
                (0.8..=1.2).contains(&dr.fit.hill),
                "{} {mg} mM Mg2+: Hill {}",
                s.label(),
                dr.fit.hill
            );
            let rel = (ic50 / c.analytic_ic50_um() - 1.0).abs();
            assert!(
                rel < 0.01,
                "{} {mg} mM: IC50 {ic50} vs closed form",
                s.label()
            );
            // Block grows with concentration.
            for w in dr.points.windows(2) {
                assert!(w[1].fraction >= w[0].fraction - 1e-6, "{:?}", w);
            }
        }
    }
}

/// 2C/2D are blocked more than 2A/2B at the same concentration in 1 mM Mg2+
/// (SCIENCE.md section 3: 2-5x lower IC50).
#[test]
fn glun2c_2d_are_blocked_more_in_physiological_mg() {
    let ic = |s| {
        clamp(s, 1.0, 0.1)
            .dose_response(&default_concentrations_um())
            .unwrap()
            .fit
            .ic50_um
    };
    let (a, b, c, d) = (
        ic(Subunit::N2A),
        ic(Subunit::N2B),
        ic(Subunit::N2C),
        ic(Subunit::N2D),
    );
    for x in [c, d] {
        for y in [a, b] {
            assert!(
                y / x > 1.5 && y / x < 6.0,
                "ratio {} ({a} {b} {c} {d})",
                y / x
            );
        }
    }
}

/// Use dependence, part 1: with no agonist (x = 0) no block develops from a drug-free
/// start (all channels closed) over seconds at 10 µM.
#[test]
fn no_block_without_agonist() {
    for s in SUBUNITS {
        for mg in [0.0, 1.0] {
            let c = clamp(s, mg, 0.1);
            let (end, trace) = c.record(PoolState::default(), 0.0, 10.0, 5_000.0);
            let worst = trace.blocked.iter().copied().fold(0.0, f64::max);
            assert!(
                worst == 0.0 && blocked(&end) == 0.0 && end.o == 0.0,
                "{} {mg} mM: block {worst} without agonist ({end:?})",
                s.label()
            );
            assert_eq!(c.initial_block_rate(0.0, 10.0, 1_000.0).unwrap(), 0.0);
        }
    }
}

/// Use dependence, part 2: the initial rate of block onset at 10 µM grows with the open
/// probability; over the first 0.5 ms it is P_open k_on [K] B_Mg within 5% (SCIENCE.md
/// section 3).
#[test]
fn block_onset_rate_grows_with_open_probability() {
    for s in SUBUNITS {
        for mg in [0.0, 1.0] {
            let c = clamp(s, mg, 0.1);
            let x_low = c.agonist_for_open_probability(0.1);
            let p_low = c.open_probability(x_low);
            let p_high = c.open_probability(SATURATING_X);
            let r_low = c.initial_block_rate(x_low, 10.0, 0.5).unwrap();
            let r_high = c.initial_block_rate(SATURATING_X, 10.0, 0.5).unwrap();
            let kon = ketasim::model::ketamine::KON_PER_UM_PER_MS;
            let expect_high = p_high * kon * 10.0 * c.mg_free_f64();
            eprintln!(
                "{} {mg} mM: P_open {p_low:.3} -> rate {r_low:.3e}/ms; P_open {p_high:.4} -> {r_high:.3e}/ms (expected ~{expect_high:.3e})",
                s.label()
            );
            assert!(r_low > 0.0 && r_high > 5.0 * r_low, "{r_low} vs {r_high}");
            let ratio = (r_high / r_low) / (p_high / p_low);
            assert!(
                (0.8..1.25).contains(&ratio),
                "rate ratio / P_open ratio = {ratio}"
            );
            assert!(
                (r_high / expect_high - 1.0).abs() < 0.05,
                "initial rate {r_high} vs P_open k_on [K] B_Mg {expect_high}"
            );
        }
    }
}

/// Onset and offset time constants agree with the reduced model
/// 1 / (P_open (k_on [K] B_Mg + k_off)) (gating is fast at saturating agonist), and
/// the offset is slower than the onset at the IC50.
#[test]
fn onset_and_offset_time_constants() {
    for s in SUBUNITS {
        for mg in [0.0, 1.0] {
            let c = clamp(s, mg, 0.1);
            let ic50 = c.analytic_ic50_um();
            let on = c.onset(ic50).unwrap();
            let off = c.offset(ic50).unwrap();
            eprintln!(
                "{} {mg} mM at {ic50:.3} µM: onset {:.1} ms (reduced {:.1}), offset {:.1} ms (reduced {:.1})",
                s.label(),
                on.tau_ms,
                on.reduced_tau_ms,
                off.tau_ms,
                off.reduced_tau_ms
            );
            assert!((on.tau_ms / on.reduced_tau_ms - 1.0).abs() < 0.03, "{on:?}");
            assert!(
                (off.tau_ms / off.reduced_tau_ms - 1.0).abs() < 0.03,
                "{off:?}"
            );
            assert!(off.tau_ms > 1.5 * on.tau_ms);
            assert!((on.block_end - 0.5).abs() < 0.01 && on.block_start.abs() < 1e-6);
            assert!(off.block_end.abs() < 1e-3 && (off.block_start - 0.5).abs() < 0.01);
        }
    }
}

/// Trapping: block to steady state in agonist + drug, agonist off (drug on) until the
/// channels close, drug washout without agonist: at least 90% of the block remains at
/// every moment until the agonist opens the channels again; then it goes away.
#[test]
fn block_is_trapped_until_the_channels_open_again() {
    for s in SUBUNITS {
        for mg in [0.0, 1.0] {
            let c = clamp(s, mg, 0.1);
            for conc in [c.analytic_ic50_um(), 10.0] {
                let tr = c.trapping(conc, c.default_close_ms(), 60_000.0).unwrap();
                eprintln!(
                    "{} {mg} mM {conc:.3} µM: B+T {:.4} steady, {:.4} pre-washout, {:.4} at re-application (trapped {:.4}, of steady {:.4}), recovery tau {:.1} ms",
                    s.label(),
                    tr.blocked_steady,
                    tr.blocked_pre_washout,
                    tr.blocked_at_reapply,
                    tr.trapped_fraction,
                    tr.trapped_of_steady,
                    tr.recovery_tau_ms
                );
                assert!(tr.open_pre_washout < 1e-3, "{tr:?}");
                assert!(tr.trapped_fraction >= 0.9, "{tr:?}");
                assert!(tr.trapped_of_steady >= 0.9, "{tr:?}");
                assert!(
                    tr.blocked_min_washout >= 0.9 * tr.blocked_pre_washout,
                    "{tr:?}"
                );
                // After re-application the block is lost with about 1/(P_open k_off).
                let expect = 1.0 / (c.open_probability(SATURATING_X) * c.koff_per_ms());
                assert!(
                    (tr.recovery_tau_ms / expect - 1.0).abs() < 0.05,
                    "recovery tau {} vs {expect}",
                    tr.recovery_tau_ms
                );
                assert!(tr.recovery_fit.y_inf.abs() < 1e-3);
            }
        }
    }
}

/// The same IC50 at dt 0.05 and 0.25 ms (within 2%), per subunit and Mg2+.
#[test]
fn ic50_does_not_depend_on_dt() {
    let conc = default_concentrations_um();
    for s in SUBUNITS {
        for mg in [0.0, 1.0] {
            let a = clamp(s, mg, 0.05).dose_response(&conc).unwrap().fit;
            let b = clamp(s, mg, 0.25).dose_response(&conc).unwrap().fit;
            let rel = (a.ic50_um / b.ic50_um - 1.0).abs();
            eprintln!(
                "{} {mg} mM: IC50 {:.5} (dt 0.05) vs {:.5} (dt 0.25), rel {rel:.2e}; Hill {:.4} vs {:.4}",
                s.label(),
                a.ic50_um,
                b.ic50_um,
                a.hill,
                b.hill
            );
            assert!(rel < 0.02, "{} {mg} mM: {a:?} vs {b:?}", s.label());
            assert!((a.hill - b.hill).abs() < 0.02);
        }
    }
}

/// The fits recover known parameters.
#[test]
fn fits_recover_known_parameters() {
    let conc = default_concentrations_um();
    let f: Vec<f64> = conc
        .iter()
        .map(|c| 1.0 / (1.0 + (2.5f64 / c).powf(0.7)))
        .collect();
    let h = fit_hill(&conc, &f).unwrap();
    assert!(
        (h.ic50_um / 2.5 - 1.0).abs() < 1e-6 && (h.hill - 0.7).abs() < 1e-6,
        "{h:?}"
    );
    let t: Vec<f64> = (0..3000).map(|i| i as f64 * 0.5).collect();
    let y: Vec<f64> = t.iter().map(|t| 0.2 + 0.6 * (-t / 123.0).exp()).collect();
    let e = fit_exponential(&t, &y).unwrap();
    assert!((e.tau_ms / 123.0 - 1.0).abs() < 1e-5, "{e:?}");
    assert!((e.y_inf - 0.2).abs() < 1e-6 && (e.amplitude - 0.6).abs() < 1e-6);
    assert!(fit_hill(&[1.0, 2.0], &[0.0, 1.0]).is_err());
}

/// Repeats of one concentration are one point, which any Hill slope fits: the fit is
/// refused rather than reporting an arbitrary IC50 and slope (`--conc-um 1,1,1` gave
/// IC50 4.867 µM, Hill 1.118 with rms 2e-15). A second distinct concentration is
/// enough.
#[test]
fn repeats_of_one_concentration_do_not_make_a_fit() {
    let block = |c: f64| 1.0 / (1.0 + 3.0 / c);
    let err = fit_hill(&[1.0, 1.0, 1.0], &[block(1.0); 3])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--conc-um") && err.contains("two distinct concentrations"),
        "{err}"
    );
    let h = fit_hill(&[1.0, 1.0, 9.0], &[block(1.0), block(1.0), block(9.0)]).unwrap();
    assert!(
        (h.ic50_um / 3.0 - 1.0).abs() < 1e-6 && (h.hill - 1.0).abs() < 1e-6,
        "{h:?}"
    );
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ClampArgs,
}

fn parse(args: &[&str]) -> Result<ClampArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("clamp").chain(args.iter().copied())).map(|c| c.args)
}

/// The CLI function's JSON has the documented keys and agrees with the library.
#[test]
fn cli_json_has_the_keys() {
    let args = parse(&[
        "--subunit",
        "2B",
        "--voltage-mv",
        "-66",
        "--mg-mm",
        "1",
        "--json",
    ])
    .unwrap();
    assert_eq!(args.dt_ms, 0.1);
    assert!(args.conc_um.is_empty());
    let out = clamp_command(&args).unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    for key in [
        "subunit",
        "voltage_mv",
        "mg_mm",
        "dt_ms",
        "ic50_um",
        "hill",
        "block",
        "onset_tau_ms",
        "offset_tau_ms",
        "trapped_fraction",
        "recovery_tau_ms",
        "target_ic50_um_0mg",
        "target_ic50_um_1mg",
        "analytic_ic50_um",
        "step_conc_um",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {out}");
    }
    assert_eq!(v["subunit"], "2B");
    assert_eq!(v["voltage_mv"], -66.0);
    assert_eq!(v["mg_mm"], 1.0);
    assert_eq!(v["target_ic50_um_0mg"], 0.31);
    assert_eq!(v["target_ic50_um_1mg"], 5.08);
    let block = v["block"].as_array().unwrap();
    assert_eq!(block.len(), default_concentrations_um().len());
    for p in block {
        assert!(p["conc_um"].is_f64() && p["fraction"].is_f64(), "{p}");
    }
    let ic50 = v["ic50_um"].as_f64().unwrap();
    assert!((ic50 / 5.08 - 1.0).abs() < 0.5);
    assert!(v["trapped_fraction"].as_f64().unwrap() >= 0.9);

    // Text output, a custom list.
    let args = parse(&[
        "--subunit",
        "2d",
        "--mg-mm",
        "0",
        "--conc-um",
        "0.1,1,10",
        "--dt-ms",
        "0.2",
    ])
    .unwrap();
    let text = clamp_command(&args).unwrap();
    assert!(text.contains("IC50") && text.contains("GluN2D"), "{text}");
    // Defaults, text.
    let text = clamp_command(&parse(&["--subunit", "2A"]).unwrap()).unwrap();
    eprintln!("{text}");
    assert!(
        text.contains("trapped fraction") && text.contains("-66 mV"),
        "{text}"
    );
}

/// Errors name the flag.
#[test]
fn cli_errors_name_the_flag() {
    let err = |a: &[&str]| {
        let args = parse(a).unwrap();
        format!("{:#}", clamp_command(&args).unwrap_err())
    };
    let e = err(&["--subunit", "2A", "--conc-um", "1,-3"]);
    assert!(e.contains("--conc-um"), "{e}");
    let e = err(&["--subunit", "2A", "--dt-ms", "2"]);
    assert!(e.contains("--dt-ms"), "{e}");
    let e = err(&["--subunit", "2A", "--dt-ms", "0.001"]);
    assert!(e.contains("--dt-ms"), "{e}");
    let e = err(&["--subunit", "2A", "--mg-mm", "-1"]);
    assert!(e.contains("--mg-mm"), "{e}");
    let e = err(&["--subunit", "2A", "--voltage-mv", "nan"]);
    assert!(e.contains("--voltage-mv"), "{e}");
    let e = err(&["--subunit", "2A", "--step-conc-um", "0"]);
    assert!(e.contains("--step-conc-um"), "{e}");
    let e = err(&["--subunit", "2A", "--washout-ms", "-5"]);
    assert!(e.contains("--washout-ms"), "{e}");
    let e = parse(&["--subunit", "2E"]).err().unwrap().to_string();
    assert!(e.contains("--subunit"), "{e}");
}
