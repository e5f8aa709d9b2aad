//! `ketasim sweep` and `ketasim merge` end to end: two shards merged equal the
//! unsharded sweep (wall times aside), with one row per run in run order.

use std::process::Command;

fn ketasim(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ketasim"))
        .args(args)
        .output()
        .expect("run ketasim");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "ketasim {args:?} failed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn without_wall(csv: &str) -> Vec<String> {
    let header: Vec<&str> = csv.lines().next().unwrap_or("").split(',').collect();
    let wall = header
        .iter()
        .position(|h| *h == "wall_s")
        .expect("wall_s column");
    csv.lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != wall)
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[test]
fn shards_merge_to_the_full_sweep() {
    let dir = std::env::temp_dir().join(format!("ketasim-sweep-{}", std::process::id()));
    let d = dir.display().to_string();
    let common = [
        "coba",
        "--set",
        "duration_ms=30",
        "--set",
        "populations.E.size=300,600,900",
        "--replicates",
        "2",
        "--backend",
        "cpu",
    ];
    let mut full: Vec<&str> = vec!["sweep"];
    full.extend(common);
    let full_dir = format!("{d}/full");
    full.extend(["--out", &full_dir]);
    ketasim(&full);
    for k in ["1/2", "2/2"] {
        let mut a: Vec<&str> = vec!["sweep"];
        a.extend(common);
        a.extend(["--shard", k, "--out", &d]);
        ketasim(&a);
    }
    let merged = format!("{d}/merged.csv");
    ketasim(&[
        "merge",
        &format!("{d}/sweep_shard_1_of_2.csv"),
        &format!("{d}/sweep_shard_2_of_2.csv"),
        "--out",
        &merged,
    ]);
    let a = std::fs::read_to_string(format!("{full_dir}/sweep.csv")).expect("full");
    let b = std::fs::read_to_string(&merged).expect("merged");
    assert_eq!(a.lines().count(), 1 + 6, "{a}");
    assert_eq!(without_wall(&a), without_wall(&b));
    let _ = std::fs::remove_dir_all(dir);
}
