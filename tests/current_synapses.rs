//! Current-based exponential synapses with exact integration (NEST's `iaf_psc_exp`,
//! used by the Potjans-Diesmann microcircuit): known answers for one neuron, and
//! the per-synapse normal weights and delays.

use ketasim::backend::Backend;
use ketasim::cpu::CpuBackend;
use ketasim::model::connectivity::synapse_draw;
use ketasim::model::layout::ProjParams;
use ketasim::model::Network;
use ketasim::rng::{normal_f32, threefry2x32, STREAM_CONN};
use ketasim::scenario::Scenario;

/// PD14's neuron (C 250 pF, tau_m 10 ms, E_L = V_reset = -65 mV, V_th -50 mV, t_ref
/// 2 ms, tau_syn 0.5 ms) as a current-based population.
fn pd14_pop(name: &str, extra: &str) -> String {
    format!(
        "[[populations]]\nname = \"{name}\"\nsize = 1\nsynapse = \"current\"\n{extra}\n\
         [populations.neuron]\nc_pF = 250.0\ng_l_nS = 25.0\ne_l_mV = -65.0\nv_th_mV = -50.0\n\
         v_reset_mV = -65.0\nt_ref_ms = 2.0\ntau_syn_ex_ms = 0.5\ntau_syn_in_ms = 0.5\n"
    )
}

/// V of neuron `i` after each of `steps` steps.
fn v_trace(net: &Network, i: usize, steps: u32) -> Vec<f32> {
    let mut b = CpuBackend::new_reference(net).expect("backend");
    (0..steps)
        .map(|_| {
            b.run_batch(1).expect("step");
            b.state().expect("state").v[i]
        })
        .collect()
}

/// A spike through a synapse of 87.81 pA (PD14's PSC for a 0.15 mV PSP) raises V of
/// a neuron at rest by 0.15 mV at its peak, and not before the delay: the spike of
/// step 0 with a 1.5 ms delay is added to the current at the end of step 15 and moves
/// V from step 16 on (NEST's order).
#[test]
fn psp_peak_and_arrival_follow_nest() {
    let text = format!(
        "dt_ms = 0.1\nduration_ms = 10.0\n{}{}\
         [[projections]]\npre = \"pre\"\npost = \"post\"\nrule = \"fixed_outdegree\"\nk = 1\n\
         weight_pA = 87.8085\ndelay_ms = 1.5\n",
        pd14_pop("pre", "[populations.init]\nv_mean_mV = -40.0"),
        pd14_pop("post", ""),
    );
    let s = Scenario::from_toml("psp", &text).expect("scenario");
    let net = Network::build(&s, 100).expect("net");
    let v = v_trace(&net, 1, 100);
    for (t, &x) in v.iter().enumerate().take(16) {
        assert_eq!(x, -65.0, "V moved at step {t}, before the spike arrived");
    }
    assert!(v[16] > -65.0, "V must move at step 16 (got {})", v[16]);
    let peak = v.iter().cloned().fold(f32::MIN, f32::max) + 65.0;
    assert!(
        (peak - 0.15).abs() < 0.0015,
        "PSP peak {peak} mV, PD14 scales its weights to 0.15 mV"
    );
}

/// A constant current I above rheobase fires at the interval of the exact solution:
/// t_ref, then the first step n with R I (1 - exp(-n dt / tau_m)) >= V_th - E_L.
#[test]
fn constant_current_fires_at_the_exact_interval() {
    for i_pa in [400.0f64, 500.0, 1000.0] {
        let text = format!(
            "dt_ms = 0.1\nduration_ms = 100.0\n{}",
            pd14_pop("n", "").replace(
                "t_ref_ms = 2.0",
                &format!("t_ref_ms = 2.0\ni_ext_pA = {i_pa}")
            )
        );
        let mut s = Scenario::from_toml("dc", &text).expect("scenario");
        s.record.spikes = vec!["n".into()];
        let net = Network::build(&s, 1000).expect("net");
        let mut b = CpuBackend::new_reference(&net).expect("backend");
        let out = b.run_batch(1000).expect("run");
        let steps: Vec<u32> = out.spikes.iter().map(|s| s.0).collect();
        let ri = i_pa * 10.0 / 250.0;
        let n = (-(1.0 - 15.0 / ri).ln() * 10.0 / 0.1).ceil() as u32;
        assert!(steps.len() >= 3, "{i_pa} pA: {steps:?}");
        assert_eq!(steps[0] + 1, n, "{i_pa} pA: first spike");
        for w in steps.windows(2) {
            assert_eq!(w[1] - w[0], 20 + n, "{i_pa} pA: interval");
        }
    }
}

