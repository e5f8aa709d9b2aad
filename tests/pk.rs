//! Ketamine pharmacokinetics (`ketasim::pk`): the human targets of SCIENCE.md section
//! 4, exactness against closed forms, superposition, mass balance, the effect site,
//! the rodent presets, the concentration table, validation messages and `ketasim pk`.

use clap::Parser;
use ketasim::pk::{
    pk_command, Dose, PkArgs, PkParams, PkProfile, PkScenario, Route, Species, NG_PER_ML_PER_UM,
};

fn dose(time_min: f64, route: Route, mg: f64, infusion_min: Option<f64>) -> Dose {
    Dose {
        time_min,
        route,
        dose_mg_per_kg: mg,
        infusion_min,
    }
}

fn scenario(species: Species, doses: Vec<Dose>) -> PkScenario {
    PkScenario {
        species: Some(species),
        doses,
        ..PkScenario::default()
    }
}

fn profile(sc: &PkScenario) -> PkProfile {
    sc.profile().unwrap_or_else(|e| panic!("{e}"))
}

/// 0.5 mg/kg over 40 min, the antidepressant protocol (Zarate et al. 2006).
fn human_infusion() -> PkScenario {
    scenario(
        Species::Human,
        vec![dose(0.0, Route::IvInfusion, 0.5, Some(40.0))],
    )
}

fn close(got: f64, want: f64, rel: f64, what: &str) {
    let tol = rel * want.abs().max(1e-12);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (rel {:.3e})",
        (got - want).abs() / want.abs().max(1e-300)
    );
}

// --- Human targets -----------------------------------------------------------------

#[test]
fn human_infusion_peaks_at_the_end_of_the_infusion_near_185_ng_per_ml() {
    let p = profile(&human_infusion());
    let (t_peak, peak) = p.peak_plasma_ng_per_ml(0.0, 360.0).unwrap();
    println!("human 0.5 mg/kg / 40 min: peak {peak:.2} ng/mL at {t_peak:.3} min");
    // Target (SCIENCE.md, Zanos et al. 2018 Table 1): about 185 ng/mL at the end.
    assert!((150.0..=220.0).contains(&peak), "peak {peak} ng/mL");
    assert!((t_peak - 40.0).abs() <= 1.0, "t_peak {t_peak} min");
    // SCIENCE.md: "With these, 0.5 mg/kg over 40 min gives about 177 ng/mL at 40 min".
    close(peak, 177.536, 1e-4, "Clements peak");
    // Dissociative range 100-250 ng/mL (Zanos 2018).
    let at40 = p.plasma_ng_per_ml(40.0).unwrap();
    assert!((100.0..=250.0).contains(&at40));
    assert_eq!(p.plasma_ng_per_ml(-1.0), Some(0.0));
    assert_eq!(p.free_brain_conc_um(-1e-9), 0.0);
}

/// The terminal half-life, from the simulated curve's log-linear slope between 6 and
/// 12 h (the alpha phase is then about 1e-5 of the curve).
///
/// Decision recorded here (not a silent change): SCIENCE.md's target is "2-3 h" and its
/// cited source, Clements & Nimmo 1981, describes its own set as "elimination about 3
/// h". The set's exact terminal half-life is ln 2 / beta = 182.93 min = 3.049 h (beta
/// the smaller eigenvalue of the two-compartment system). We keep Clements' published
/// constants (their clearance, 19.1 mL/min/kg, agrees with the meta-analytic 18.8 of
/// Kamp et al. 2020; retuning k10 alone to reach 3.0 h would break the published set
/// to move 3 min), so this test asserts the exact value and a 2-3.1 h band.
#[test]
fn human_terminal_half_life_from_the_curve_is_clements_3_05_h() {
    let p = profile(&human_infusion());
    let (c6, c12) = (
        p.plasma_ng_per_ml(360.0).unwrap(),
        p.plasma_ng_per_ml(720.0).unwrap(),
    );
    let t_half = std::f64::consts::LN_2 * 360.0 / (c6 / c12).ln();
    let params = p.params().unwrap();
    println!(
        "terminal half-life: curve {:.3} min ({:.4} h), ln2/beta {:.3} min; distribution {:.3} min",
        t_half,
        t_half / 60.0,
        params.terminal_half_life_min(),
        params.distribution_half_life_min().unwrap()
    );
    close(
        t_half,
        params.terminal_half_life_min(),
        1e-4,
        "curve vs ln2/beta",
    );
    close(t_half, 182.93, 1e-4, "Clements terminal half-life");
    assert!((120.0..=186.0).contains(&t_half), "{t_half} min");
    // Distribution half-life, target about 10-20 min.
    let d = params.distribution_half_life_min().unwrap();
    assert!((10.0..=20.0).contains(&d), "{d}");
}

