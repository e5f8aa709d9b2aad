//! Distribution tests of the counter-based random numbers and of what is built from
//! them, each at a stated significance level: a correct generator fails a test with
//! probability alpha (fixed seeds make each outcome reproducible).

use glam::UVec2;
use ketasim::model::connectivity::for_each_target;
use ketasim::model::layout::{ProjParams, RULE_OUTDEGREE, RULE_PROBABILITY};
use ketasim::model::limits::PROC_SPLIT;
use ketasim::model::Network;
use ketasim::rng::{
    key, poisson_inversion, poisson_recips, threefry2x32, uniform01, STREAM_POISSON,
};
use ketasim::scenario::Scenario;

/// Upper 0.999 quantile of the chi-square distribution (Wilson-Hilferty), alpha = 0.001.
fn chi2_crit_999(df: f64) -> f64 {
    let z = 3.090_232; // standard normal 0.999 quantile
    df * (1.0 - 2.0 / (9.0 * df) + z * (2.0 / (9.0 * df)).sqrt()).powi(3)
}

fn chi2(observed: &[f64], expected: &[f64]) -> f64 {
    observed
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum()
}

/// uniform01 over (neuron, step) counters: 100 equiprobable bins, alpha = 0.001.
#[test]
fn uniforms_are_uniform() {
    let k = key(12345, STREAM_POISSON);
    let bins = 100usize;
    let mut counts = vec![0.0; bins];
    let n = 400_000u32;
    for i in 0..n {
        let r = threefry2x32(UVec2::new(i % 2000, i / 2000), k);
        for w in [r.x, r.y] {
            counts[(uniform01(w) * bins as f32) as usize] += 1.0;
        }
    }
    let e = vec![2.0 * n as f64 / bins as f64; bins];
    let c = chi2(&counts, &e);
    assert!(c < chi2_crit_999((bins - 1) as f64), "chi2 = {c}");
}

/// Adjacent counters must be independent: serial pairs in a 10x10 grid, alpha = 0.001.
#[test]
fn consecutive_counters_are_independent() {
    let k = key(99, STREAM_POISSON | 3);
    let mut grid = vec![0.0; 100];
    let n = 200_000u32;
    for i in 0..n {
        let a = uniform01(threefry2x32(UVec2::new(7, i), k).x);
        let b = uniform01(threefry2x32(UVec2::new(7, i + 1), k).x);
        grid[(a * 10.0) as usize * 10 + (b * 10.0) as usize] += 1.0;
    }
    let c = chi2(&grid, &vec![n as f64 / 100.0; 100]);
    assert!(c < chi2_crit_999(99.0), "chi2 = {c}");
}

/// The Poisson sampler against the Poisson pmf at small and large means; tail cells
/// pooled so every expected count is at least 5; alpha = 0.001.
#[test]
fn poisson_counts_follow_the_pmf() {
    let recips = poisson_recips();
    for mean in [0.24f64, 2.0, 12.5] {
        let k = key(4242, STREAM_POISSON);
        let n = 200_000u32;
        let mut hist = vec![0.0f64; 64];
        for i in 0..n {
            let u = uniform01(threefry2x32(UVec2::new(i, 1), k).x);
            let c = poisson_inversion(u, mean as f32, (-mean).exp() as f32, &recips);
            hist[c as usize] += 1.0;
        }
        let mut pmf = vec![0.0f64; 64];
        let mut p = (-mean).exp();
        for (j, v) in pmf.iter_mut().enumerate() {
            *v = p * n as f64;
            p *= mean / (j + 1) as f64;
        }
        // Pool cells from the right until each has >= 5 expected.
        let (mut obs, mut exp) = (Vec::new(), Vec::new());
        let (mut o_acc, mut e_acc) = (0.0, 0.0);
        for j in (0..64).rev() {
            o_acc += hist[j];
            e_acc += pmf[j];
            if e_acc >= 5.0 {
                obs.push(o_acc);
                exp.push(e_acc);
                o_acc = 0.0;
                e_acc = 0.0;
            }
        }
        if let (Some(o), Some(e)) = (obs.last_mut(), exp.last_mut()) {
            *o += o_acc;
            *e += e_acc;
        }
        let c = chi2(&obs, &exp);
        assert!(
            c < chi2_crit_999((obs.len() - 1) as f64),
            "mean {mean}: chi2 = {c} over {} cells",
            obs.len()
        );
    }
}

fn proj(rule: u32, pre: u32, post: u32, p: f64, k: u32, same: bool, autapses: bool) -> ProjParams {
    let mut pp: ProjParams = bytemuck::Zeroable::zeroed();
    pp.pre_size = pre;
    pp.post_size = post;
    pp.rule = rule;
    pp.k = k;
    pp.inv_ln_1mp = if p >= 1.0 {
        0.0
    } else {
        (1.0 / (1.0 - p).ln()) as f32
    };
    pp.stream = ketasim::rng::STREAM_CONN | (5 * PROC_SPLIT);
    pp.same_pop = same as u32;
    pp.autapses = autapses as u32;
    pp
}