/// Inhibitory (negative) weights hyperpolarise.
#[test]
fn negative_weights_hyperpolarise() {
    let text = format!(
        "dt_ms = 0.1\nduration_ms = 10.0\n{}{}\
         [[projections]]\npre = \"pre\"\npost = \"post\"\nrule = \"fixed_outdegree\"\nk = 1\n\
         weight_pA = -351.234\ndelay_ms = 0.8\n",
        pd14_pop("pre", "[populations.init]\nv_mean_mV = -40.0"),
        pd14_pop("post", ""),
    );
    let s = Scenario::from_toml("ipsp", &text).expect("scenario");
    let net = Network::build(&s, 100).expect("net");
    let v = v_trace(&net, 1, 60);
    let trough = v.iter().cloned().fold(f32::MAX, f32::min) + 65.0;
    assert!(
        (trough + 0.6).abs() < 0.006,
        "IPSP trough {trough} mV: g = -4 times 0.15 mV"
    );
}

fn drawn_proj(w: f32, w_sd: f32, d: f32, d_sd: f32) -> ProjParams {
    let mut pp: ProjParams = bytemuck::Zeroable::zeroed();
    pp.stream = STREAM_CONN | (7 * 64);
    pp.seed_lo = 55;
    pp.weight_fixed = w as i32;
    pp.delay_steps = d.round() as u32;
    pp.w_mean_fixed = w;
    pp.w_sd_fixed = w_sd;
    pp.d_mean_steps = d;
    pp.d_sd_steps = d_sd;
    pp
}

/// `normal_f32` has mean 0, SD 1 and the normal tail fractions.
#[test]
fn normal_deviates_are_standard_normal() {
    let n = 400_000u32;
    let (mut s1, mut s2, mut beyond2) = (0.0f64, 0.0f64, 0u32);
    for i in 0..n {
        let z = normal_f32(threefry2x32(glam::UVec2::new(i, 3), glam::UVec2::new(9, 1)).x) as f64;
        s1 += z;
        s2 += z * z;
        beyond2 += (z.abs() > 2.0) as u32;
    }
    let mean = s1 / n as f64;
    let sd = (s2 / n as f64 - mean * mean).sqrt();
    // Standard errors: 1/sqrt(n) = 0.0016 for the mean, 0.0011 for the SD.
    assert!(mean.abs() < 0.007, "mean {mean}");
    assert!((sd - 1.0).abs() < 0.006, "sd {sd}");
    let frac = beyond2 as f64 / n as f64;
    assert!((frac - 0.0455).abs() < 0.002, "P(|z| > 2) = {frac}");
}