// --- Exactness ---------------------------------------------------------------------

#[test]
fn matches_closed_forms_for_bolus_absorption_infusion_and_two_compartments() {
    let ln2 = std::f64::consts::LN_2;
    // Rat i.v. bolus, one compartment, and its effect site.
    let rat = PkParams::preset(Species::Rat);
    let (v, k, ke0) = (rat.v1_l_per_kg, rat.k10_per_min, rat.ke0_per_min);
    close(k, ln2 / 40.0, 1e-15, "rat k10");
    let p = profile(&scenario(
        Species::Rat,
        vec![dose(0.0, Route::IvBolus, 10.0, None)],
    ));
    // i.p. with bioavailability 0.7: Bateman function.
    let mut ip = scenario(Species::Rat, vec![dose(0.0, Route::Ip, 10.0, None)]);
    ip.bioavailability_ip = Some(0.7);
    let pip = profile(&ip);
    let ka = rat.ka_ip_per_min.unwrap();
    // Mouse i.v. infusion 20 mg/kg over 30 min.
    let mouse = PkParams::preset(Species::Mouse);
    let (vm, km) = (mouse.v1_l_per_kg, mouse.k10_per_min);
    let pinf = profile(&scenario(
        Species::Mouse,
        vec![dose(0.0, Route::IvInfusion, 20.0, Some(30.0))],
    ));
    // Human bolus: bi-exponential.
    let hu = PkParams::preset(Species::Human);
    let (alpha, beta) = hu.disposition_rates_per_min();
    let ph = profile(&scenario(
        Species::Human,
        vec![dose(0.0, Route::IvBolus, 1.0, None)],
    ));
    for t in [
        0.0, 0.01, 0.5, 1.0, 3.3, 10.0, 29.9, 30.0, 45.0, 120.0, 400.0,
    ] {
        let c = 1000.0 * 10.0 / v * (-k * t).exp();
        close(p.plasma_ng_per_ml(t).unwrap(), c, 1e-10, "rat bolus");
        let ce = 1000.0 * 10.0 / v * ke0 / (ke0 - k) * ((-k * t).exp() - (-ke0 * t).exp());
        let free = rat.free_fraction * ce / NG_PER_ML_PER_UM;
        if t > 0.0 {
            close(p.free_brain_conc_um(t), free, 1e-9, "rat effect site");
        } else {
            assert_eq!(p.free_brain_conc_um(t), 0.0);
        }
        let cip = 1000.0 * 0.7 * 10.0 / v * ka / (ka - k) * ((-k * t).exp() - (-ka * t).exp());
        if t > 0.0 {
            close(
                pip.plasma_ng_per_ml(t).unwrap(),
                cip,
                1e-9,
                "rat ip Bateman",
            );
        }
        let r = 20.0 / 30.0;
        let cinf = if t <= 30.0 {
            1000.0 * r / (vm * km) * (1.0 - (-km * t).exp())
        } else {
            1000.0 * r / (vm * km) * (1.0 - (-km * 30.0).exp()) * (-km * (t - 30.0)).exp()
        };
        if t > 0.0 {
            close(
                pinf.plasma_ng_per_ml(t).unwrap(),
                cinf,
                1e-9,
                "mouse infusion",
            );
        }
        let k21 = hu.k21_per_min;
        let ch = 1000.0 / hu.v1_l_per_kg
            * ((alpha - k21) / (alpha - beta) * (-alpha * t).exp()
                + (k21 - beta) / (alpha - beta) * (-beta * t).exp());
        close(
            ph.plasma_ng_per_ml(t).unwrap(),
            ch,
            1e-10,
            "human bi-exponential",
        );
    }
}

