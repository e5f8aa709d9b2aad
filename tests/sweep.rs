//! Sweep planning: axis parsing, the cross product with replicate seeds, sharding,
//! grouping by shape, and merging of shard tables.

use std::collections::BTreeSet;

use ketasim::scenario::{Scenario, Source, EMBEDDED};
use ketasim::sweep::{
    group_by_shape, merge_csv, missing_runs, parse_axis, parse_shard, plan, replicate_seed, shard,
    Axis, RunSpec, MAX_RUNS,
};

fn axis(path: &str, values: &[&str]) -> Axis {
    Axis {
        path: path.to_string(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn two_axes() -> Vec<Axis> {
    vec![
        axis("populations.E.size", &["100", "200"]),
        axis("drug.concentration_uM", &["0", "1", "10"]),
    ]
}

#[test]
fn parse_axis_splits_top_level_commas() {
    let a = parse_axis("populations.E.size=4000, 8000 ,16000").expect("plain list");
    assert_eq!(a.path, "populations.E.size");
    assert_eq!(a.values, vec!["4000", "8000", "16000"]);

    let a = parse_axis("dt_ms=0.1").expect("single value");
    assert_eq!(a.values, vec!["0.1"]);
}

#[test]
fn bracketed_and_quoted_values_are_not_split() {
    let a = parse_axis(r#"record.spikes=["E","I"]"#).expect("one array");
    assert_eq!(a.values, vec![r#"["E","I"]"#]);

    let a = parse_axis(r#"record.spikes=["E"],["E","I"],[]"#).expect("three arrays");
    assert_eq!(a.values, vec![r#"["E"]"#, r#"["E","I"]"#, "[]"]);

    let a = parse_axis(r#"x={a = 1, b = [2, 3]},{a = 4, b = []}"#).expect("inline tables");
    assert_eq!(a.values, vec!["{a = 1, b = [2, 3]}", "{a = 4, b = []}"]);

    let a = parse_axis(r#"name="a,b","c\",d",'e,f'"#).expect("quoted strings");
    assert_eq!(a.values, vec![r#""a,b""#, r#""c\",d""#, "'e,f'"]);

    // Brackets inside quotes do not count.
    let a = parse_axis(r#"name="[",x"#).expect("bracket in quotes");
    assert_eq!(a.values, vec![r#""[""#, "x"]);
}

#[test]
fn parse_axis_errors_name_the_expression_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("populations.E.size", "expected PATH=V1,V2"),
        ("=1,2", "empty path"),
        ("populations..size=1", "empty segment"),
        ("a.b=1,,2", "value 2 of 3 is empty"),
        ("a.b=1,2,", "value 3 of 3 is empty"),
        ("a.b=", "value 1 of 1 is empty"),
        ("a.b=1,2,1", "value `1` is given twice"),
        (
            r#"record.spikes=["E","I""#,
            "`[` at offset 0 of the values is never closed",
        ),
        ("a.b=1]", "has no matching `[`"),
        ("a.b=[1}", "closes `[`"),
        (r#"name="abc,d"#, "never closed"),
        ("a b=1", "whitespace in path"),
    ];
    for (expr, want) in cases {
        let e = parse_axis(expr).expect_err(expr);
        assert!(e.contains(&format!("--set {expr}")), "{expr}: {e}");
        assert!(e.contains(want), "{expr}: want `{want}` in: {e}");
    }
}

#[test]
fn cross_product_size_and_order() {
    let axes = two_axes();
    let runs = plan(&axes, 4, 7).expect("plan");
    assert_eq!(runs.len(), 2 * 3 * 4);
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.index, i);
        // Replicate fastest, then the last axis, the first axis slowest.
        let rep = i % 4;
        let conc = (i / 4) % 3;
        let size = i / 12;
        assert_eq!(r.replicate as usize, rep);
        assert_eq!(
            r.labels,
            vec![
                (
                    "populations.E.size".to_string(),
                    axes[0].values[size].clone()
                ),
                (
                    "drug.concentration_uM".to_string(),
                    axes[1].values[conc].clone()
                ),
            ]
        );
        assert_eq!(
            r.overrides,
            vec![
                format!("populations.E.size={}", axes[0].values[size]),
                format!("drug.concentration_uM={}", axes[1].values[conc]),
                format!("seed={}", r.seed),
            ]
        );
    }
    // Every combination exactly once per replicate.
    let combos: BTreeSet<_> = runs
        .iter()
        .map(|r| (r.labels.clone(), r.replicate))
        .collect();
    assert_eq!(combos.len(), runs.len());
    // Deterministic.
    assert_eq!(runs, plan(&axes, 4, 7).expect("plan again"));
}

#[test]
fn no_axes_gives_just_the_replicates() {
    let runs = plan(&[], 3, 1).expect("replicates only");
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.labels.is_empty()));
    assert_eq!(runs[2].overrides, vec![format!("seed={}", runs[2].seed)]);
}

#[test]
fn replicate_seeds_are_shared_across_parameters_and_distinct_across_replicates() {
    let runs = plan(&two_axes(), 5, 12345).expect("plan");
    let per_rep: Vec<u64> = (0..5).map(|r| replicate_seed(12345, r)).collect();
    for r in &runs {
        assert_eq!(r.seed, per_rep[r.replicate as usize], "run {}", r.index);
        assert!(r.seed < 1 << 60, "seed {} not below 2^60", r.seed);
    }
    let distinct: BTreeSet<u64> = per_rep.iter().copied().collect();
    assert_eq!(distinct.len(), per_rep.len());

    // Many replicates, extreme base seeds: still distinct and below 2^60.
    for base in [0, 1, u64::MAX, 1 << 60, 0xDEAD_BEEF] {
        let seeds: BTreeSet<u64> = (0..20_000).map(|r| replicate_seed(base, r)).collect();
        assert_eq!(seeds.len(), 20_000, "base {base}");
        assert!(seeds.iter().all(|&s| s < 1 << 60), "base {base}");
    }
    // A different base seed gives different replicate seeds.
    assert_ne!(replicate_seed(1, 0), replicate_seed(2, 0));
    assert_ne!(
        plan(&two_axes(), 2, 1).unwrap()[0].seed,
        plan(&two_axes(), 2, 2).unwrap()[0].seed
    );
}

#[test]
fn plan_errors() {
    let e = plan(&two_axes(), 0, 1).unwrap_err();
    assert!(
        e.contains("--replicates") && e.contains("at least 1"),
        "{e}"
    );

    let e = plan(&[], 0, 1).unwrap_err();
    assert!(e.contains("--replicates"), "{e}");

    let mut axes = two_axes();
    axes.push(axis("populations.E.size", &["300"]));
    let e = plan(&axes, 1, 1).unwrap_err();
    assert!(
        e.contains("populations.E.size") && e.contains("swept twice"),
        "{e}"
    );

    let e = plan(
        &[axis("record", &["{}"]), axis("record.spikes", &["[]"])],
        1,
        1,
    )
    .unwrap_err();
    assert!(e.contains("record.spikes lies inside --set record"), "{e}");

    let e = plan(&[axis("seed", &["1", "2"])], 1, 1).unwrap_err();
    assert!(e.contains("--seed") && e.contains("--replicates"), "{e}");

    let e = plan(&[axis("dt_ms", &[])], 1, 1).unwrap_err();
    assert!(e.contains("dt_ms") && e.contains("no values"), "{e}");

    let thousand: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let big = Axis {
        path: "a".into(),
        values: thousand.clone(),
    };
    let big2 = Axis {
        path: "b".into(),
        values: thousand,
    };
    assert_eq!(
        plan(&[big.clone(), big2.clone()], 1, 1).unwrap().len(),
        MAX_RUNS
    );
    let e = plan(&[big.clone(), big2.clone()], 2, 1).unwrap_err();
    assert!(e.contains("more than 1000000 runs"), "{e}");
    // Overflowing products are caught too.
    let big3 = Axis {
        path: "c".into(),
        ..big.clone()
    };
    let e = plan(&[big, big2, big3], u32::MAX, 1).unwrap_err();
    assert!(e.contains("more than"), "{e}");
    let e = plan(&[], 2_000_000, 1).unwrap_err();
    assert!(e.contains("more than"), "{e}");
}

#[test]
fn overrides_load_into_a_scenario() {
    let (name, text) = EMBEDDED[0];
    let source = Source {
        file: format!("<embedded:{name}>"),
        text: text.to_string(),
    };
    let axes = vec![
        parse_axis("populations.E.size=40,80").unwrap(),
        parse_axis(r#"record.spikes=["E"],["E","I"]"#).unwrap(),
    ];
    let runs = plan(&axes, 2, 99).unwrap();
    for r in &runs {
        let s = Scenario::load(&source, &r.overrides)
            .unwrap_or_else(|e| panic!("run {}: {e}", r.index));
        assert_eq!(s.seed, r.seed);
        let want_size: usize = r.labels[0].1.parse().unwrap();
        let e = s.population_index("E").unwrap();
        assert_eq!(s.populations[e].size as usize, want_size);
        let want_spikes = if r.labels[1].1.contains('I') { 2 } else { 1 };
        assert_eq!(s.record.spikes.len(), want_spikes);
    }
}

#[test]
fn parse_shard_accepts_k_of_n_and_names_the_form() {
    assert_eq!(parse_shard("1/1"), Ok((1, 1)));
    assert_eq!(parse_shard("3/10"), Ok((3, 10)));
    assert_eq!(parse_shard(" 10 / 10 "), Ok((10, 10)));
    for (s, want) in [
        ("3", "no `/`"),
        ("0/4", "K is 0"),
        ("5/4", "K is larger than N"),
        ("1/0", "N is 0"),
        ("a/4", "K is not a whole number"),
        ("1/-4", "N is not a whole number"),
        ("", "no `/`"),
    ] {
        let e = parse_shard(s).expect_err(s);
        assert!(e.contains("--shard"), "{s}: {e}");
        assert!(e.contains("K/N") && e.contains("1 <= K <= N"), "{s}: {e}");
        assert!(e.contains(want), "{s}: want `{want}` in {e}");
    }
}

#[test]
fn shards_partition_the_runs() {
    let runs = plan(&two_axes(), 3, 5).expect("plan");
    let all: BTreeSet<usize> = runs.iter().map(|r| r.index).collect();
    for n in [1u32, 2, 3, 5, 7, 18, 30, 100] {
        let mut seen = BTreeSet::new();
        let mut total = 0;
        for k in 1..=n {
            let part = shard(&runs, k, n);
            for r in &part {
                assert_eq!(r.index % n as usize, (k - 1) as usize);
                assert_eq!(r, &runs[r.index], "shard carries the planned run");
                assert!(
                    seen.insert(r.index),
                    "run {} in two shards (N={n})",
                    r.index
                );
            }
            // Sizes differ by at most one.
            let len = part.len();
            assert!(
                len == runs.len() / n as usize || len == runs.len().div_ceil(n as usize),
                "N={n} K={k}: {len}"
            );
            total += len;
        }
        assert_eq!(total, runs.len(), "N={n}");
        assert_eq!(seen, all, "N={n}");
    }
    // N larger than the runs: the tail shards are empty.
    assert!(shard(&runs, 100, 100).is_empty());
}

#[test]
#[should_panic(expected = "1 <= K <= N")]
fn shard_rejects_bad_k() {
    shard(&[], 0, 3);
}

#[test]
fn group_by_shape_is_stable() {
    let runs = plan(
        &[
            axis("drug.concentration_uM", &["0", "1"]),
            axis("populations.E.size", &["100", "200", "100.0"]),
        ],
        2,
        1,
    )
    .unwrap();
    let key = |r: &RunSpec| {
        let v: f64 = r.labels[1].1.parse().unwrap();
        format!("E={v}")
    };
    let groups = group_by_shape(&runs, key);
    // Sizes: runs 0,1 (100) 2,3 (200) 4,5 (100.0) then the same with the drug on.
    assert_eq!(
        groups,
        vec![vec![0, 1, 4, 5, 6, 7, 10, 11], vec![2, 3, 8, 9]]
    );
    // Every run in exactly one group.
    let mut flat: Vec<usize> = groups.concat();
    flat.sort_unstable();
    assert_eq!(flat, (0..runs.len()).collect::<Vec<_>>());
    // Positions refer to the slice given, not to the plan index.
    let part = shard(&runs, 2, 2);
    let g = group_by_shape(&part, key);
    assert_eq!(g, vec![vec![0, 2, 3, 5], vec![1, 4]]);
    assert!(group_by_shape(&[], key).is_empty());
}

/// A fake result table of the given runs.
fn table(runs: &[RunSpec]) -> String {
    let mut s = String::from("run,replicate,seed,rate_hz\n");
    for r in runs {
        s.push_str(&format!(
            "{},{},{},{:.3}\n",
            r.index,
            r.replicate,
            r.seed,
            r.index as f64 * 0.5
        ));
    }
    s
}

#[test]
fn merge_round_trips_shards() {
    let runs = plan(&two_axes(), 2, 3).unwrap();
    let full = table(&runs);
    for n in [1u32, 3, 4, 12, 50] {
        let mut parts: Vec<String> = (1..=n).map(|k| table(&shard(&runs, k, n))).collect();
        assert_eq!(merge_csv(&parts).unwrap(), full, "N={n}");
        // Order of the inputs does not matter.
        parts.reverse();
        assert_eq!(merge_csv(&parts).unwrap(), full, "N={n} reversed");
    }
    // CRLF and blank lines are tolerated.
    let crlf: Vec<String> = (1..=2)
        .map(|k| table(&shard(&runs, k, 2)).replace('\n', "\r\n") + "\r\n")
        .collect();
    assert_eq!(merge_csv(&crlf).unwrap(), full);
    // Run indices sort numerically, not as text.
    let t = merge_csv(&["run,x\n10,a\n9,b\n".into(), "run,x\n100,c\n".into()]).unwrap();
    assert_eq!(t, "run,x\n9,b\n10,a\n100,c\n");
}

#[test]
fn merge_rejects_bad_inputs() {
    let a = "run,x\n0,a\n".to_string();
    let b = "run,y\n1,b\n".to_string();
    let e = merge_csv(&[a.clone(), a.clone(), b]).unwrap_err();
    assert!(e.contains("input 3 of 3"), "{e}");
    assert!(e.contains("run,x") && e.contains("run,y"), "{e}");

    let e = merge_csv(&[a.clone(), "run,x\n1,b\n0,c\n".into()]).unwrap_err();
    assert!(e.contains("run 0 appears twice"), "{e}");

    let e = merge_csv(&[a.clone(), "run,x\nfoo,b\n".into()]).unwrap_err();
    assert!(
        e.contains("input 2 of 2, line 2") && e.contains("`foo`"),
        "{e}"
    );

    let e = merge_csv(&[a.clone(), String::new()]).unwrap_err();
    assert!(e.contains("input 2 of 2 is empty"), "{e}");

    let e = merge_csv(&["x,run\n0,1\n".into()]).unwrap_err();
    assert!(e.contains("first column must be `run`"), "{e}");

    let e = merge_csv(&[]).unwrap_err();
    assert!(e.contains("no input"), "{e}");

    // A header-only input (an empty shard) is fine.
    assert_eq!(merge_csv(&[a.clone(), "run,x\n".into()]).unwrap(), a);
}

/// Every shard but one leaves gaps in the run indices, which `merge` names (and
/// refuses without --allow-missing, tests/sweep_cli.rs); all shards leave none.
#[test]
fn missing_shards_leave_gaps_that_are_found() {
    let runs = plan(&two_axes(), 2, 3).unwrap();
    for n in [2u32, 3, 5] {
        let all: Vec<String> = (1..=n).map(|k| table(&shard(&runs, k, n))).collect();
        assert!(missing_runs(&merge_csv(&all).unwrap()).is_empty(), "N={n}");
        for left_out in 1..=n {
            let parts: Vec<String> = (1..=n)
                .filter(|&k| k != left_out)
                .map(|k| table(&shard(&runs, k, n)))
                .collect();
            let missing = missing_runs(&merge_csv(&parts).unwrap());
            // The left-out shard's runs below the highest run that is there.
            let highest = (1..=n)
                .filter(|&k| k != left_out)
                .flat_map(|k| shard(&runs, k, n))
                .map(|r| r.index as u64)
                .max()
                .unwrap_or(0);
            let expected: Vec<u64> = shard(&runs, left_out, n)
                .iter()
                .map(|r| r.index as u64)
                .filter(|&i| i < highest)
                .collect();
            assert!(!expected.is_empty(), "N={n}, shard {left_out}");
            assert_eq!(missing, expected, "N={n}, shard {left_out} left out");
        }
    }
    assert_eq!(missing_runs("run,x\n9,b\n10,a\n100,c\n").len(), 9 + 89);
}
