//! `dose-response`: the CSV has the columns (with 95% intervals for
//! replicates), the control level sits at its own baseline, and block grows with the
//! concentration.

mod common;

use ketasim::dose_response::{csv, dose_response, DoseResponseArgs};
use ketasim::run::BackendChoice;

#[test]
fn dose_response_columns_control_and_monotone_block() {
    let dir = std::env::temp_dir().join(format!("ketasim-dr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let file = dir.join("mixed.toml");
    let text = common::MIXED
        .replace("[drug]\nconc_um = 0.8\n", "")
        .replace("spikes = [\"E\", \"I\"]", "spikes = []");
    std::fs::write(&file, text).expect("write scenario");
    let args = DoseResponseArgs {
        scenario: Some(file.display().to_string()),
        conc_um: vec![0.0, 1.0, 10.0],
        replicates: 2,
        out: dir.clone(),
        backend: BackendChoice::Cpu,
        // A fast glutamate pool (K_m/Vmax = 100 ms) keeps the default warm-up short.
        warmup_ms: None,
        baseline_ms: 300.0,
        settle_ms: 100.0,
        measure_ms: 300.0,
        e_pop: "E".into(),
        i_pop: "I".into(),
        set: vec!["populations.E.glutamate.uptake_vmax_um_per_ms=0.2".into()],
        no_batch: false,
        adapters: Vec::new(),
    };
    let levels = dose_response(&args).expect("dose-response");
    // The replicates ran side by side in one simulation per level; alone they give
    // the same measures bit for bit.
    let alone = dose_response(&DoseResponseArgs {
        no_batch: true,
        ..args.clone()
    })
    .expect("dose-response, replicates alone");
    assert_eq!(
        serde_json::to_string(&levels).expect("json"),
        serde_json::to_string(&alone).expect("json"),
        "batched and unbatched replicates differ"
    );
    assert_ne!(
        serde_json::to_string(&levels[1].replicates[0]).expect("json"),
        serde_json::to_string(&levels[1].replicates[1]).expect("json"),
        "the replicates must differ (different seeds)"
    );
    let table = csv(&levels);
    let header = table.lines().next().unwrap_or("");
    for col in [
        "conc_um",
        "rate_E_hz",
        "rate_I_hz",
        "nmda_block_E",
        "nmda_block_I",
        "glutamate_pct_baseline",
        "gamma_power_ratio",
        "rate_E_hz_ci95_lo",
        "glutamate_pct_baseline_ci95_hi",
    ] {
        assert!(
            header.split(',').any(|h| h == col),
            "missing column {col}: {header}"
        );
    }
    assert_eq!(table.lines().count(), 4, "{table}");
    let block = |l: usize| {
        levels[l]
            .replicates
            .iter()
            .map(|m| m.nmda_block_e)
            .sum::<f64>()
            / 2.0
    };
    assert_eq!(block(0), 0.0);
    assert!(
        block(1) > 0.02 && block(2) > block(1),
        "block {} {} {}",
        block(0),
        block(1),
        block(2)
    );
    for m in &levels[0].replicates {
        assert!(
            (m.glutamate_pct_baseline - 100.0).abs() < 5.0,
            "control glutamate {}% of baseline",
            m.glutamate_pct_baseline
        );
        assert!(m.gamma_power_ratio.is_finite() && m.gamma_power_ratio > 0.0);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `--adapters I,I`: the levels' simulations two at a time on one GPU (two threads,
/// two devices) give the measures of one at a time, the same bits in level and
/// replicate order.
#[test]
fn levels_on_several_adapters_at_once_give_the_same_measures() {
    let test = "levels_on_several_adapters_at_once_give_the_same_measures";
    if common::gpu_or_skip(test).is_none() {
        return;
    }
    let list = ketasim::gpu::list_adapters();
    let Some(&first) = ketasim::gpu::sweep_adapters(&list).first() else {
        panic!("a GPU context but no usable adapter in {list:#?}");
    };
    let dir = std::env::temp_dir().join(format!("ketasim-dr-adapters-{}", std::process::id()));
    let args = DoseResponseArgs {
        scenario: Some("pfc_ketamine".into()),
        conc_um: vec![0.0, 2.0, 10.0],
        replicates: 2,
        out: dir.clone(),
        backend: BackendChoice::Gpu,
        warmup_ms: Some(50.0),
        baseline_ms: 80.0,
        settle_ms: 0.0,
        measure_ms: 80.0,
        e_pop: "E".into(),
        i_pop: "I".into(),
        set: vec![
            "populations.E.size=400".into(),
            "populations.I.size=100".into(),
        ],
        no_batch: true,
        adapters: vec![first.to_string()],
    };
    let one = dose_response(&args).expect("one at a time");
    let two = dose_response(&DoseResponseArgs {
        adapters: vec![first.to_string(), first.to_string()],
        ..args.clone()
    })
    .expect("two at a time");
    assert_eq!(
        serde_json::to_string(&one).expect("json"),
        serde_json::to_string(&two).expect("json"),
        "two simulations at a time differ from one"
    );
    assert_eq!(two.len(), 3);
    assert!(two.iter().all(|l| l.replicates.len() == 2));
    let _ = std::fs::remove_dir_all(dir);
}