#[test]
fn doses_superpose_exactly() {
    let a = dose(0.0, Route::IvInfusion, 0.5, Some(40.0));
    let b = dose(90.0, Route::IvBolus, 0.2, None);
    let c = dose(200.0, Route::IvInfusion, 0.3, Some(30.0));
    let all = profile(&scenario(
        Species::Human,
        vec![a.clone(), b.clone(), c.clone()],
    ));
    let parts: Vec<PkProfile> = [a, b, c]
        .into_iter()
        .map(|d| profile(&scenario(Species::Human, vec![d])))
        .collect();
    // Rodents: i.p. + s.c. + a repeated i.p. dose + an infusion.
    let r = [
        dose(0.0, Route::Ip, 10.0, None),
        dose(5.0, Route::Sc, 30.0, None),
        dose(60.0, Route::Ip, 10.0, None),
        dose(20.0, Route::IvInfusion, 5.0, Some(25.0)),
    ];
    let rall = profile(&scenario(Species::Mouse, r.to_vec()));
    let rparts: Vec<PkProfile> = r
        .iter()
        .map(|d| profile(&scenario(Species::Mouse, vec![d.clone()])))
        .collect();
    for i in 0..=600 {
        let t = i as f64 * 0.75;
        let sum = |ps: &[PkProfile], f: &dyn Fn(&PkProfile) -> f64| ps.iter().map(f).sum::<f64>();
        let got = all.plasma_ng_per_ml(t).unwrap();
        let want = sum(&parts, &|p| p.plasma_ng_per_ml(t).unwrap());
        assert!(
            (got - want).abs() <= 1e-9 * want.max(1.0),
            "human plasma t={t}"
        );
        let got = all.free_brain_conc_um(t);
        let want = sum(&parts, &|p| p.free_brain_conc_um(t));
        assert!(
            (got - want).abs() <= 1e-9 * want.max(1e-3),
            "human brain t={t}"
        );
        let got = rall.free_brain_conc_um(t);
        let want = sum(&rparts, &|p| p.free_brain_conc_um(t));
        assert!(
            (got - want).abs() <= 1e-9 * want.max(1e-3),
            "mouse brain t={t}"
        );
    }
    // Two identical doses at the same time = twice one dose; a dose given 30 min
    // before t = 0 is the same dose at 0 seen 30 min later.
    let one = profile(&scenario(
        Species::Rat,
        vec![dose(0.0, Route::Sc, 8.0, None)],
    ));
    let two = profile(&scenario(
        Species::Rat,
        vec![
            dose(0.0, Route::Sc, 8.0, None),
            dose(0.0, Route::Sc, 8.0, None),
        ],
    ));
    let early = profile(&scenario(
        Species::Rat,
        vec![dose(-30.0, Route::Sc, 8.0, None)],
    ));
    for t in [0.0, 1.0, 7.0, 33.0, 100.0] {
        close(
            two.free_brain_conc_um(t),
            2.0 * one.free_brain_conc_um(t),
            1e-12,
            "double",
        );
        close(
            early.free_brain_conc_um(t),
            one.free_brain_conc_um(t + 30.0),
            1e-9,
            "shift",
        );
    }
}