/// Per-synapse draws: weights keep their sign with mean and SD as asked; delays are
/// at least one step (redrawn below half a step), with the mean of the normal
/// truncated there.
#[test]
fn synapse_draws_have_the_asked_distributions() {
    // PD14 excitatory: 87.8 pA +- 10% (x 128 fixed-point units), 1.5 +- 0.75 ms.
    let pr = drawn_proj(87.8 * 128.0, 8.78 * 128.0, 15.0, 7.5);
    let n = 200_000u32;
    let (mut w1, mut w2, mut d1) = (0.0f64, 0.0f64, 0.0f64);
    let mut d_min = u32::MAX;
    for id in 0..n {
        let (w, d) = synapse_draw(&pr, id % 97, id, 61);
        w1 += w as f64 / 128.0;
        w2 += (w as f64 / 128.0).powi(2);
        d1 += d as f64;
        d_min = d_min.min(d);
    }
    let wm = w1 / n as f64;
    let wsd = (w2 / n as f64 - wm * wm).sqrt();
    assert!((wm - 87.8).abs() < 0.1, "weight mean {wm}");
    assert!((wsd - 8.78).abs() < 0.1, "weight sd {wsd}");
    assert!(d_min >= 1, "a delay below one step");
    // Normal(15, 7.5) redrawn below 0.5 steps and rounded: E[d | x >= 0.5] with
    // a = (0.5 - 15)/7.5: 15 + 7.5 phi(a) / (1 - Phi(a)) = 15.463.
    let dm = d1 / n as f64;
    assert!((dm - 15.463).abs() < 0.06, "delay mean {dm} steps");
    // Inhibitory weights never turn excitatory.
    let pr = drawn_proj(-351.2, 200.0, 7.5, 3.75);
    for id in 0..50_000 {
        let (w, d) = synapse_draw(&pr, 3, id, 61);
        assert!(w <= 0 && d >= 1, "synapse {id}: {w} {d}");
    }
}

/// A current-based population's sampled AMPA and GABA currents are its excitatory
/// and inhibitory synaptic currents (which its `g_ampa` and `g_gaba` hold, in pA),
/// and it reports no conductances (NaN). They were `I_ex (E_AMPA - V)`, pA times mV,
/// up to 60,000 for the microcircuit's L2/3E, near the samples' clamp (65,536 pA),
/// and the "conductance" columns held the currents.
#[test]
fn current_based_samples_are_the_synaptic_currents() {
    let src = ketasim::scenario::Source::locate(Some("microcircuit")).expect("embedded");
    let s = Scenario::load(&src, &[]).expect("valid");
    let mut s = ketasim::bench::scale_scenario(&s, 800).expect("scales");
    s.record.sample_interval_ms = s.dt_ms;
    let net = Network::build(&s, 1000).expect("build");
    let mut b = CpuBackend::new_reference(&net).expect("backend");
    let mut checked = 0;
    for _ in 0..40 {
        let out = b.run_batch(1).expect("step");
        let st = b.state().expect("state");
        let sample = out.samples.last().expect("a sample every step");
        for (p, pp) in net.pops().iter().enumerate() {
            let r = pp.offset as usize..(pp.offset + pp.size) as usize;
            let n = pp.size as f64;
            let (ex, inh): (f64, f64) = (
                st.g_ampa[r.clone()].iter().map(|&x| x as f64).sum(),
                st.g_gaba[r].iter().map(|&x| x as f64).sum(),
            );
            // Each neuron's value is rounded once to 1/256 pA.
            let tol = n * 0.5 / 256.0 + 1e-9;
            let sums = sample.sums[p];
            assert!(
                (sums[6] as f64 / 256.0 - ex).abs() <= tol,
                "pop {p}: {sums:?} vs {ex}"
            );
            assert!(
                (sums[7] as f64 / 256.0 - inh).abs() <= tol,
                "pop {p}: {sums:?} vs {inh}"
            );
            checked += usize::from(ex > 0.0 && inh < 0.0);
        }
    }
    assert!(checked > 0, "no step had both currents");
    let res = ketasim::run::run(
        &{
            let mut s = s.clone();
            s.duration_ms = 20.0;
            s
        },
        &ketasim::run::RunOptions {
            backend: ketasim::run::BackendChoice::Cpu,
            ..Default::default()
        },
    )
    .expect("run");
    let (_, last) = res.samples.last().expect("samples");
    for m in last {
        assert!(m[1].is_nan() && m[2].is_nan(), "{m:?}");
        assert!(m[6] > 0.0 && m[7] < 0.0 && m[6] < 10_000.0, "{m:?}");
    }
}