fn targets(pp: &ProjParams, seed: u64, pre: u32) -> Vec<u32> {
    let mut pp = *pp;
    pp.seed_lo = seed as u32;
    pp.seed_hi = (seed >> 32) as u32;
    let mut t = Vec::new();
    for tid in 0..PROC_SPLIT {
        for_each_target(&pp, &[], pre, tid, |j| t.push(j));
    }
    t
}

/// Fixed probability by geometric skipping: the total count is binomial (|z| < 3.29,
/// alpha = 0.001); targets are spread uniformly over the postsynaptic range (chi2 over
/// 40 bins, alpha = 0.001); there are no duplicates and no autapses when excluded.
#[test]
fn fixed_probability_is_binomial_and_uniform() {
    let (pre, post, p) = (3000u32, 1000u32, 0.05f64);
    let pp = proj(RULE_PROBABILITY, pre, post, p, 0, true, false);
    let mut total = 0f64;
    let mut bins = vec![0.0; 40];
    for i in 0..pre {
        let mut t = targets(&pp, 11, i);
        let len = t.len();
        t.sort_unstable();
        t.dedup();
        assert_eq!(t.len(), len, "duplicate target from pre {i}");
        assert!(!t.contains(&i), "autapse at {i} although excluded");
        assert!(t.iter().all(|&j| j < post));
        total += len as f64;
        for j in t {
            bins[(j as usize * 40) / post as usize] += 1.0;
        }
    }
    let pairs = pre as f64 * post as f64 - post as f64; // self pairs excluded
    let mean = p * pairs;
    let z = (total - mean) / (pairs * p * (1.0 - p)).sqrt();
    assert!(z.abs() < 3.29, "total {total}, expected {mean}, z = {z}");
    // Bins hold 25 post neurons each, one of which is excluded per pre neuron in range.
    let e: Vec<f64> = (0..40).map(|_| total / 40.0).collect();
    let c = chi2(&bins, &e);
    assert!(c < chi2_crit_999(39.0), "chi2 = {c}");
}

/// Fixed out-degree: exactly k targets per neuron, uniform over the range (chi2,
/// alpha = 0.001), never itself when autapses are excluded.
#[test]
fn fixed_outdegree_is_exact_and_uniform() {
    let (pre, post, k) = (500u32, 700u32, 150u32);
    let pp = proj(RULE_OUTDEGREE, pre, post, 0.0, k, true, false);
    let mut bins = vec![0.0; 35];
    for i in 0..pre {
        let t = targets(&pp, 3, i);
        assert_eq!(t.len(), k as usize);
        assert!(!t.contains(&i));
        for j in t {
            assert!(j < post);
            bins[(j as usize * 35) / post as usize] += 1.0;
        }
    }
    let c = chi2(&bins, &vec![(pre * k) as f64 / 35.0; 35]);
    assert!(c < chi2_crit_999(34.0), "chi2 = {c}");
}

/// Fixed in-degree (explicit table): exactly k sources per postsynaptic neuron.
#[test]
fn fixed_indegree_table_is_exact() {
    let text = r#"
        dt_ms = 0.1
        duration_ms = 1.0
        [[populations]]
        name = "A"
        size = 300
        [[populations]]
        name = "B"
        size = 200
        [[projections]]
        pre = "A"
        post = "B"
        receptor = "ampa"
        rule = "fixed_indegree"
        k = 17
        weight_nS = 1.0
        delay_ms = 0.1
    "#;
    let s = Scenario::from_toml("indeg", text).expect("scenario");
    let net = Network::build(&s, 10).expect("net");
    let mut indeg = vec![0u32; 200];
    for &c in &net.tables.cols {
        indeg[c as usize] += 1;
    }
    assert!(
        indeg.iter().all(|&d| d == 17),
        "in-degrees {:?}",
        &indeg[..10]
    );
    assert_eq!(net.tables.rows.len(), 301);
}

/// Initial V is N(mean, sd): sample mean within 3.29 standard errors and sample sd
/// within 5% (alpha about 0.001 for n = 20000).
#[test]
fn initial_state_has_the_requested_distribution() {
    let text = r#"
        dt_ms = 0.1
        duration_ms = 1.0
        [[populations]]
        name = "A"
        size = 20000
        [populations.init]
        v_mean_mV = -65.0
        v_sd_mV = 5.0
    "#;
    let s = Scenario::from_toml("init", text).expect("scenario");
    let st = Network::build(&s, 10).expect("net").initial_state();
    let n = st.v.len() as f64;
    let mean = st.v.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (st.v.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    assert!((mean + 65.0).abs() < 3.29 * 5.0 / n.sqrt(), "mean {mean}");
    assert!((sd - 5.0).abs() < 0.25, "sd {sd}");
}