/// AUC by composite Simpson on [0, t1] with n intervals.
fn simpson(f: impl Fn(f64) -> f64, t1: f64, n: usize) -> f64 {
    let h = t1 / n as f64;
    let mut s = f(0.0) + f(t1);
    for i in 1..n {
        s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

#[test]
fn bolus_mass_balance_auc_times_clearance_is_the_dose() {
    // Human 1 mg/kg i.v. bolus: AUC (ng min/mL) x CL (mL/min/kg) = dose (ng/kg).
    let ph = profile(&scenario(
        Species::Human,
        vec![dose(0.0, Route::IvBolus, 1.0, None)],
    ));
    let cl = ph.params().unwrap().clearance_ml_per_min_per_kg();
    let auc = simpson(|t| ph.plasma_ng_per_ml(t).unwrap(), 8000.0, 16000);
    println!("human bolus: AUC x CL = {:.6} mg/kg", auc * cl / 1e6);
    close(auc * cl / 1e6, 1.0, 1e-6, "human mass balance");
    // Rat 10 mg/kg i.p. with bioavailability 0.7: AUC x CL = F dose.
    let mut ip = scenario(Species::Rat, vec![dose(0.0, Route::Ip, 10.0, None)]);
    ip.bioavailability_ip = Some(0.7);
    let pr = profile(&ip);
    let cl = pr.params().unwrap().clearance_ml_per_min_per_kg();
    let auc = simpson(|t| pr.plasma_ng_per_ml(t).unwrap(), 2000.0, 40000);
    close(auc * cl / 1e6, 7.0, 1e-6, "rat ip mass balance");
    // The effect site has the same AUC as plasma (it only delays): free brain AUC =
    // free fraction x plasma AUC (in µM min).
    let auc_e = simpson(|t| pr.free_brain_conc_um(t), 2000.0, 40000);
    close(auc_e, 0.6 * auc / NG_PER_ML_PER_UM, 1e-6, "effect-site AUC");
}

#[test]
fn effect_site_lags_plasma_and_is_scaled_by_the_free_fraction() {
    // Human bolus: plasma peaks at t = 0, the effect site later.
    let sc = scenario(Species::Human, vec![dose(0.0, Route::IvBolus, 1.0, None)]);
    let p = profile(&sc);
    let (tp, _) = p.peak_plasma_ng_per_ml(0.0, 120.0).unwrap();
    let (te, _) = p.peak_free_brain_conc_um(0.0, 120.0);
    println!("human bolus: plasma peak {tp:.3} min, effect site {te:.3} min");
    assert!(tp < 1e-6 && te > 1.0 && te < 10.0, "{tp} {te}");
    assert_eq!(p.free_brain_conc_um(0.0), 0.0);
    // Infusion: the effect site peaks just after the infusion ends.
    let pi = profile(&human_infusion());
    let (te, pe) = pi.peak_free_brain_conc_um(0.0, 360.0);
    println!("human infusion: free effect-site peak {pe:.4} uM at {te:.3} min");
    assert!(te > 40.0 && te < 45.0, "{te}");
    // In the terminal phase the effect site trails plasma by ke0 / (ke0 - beta).
    let params = *pi.params().unwrap();
    let beta = params.disposition_rates_per_min().1;
    let t = 600.0;
    let ratio = pi.free_brain_conc_um(t) / (params.free_fraction * pi.plasma_um(t).unwrap());
    close(
        ratio,
        params.ke0_per_min / (params.ke0_per_min - beta),
        1e-8,
        "terminal ratio",
    );
    // Free fraction and brain:plasma ratio scale the free level exactly, not plasma.
    let mut half = human_infusion();
    half.free_fraction = Some(0.3);
    let mut doubled = human_infusion();
    doubled.brain_plasma_ratio = Some(2.0);
    let (ph, pd) = (profile(&half), profile(&doubled));
    for t in [5.0, 40.0, 41.0, 200.0] {
        close(
            ph.free_brain_conc_um(t),
            0.5 * pi.free_brain_conc_um(t),
            1e-12,
            "fu",
        );
        close(
            pd.free_brain_conc_um(t),
            2.0 * pi.free_brain_conc_um(t),
            1e-12,
            "ratio",
        );
        assert_eq!(ph.plasma_ng_per_ml(t), pi.plasma_ng_per_ml(t));
    }
    // A faster ke0 tracks plasma more closely.
    let mut fast = human_infusion();
    fast.ke0_per_min = Some(5.0);
    let pf = profile(&fast);
    let lag = |p: &PkProfile| p.peak_free_brain_conc_um(0.0, 360.0).0 - 40.0;
    assert!(lag(&pf) < lag(&pi), "{} {}", lag(&pf), lag(&pi));
}

#[test]
fn rodent_ip_and_sc_peak_within_minutes_and_are_mostly_gone_in_1_to_2_h() {
    let cases = [
        // (species, route, mg/kg, latest brain peak min, check time min, max fraction)
        (Species::Rat, Route::Ip, 10.0, 10.0, 120.0, 0.2),
        (Species::Mouse, Route::Ip, 10.0, 10.0, 60.0, 0.15),
        // Lord et al. 2013: 30 mg/kg s.c. in mouse, maximal at 15 min, gone by 1 h.
        (Species::Mouse, Route::Sc, 30.0, 20.0, 60.0, 0.2),
        (Species::Rat, Route::Sc, 10.0, 20.0, 120.0, 0.25),
    ];
    for (species, route, mg, latest, t_check, frac) in cases {
        let p = profile(&scenario(species, vec![dose(0.0, route, mg, None)]));
        let (tp, cp) = p.peak_plasma_ng_per_ml(0.0, 360.0).unwrap();
        let (tb, cb) = p.peak_free_brain_conc_um(0.0, 360.0);
        let later = p.free_brain_conc_um(t_check);
        println!(
            "{species:?} {} {mg} mg/kg: plasma peak {cp:.0} ng/mL ({:.2} uM) at {tp:.2} min; free brain peak {cb:.3} uM at {tb:.2} min; at {t_check} min {later:.3} uM ({:.1} %)",
            route.label(),
            cp / NG_PER_ML_PER_UM,
            100.0 * later / cb
        );
        assert!(tb > tp, "brain lags plasma");
        assert!(tb <= latest, "brain peak at {tb} min");
        assert!(tb >= 2.0, "brain peak at {tb} min");
        assert!(later <= frac * cb, "{later} vs peak {cb}");
        if route == Route::Sc && species == Species::Mouse {
            assert!(
                (10.0..=16.0).contains(&tb),
                "Lord 2013: maximal near 15 min ({tb})"
            );
        }
    }
    // Rodent half-lives inside 15-60 min.
    for s in [Species::Rat, Species::Mouse] {
        let h = PkParams::preset(s).terminal_half_life_min();
        assert!((15.0..=60.0).contains(&h), "{s:?} {h}");
        assert_eq!(PkParams::preset(s).distribution_half_life_min(), None);
    }
}

// --- Concentration table -----------------------------------------------------------

#[test]
fn conc_table_interpolates_linearly_and_is_constant_beyond_the_ends() {
    let sc = PkScenario {
        conc_table: Some(vec![[10.0, 0.0], [20.0, 2.0], [40.0, 1.0]]),
        ..PkScenario::default()
    };
    sc.validate().unwrap();
    let expect = [
        (-100.0, 0.0),
        (0.0, 0.0),
        (10.0, 0.0),
        (15.0, 1.0),
        (20.0, 2.0),
        (25.0, 1.75),
        (40.0, 1.0),
        (1e9, 1.0),
    ];
    for (t, c) in expect {
        assert!((sc.free_brain_conc_um(t) - c).abs() < 1e-12, "t={t}");
    }
    assert_eq!(sc.plasma_ng_per_ml(15.0), None);
    let p = profile(&sc);
    assert_eq!(p.params(), None);
    assert_eq!(p.peak_free_brain_conc_um(0.0, 100.0), (20.0, 2.0));
    // A one-row table is a constant.
    let one = PkScenario {
        conc_table: Some(vec![[0.0, 0.7]]),
        ..PkScenario::default()
    };
    assert_eq!(one.free_brain_conc_um(-5.0), 0.7);
    assert_eq!(one.free_brain_conc_um(5.0), 0.7);
    // No drug at all.
    let none = PkScenario::default();
    none.validate().unwrap();
    assert_eq!(none.free_brain_conc_um(12.0), 0.0);
    assert_eq!(none.plasma_ng_per_ml(12.0), Some(0.0));
}

// --- Scenario table and validation -------------------------------------------------

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Top {
    pharmacokinetics: PkScenario,
}

fn parse(text: &str) -> Result<PkScenario, String> {
    toml::from_str::<Top>(text)
        .map(|t| t.pharmacokinetics)
        .map_err(|e| e.to_string())
}

/// The example of docs/pk.md.
const DOC_EXAMPLE: &str = r#"
[pharmacokinetics]
species = "mouse"
ke0_per_min = 2.0        # override the preset (starting value 3 /min)
free_fraction = 0.6
doses = [
  { time_min = 0,   route = "ip", dose_mg_per_kg = 10 },
  { time_min = 120, route = "iv-infusion", dose_mg_per_kg = 5, infusion_min = 30 },
]
"#;

#[test]
fn toml_table_parses_validates_and_rejects_unknown_keys() {
    let sc = parse(DOC_EXAMPLE).unwrap();
    sc.validate().unwrap();
    assert_eq!(sc.species, Some(Species::Mouse));
    assert_eq!(sc.doses.len(), 2);
    assert_eq!(sc.doses[1].route, Route::IvInfusion);
    assert_eq!(sc.params().unwrap().ke0_per_min, 2.0);
    assert!(sc.free_brain_conc_um(5.0) > 0.0);
    assert!(sc.plasma_ng_per_ml(5.0).unwrap() > 0.0);
    let table = parse("[pharmacokinetics]\nconc_table = [[0, 0.0], [30, 1.5], [90, 0]]\n").unwrap();
    assert!((table.free_brain_conc_um(15.0) - 0.75).abs() < 1e-12);

    let e = parse("[pharmacokinetics]\nspecies = \"rat\"\nke0 = 2.0\n").unwrap_err();
    assert!(e.contains("unknown field `ke0`"), "{e}");
    let e = parse(
        "[pharmacokinetics]\nspecies = \"rat\"\ndoses = [{ route = \"ip\", dose_mg_per_kg = 1, dose_mg = 2 }]\n",
    )
    .unwrap_err();
    assert!(e.contains("unknown field `dose_mg`"), "{e}");
    let e = parse(
        "[pharmacokinetics]\nspecies = \"rat\"\ndoses = [{ route = \"iv\", dose_mg_per_kg = 1 }]\n",
    )
    .unwrap_err();
    assert!(e.contains("iv-bolus"), "{e}");
    let e = parse("[pharmacokinetics]\nspecies = \"dog\"\n").unwrap_err();
    assert!(e.contains("human"), "{e}");
}

#[test]
fn validation_messages_name_the_field() {
    let rat_ip = || scenario(Species::Rat, vec![dose(0.0, Route::Ip, 10.0, None)]);
    let mut cases: Vec<(PkScenario, &str)> = Vec::new();
    let mut s = rat_ip();
    s.doses[0].dose_mg_per_kg = -1.0;
    cases.push((
        s,
        "pharmacokinetics.doses[0].dose_mg_per_kg: must be a finite number >= 0 (got -1)",
    ));
    let mut s = rat_ip();
    s.doses.push(dose(f64::NAN, Route::Sc, 1.0, None));
    cases.push((
        s,
        "pharmacokinetics.doses[1].time_min: must be a finite number (got NaN)",
    ));
    let mut s = rat_ip();
    s.doses.push(dose(5.0, Route::IvInfusion, 1.0, None));
    cases.push((s, "pharmacokinetics.doses[1].infusion_min: missing"));
    let mut s = rat_ip();
    s.doses.push(dose(5.0, Route::IvInfusion, 1.0, Some(0.0)));
    cases.push((
        s,
        "pharmacokinetics.doses[1].infusion_min: must be a finite number > 0 (got 0)",
    ));
    let mut s = rat_ip();
    s.doses[0].infusion_min = Some(10.0);
    cases.push((
        s,
        "pharmacokinetics.doses[0].infusion_min: only for route \"iv-infusion\"",
    ));
    cases.push((
        scenario(Species::Human, vec![dose(0.0, Route::Ip, 1.0, None)]),
        "pharmacokinetics.doses[0].route: \"ip\" needs an absorption rate, which the human preset does not have; set pharmacokinetics.ka_ip_per_min",
    ));
    let mut s = rat_ip();
    s.free_fraction = Some(1.5);
    cases.push((
        s,
        "pharmacokinetics.free_fraction: must be in (0, 1] (got 1.5)",
    ));
    let mut s = rat_ip();
    s.ke0_per_min = Some(0.0);
    cases.push((
        s,
        "pharmacokinetics.ke0_per_min: must be a finite number > 0 (got 0)",
    ));
    let mut s = rat_ip();
    s.v1_l_per_kg = Some(-2.0);
    cases.push((
        s,
        "pharmacokinetics.v1_l_per_kg: must be a finite number > 0 (got -2)",
    ));
    let mut s = rat_ip();
    s.k12_per_min = Some(0.01);
    cases.push((
        s,
        "pharmacokinetics.k21_per_min: must be > 0 when k12_per_min > 0",
    ));
    let mut s = rat_ip();
    s.bioavailability_sc = Some(0.0);
    cases.push((
        s,
        "pharmacokinetics.bioavailability_sc: must be in (0, 1] (got 0)",
    ));
    let mut s = rat_ip();
    s.ka_ip_per_min = Some(f64::INFINITY);
    cases.push((
        s,
        "pharmacokinetics.ka_ip_per_min: must be a finite number > 0 (got inf)",
    ));
    let mut s = rat_ip();
    s.species = None;
    cases.push((s, "pharmacokinetics.species: missing"));
    cases.push((
        PkScenario {
            free_fraction: Some(0.5),
            ..PkScenario::default()
        },
        "pharmacokinetics.species: missing; `free_fraction` overrides a species preset",
    ));
    let mut s = rat_ip();
    s.conc_table = Some(vec![[0.0, 1.0]]);
    cases.push((
        s,
        "pharmacokinetics.conc_table: give either `doses` or `conc_table`, not both",
    ));
    let table = |rows: Vec<[f64; 2]>| PkScenario {
        conc_table: Some(rows),
        ..PkScenario::default()
    };
    cases.push((
        table(vec![]),
        "pharmacokinetics.conc_table: must have at least one row",
    ));
    cases.push((
        table(vec![[0.0, 1.0], [0.0, 2.0]]),
        "pharmacokinetics.conc_table[1][0] (t_min): times must increase strictly (got 0 after 0)",
    ));
    cases.push((
        table(vec![[0.0, -1.0]]),
        "pharmacokinetics.conc_table[0][1] (conc_um): must be a finite number >= 0 (got -1)",
    ));
    let mut s = table(vec![[0.0, 1.0]]);
    s.ke0_per_min = Some(2.0);
    cases.push((
        s,
        "pharmacokinetics.ke0_per_min: not used with `conc_table`",
    ));
    let mut s = table(vec![[0.0, 1.0]]);
    s.species = Some(Species::Rat);
    cases.push((s, "pharmacokinetics.species: not used with `conc_table`"));

    for (sc, want) in cases {
        let e = sc.validate().expect_err(want);
        assert!(e.starts_with(want), "want {want:?}\n got {e:?}");
        assert_eq!(sc.profile().unwrap_err(), e);
        assert!(sc.free_brain_conc_um(1.0).is_nan());
    }
    // Human s.c. works once an absorption rate is given.
    let mut s = scenario(Species::Human, vec![dose(0.0, Route::Sc, 0.5, None)]);
    s.ka_sc_per_min = Some(0.05);
    s.validate().unwrap();
    assert!(s.free_brain_conc_um(30.0) > 0.0);
}

// --- `ketasim pk` --------------------------------------------------------------------

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    pk: PkArgs,
}

fn args(line: &str) -> PkArgs {
    let argv = std::iter::once("ketasim-pk").chain(line.split_whitespace());
    Cli::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{e}"))
        .pk
}

#[test]
fn pk_command_json_has_the_keys_and_the_numbers() {
    let out = pk_command(&args(
        "--species human --route iv-infusion --dose-mg-per-kg 0.5 --infusion-min 40 --json",
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in [
        "peak_plasma_ng_per_ml",
        "peak_plasma_um",
        "t_peak_min",
        "peak_free_effect_site_um",
        "t_peak_free_effect_site_min",
        "terminal_half_life_min",
        "distribution_half_life_min",
        "clearance_ml_per_min_per_kg",
        "parameters",
        "series",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let peak = v["peak_plasma_ng_per_ml"].as_f64().unwrap();
    assert!((150.0..=220.0).contains(&peak));
    assert!((v["t_peak_min"].as_f64().unwrap() - 40.0).abs() <= 1.0);
    assert_eq!(v["parameters"]["v1_l_per_kg"].as_f64(), Some(1.75));
    assert_eq!(v["parameters"]["k10_per_min"].as_f64(), Some(0.0109));
    assert!(v["parameters"]["ka_ip_per_min"].is_null());
    let series = v["series"].as_array().unwrap();
    assert_eq!(series.len(), 361); // 6 h at 1 min, both ends
    for col in [
        "t_min",
        "plasma_ng_per_ml",
        "plasma_um",
        "free_effect_site_um",
    ] {
        assert!(series[40].get(col).is_some(), "series column {col}");
    }
    assert_eq!(series[40]["t_min"].as_f64(), Some(40.0));
    let c40 = series[40]["plasma_ng_per_ml"].as_f64().unwrap();
    assert!((c40 - peak).abs() < 1e-6);
    let um = series[40]["plasma_um"].as_f64().unwrap();
    assert!((um * 237.7 - c40).abs() < 1e-9);

    // Table output: header and one row per step.
    let text = pk_command(&args(
        "--species mouse --route sc --dose-mg-per-kg 30 --hours 2 --step-min 5",
    ))
    .unwrap();
    assert!(text.contains("t_min") && text.contains("plasma_ng_per_ml"));
    assert!(text.contains("plasma_uM") && text.contains("free_effect_site_uM"));
    assert!(text.contains("peak plasma"));
    let rows = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains("t_min"))
        .count();
    assert_eq!(rows, 25);
    let human = pk_command(&args(
        "--species human --route iv-infusion --dose-mg-per-kg 0.5 --infusion-min 40",
    ))
    .unwrap();
    let header: Vec<&str> = human.lines().take_while(|l| l.starts_with('#')).collect();
    assert_eq!(header.len(), 4);
    assert!(
        header[3].contains("peak plasma 177.54 ng/mL"),
        "{}",
        header[3]
    );
    println!("{}", header.join("\n"));
}

#[test]
fn pk_command_errors_name_the_flag() {
    let cases = [
        (
            "--species human --route iv-bolus --dose-mg-per-kg -1",
            "--dose-mg-per-kg:",
        ),
        (
            "--species human --route iv-infusion --dose-mg-per-kg 0.5",
            "--infusion-min:",
        ),
        (
            "--species human --route iv-infusion --dose-mg-per-kg 0.5 --infusion-min 0",
            "--infusion-min:",
        ),
        (
            "--species rat --route ip --dose-mg-per-kg 10 --infusion-min 40",
            "--infusion-min:",
        ),
        (
            "--species rat --route ip --dose-mg-per-kg 10 --hours 0",
            "--hours:",
        ),
        (
            "--species rat --route ip --dose-mg-per-kg 10 --step-min 0",
            "--step-min:",
        ),
        (
            "--species rat --route ip --dose-mg-per-kg 10 --step-min 0.00001",
            "--step-min:",
        ),
        ("--species human --route sc --dose-mg-per-kg 1", "--route:"),
    ];
    for (line, flag) in cases {
        let e = pk_command(&args(line)).unwrap_err().to_string();
        assert!(e.starts_with(flag), "{line}: {e}");
    }
    // clap itself rejects unknown values and missing flags.
    assert!(Cli::try_parse_from([
        "x",
        "--species",
        "dog",
        "--route",
        "ip",
        "--dose-mg-per-kg",
        "1"
    ])
    .is_err());
    assert!(Cli::try_parse_from(["x", "--species", "rat", "--route", "ip"]).is_err());
}

/// Doses whose free effect-site peak exceeds MAX_CONC_UM are refused, naming the doses
/// and the peak, whether the peak comes from one huge dose (computed: 1000 mg/kg i.v.
/// in a human peaks at about 1300 µM) or from one that overflows f64 (once a run went
/// on with an infinite concentration and a silent network); doses just below the
/// limit, and repeated doses whose sum passes the cheap bound but whose peak does
/// not, are accepted. The `pk` command names its flag, and a concentration table is
/// held to the same limit.
#[test]
fn doses_beyond_the_concentration_limit_are_refused() {
    use ketasim::pk::MAX_CONC_UM;
    let bolus = |mg: f64| scenario(Species::Human, vec![dose(0.0, Route::IvBolus, mg, None)]);
    for mg in [1000.0, 1e300] {
        let e = bolus(mg).validate().expect_err("refused");
        assert!(
            e.starts_with("pharmacokinetics.doses: the free effect-site ketamine peaks at"),
            "{e}"
        );
        assert!(e.contains("lower dose_mg_per_kg"), "{e}");
    }
    // Peak linear in dose: the largest accepted bolus is just under 1000 µM.
    let unit = profile(&bolus(1.0)).peak_free_brain_conc_um(0.0, 60.0).1;
    let largest = MAX_CONC_UM / unit;
    bolus(largest * 0.999)
        .validate()
        .expect("just below the limit");
    bolus(largest * 1.001)
        .validate()
        .expect_err("just above the limit");
    // 40 daily boluses of 0.4 x the largest: their sum is 16 times the limit's dose,
    // but each has long gone (3 h half-life) before the next.
    let daily: Vec<Dose> = (0..40)
        .map(|d| dose(1440.0 * d as f64, Route::IvBolus, 0.4 * largest, None))
        .collect();
    scenario(Species::Human, daily)
        .validate()
        .expect("repeated doses below the limit each");
    let e = pk_command(&args(
        "--species human --route iv-bolus --dose-mg-per-kg 2000",
    ))
    .unwrap_err();
    assert!(e.to_string().starts_with("--dose-mg-per-kg: "), "{e}");
    let table = PkScenario {
        conc_table: Some(vec![[0.0, 0.0], [10.0, 2.0 * MAX_CONC_UM]]),
        ..PkScenario::default()
    };
    let e = table.validate().expect_err("table beyond the limit");
    assert!(
        e.starts_with("pharmacokinetics.conc_table[1][1] (conc_um): at most"),
        "{e}"
    );
}
