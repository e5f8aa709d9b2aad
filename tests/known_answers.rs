//! Tests with exactly known answers, on the CPU backend and (when an adapter exists)
//! on the GPU: the LIF inter-spike interval under constant current, the Mg2+ block
//! curve, and a spike arriving exactly after its delay through every connectivity path.

mod common;

use ketasim::backend::Backend;
use ketasim::cpu::CpuBackend;
use ketasim::gpu::GpuBackend;
use ketasim::model::{mg_block, Network};
use ketasim::scenario::Scenario;

fn backends(net: &Network, test: &str) -> Vec<Box<dyn Backend>> {
    let mut v: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::new(net).expect("cpu"))];
    if let Some(ctx) = common::gpu_or_skip(test) {
        v.push(Box::new(GpuBackend::new(ctx, net).expect("gpu")));
    }
    v
}

/// Under constant current I the membrane relaxes to V_inf = E_L + I/g_L; from reset the
/// threshold is reached after T = tau_m ln((V_inf - V_reset)/(V_inf - V_th)), so the
/// ISI is T + t_ref (Tuckwell 1988; Gerstner & Kistler 2002, eq. 4.10).
#[test]
fn lif_isi_matches_the_analytic_interval() {
    let text = r#"
        dt_ms = 0.01
        duration_ms = 200.0
        [[populations]]
        name = "N"
        size = 1
        [populations.neuron]
        c_pF = 200.0
        g_l_nS = 10.0
        e_l_mV = -60.0
        v_th_mV = -50.0
        v_reset_mV = -60.0
        t_ref_ms = 2.0
        i_ext_pA = 300.0
        [record]
        spikes = ["N"]
        max_spikes_per_batch = 1000
    "#;
    let s = Scenario::from_toml("lif", text).expect("scenario");
    let (c, g_l, e_l, v_th, v_reset, t_ref, i) = (200.0f64, 10.0, -60.0, -50.0, -60.0, 2.0, 300.0);
    let tau = c / g_l;
    let v_inf = e_l + i / g_l;
    let analytic = tau * ((v_inf - v_reset) / (v_inf - v_th)).ln() + t_ref;
    let net = Network::build(&s, 5000).expect("net");
    for mut b in backends(&net, "lif_isi_matches_the_analytic_interval") {
        let mut spikes = Vec::new();
        for _ in 0..4 {
            spikes.extend(b.run_batch(5000).expect("batch").spikes);
        }
        assert!(
            spikes.len() >= 10,
            "{}: only {} spikes",
            b.adapter(),
            spikes.len()
        );
        for w in spikes.windows(2).skip(1) {
            let isi = (w[1].0 - w[0].0) as f64 * s.dt_ms;
            // Forward Euler shortens tau by about dt/2 (relative error dt/(2 tau)), and
            // spikes fall on the step grid: allow both.
            let tol = 2.0 * s.dt_ms + analytic * s.dt_ms / (2.0 * tau) * 2.0;
            assert!(
                (isi - analytic).abs() <= tol,
                "{}: ISI {isi} ms vs analytic {analytic} ms (tolerance {tol})",
                b.adapter()
            );
        }
    }
}

/// B(V) = 1 / (1 + [Mg]/3.57 mM exp(-0.062 V)) (Jahr & Stevens 1990, J Neurosci
/// 10:3178), to f32 precision over -100..+60 mV and 0.1-2 mM Mg2+.
#[test]
fn mg_block_follows_jahr_stevens() {
    for mg in [0.1f64, 1.0, 2.0] {
        let mut v = -100.0f64;
        while v <= 60.0 {
            let exact = 1.0 / (1.0 + mg / 3.57 * (-0.062 * v).exp());
            let got = mg_block(v as f32, (mg / 3.57) as f32) as f64;
            assert!(
                ((got - exact) / exact).abs() < 2e-6,
                "B({v} mV, {mg} mM) = {got}, expected {exact}"
            );
            v += 0.5;
        }
    }
    // A landmark: at -60 mV in 1 mM Mg2+ about 92% of the channels are blocked.
    let b = mg_block(-60.0, (1.0 / 3.57) as f32);
    assert!((b - 0.0796).abs() < 5e-4, "B(-60 mV) = {b}");
}

/// One source neuron fires once at step 0 (it starts above threshold and then stays
/// refractory); each target must see the synaptic jump in exactly step `delay`, not a
/// step earlier, through every rule and receptor.
#[test]
fn a_spike_arrives_exactly_after_its_delay() {
    let delay_steps = 23u32;
    for (rule, receptor, extra) in [
        ("fixed_probability", "ampa", "p = 1.0\nweight_nS = 1.5"),
        ("fixed_outdegree", "gaba_a", "k = 1\nweight_nS = 2.5"),
        ("fixed_indegree", "ampa", "k = 1\nweight_nS = 0.75"),
        (
            "fixed_probability",
            "nmda",
            "p = 1.0\ndrive = 0.125\nstorage = \"table\"",
        ),
    ] {
        let text = format!(
            r#"
            dt_ms = 0.1
            duration_ms = 10.0
            [[populations]]
            name = "src"
            size = 1
            [populations.neuron]
            t_ref_ms = 1000.0
            [populations.init]
            v_mean_mV = -40.0
            [[populations]]
            name = "dst"
            size = 1
            [populations.nmda]
            g_max_nS = 1.0
            [[projections]]
            pre = "src"
            post = "dst"
            receptor = "{receptor}"
            rule = "{rule}"
            delay_ms = {delay}
            {extra}
            [record]
            spikes = ["src"]
            "#,
            delay = delay_steps as f64 * 0.1
        );
        let s = Scenario::from_toml("delay", &text).expect("scenario");
        let net = Network::build(&s, 100).expect("net");
        let pop = net.pops()[1];
        for mut b in backends(&net, "a_spike_arrives_exactly_after_its_delay") {
            let first = b.run_batch(delay_steps).expect("batch");
            assert_eq!(
                first.spikes,
                vec![(0, 0)],
                "{rule}/{receptor}: source must fire once, at step 0"
            );
            let before = b.state().expect("state");
            let (g, decay) = match receptor {
                "ampa" => (before.g_ampa[1], pop.decay_ampa),
                "gaba_a" => (before.g_gaba[1], pop.decay_gaba),
                _ => (before.x_nmda[1], pop.decay_nmda_rise),
            };
            assert_eq!(
                g,
                0.0,
                "{rule}/{receptor} on {}: input arrived before step {delay_steps}",
                b.adapter()
            );
            b.run_batch(1).expect("batch");
            let after = b.state().expect("state");
            let w = s.projections[0]
                .weight_nS
                .or(s.projections[0].drive)
                .unwrap_or(0.0) as f32;
            let got = match receptor {
                "ampa" => after.g_ampa[1],
                "gaba_a" => after.g_gaba[1],
                _ => after.x_nmda[1],
            };
            assert_eq!(
                got,
                w * decay,
                "{rule}/{receptor} on {}: jump at step {delay_steps}",
                b.adapter()
            );
        }
    }
}

/// Glutamate from a regularly firing neuron: with interval T the releasable fraction
/// settles where depletion and recovery balance (Tsodyks & Markram 1997),
/// R* = (1 - e^(-T/tau)) / (1 - (1 - p) e^(-T/tau)), each spike releasing p R* per site;
/// the extracellular pool then settles where Michaelis-Menten uptake removes the mean
/// input rho: G* = rho K_m / (Vmax - rho).
#[test]
fn glutamate_release_and_uptake_reach_their_steady_states() {
    let text = r#"
        dt_ms = 0.1
        duration_ms = 3000.0
        [[populations]]
        name = "P"
        size = 1
        [populations.neuron]
        c_pF = 200.0
        g_l_nS = 10.0
        e_l_mV = -60.0
        v_th_mV = -50.0
        v_reset_mV = -60.0
        t_ref_ms = 2.0
        i_ext_pA = 300.0
        [populations.glutamate]
        release_probability = 0.3
        tau_recovery_ms = 100.0
        release_sites = 2.0
        um_per_vesicle = 0.5
        uptake_vmax_um_per_ms = 0.2
        uptake_km_um = 20.0
        [record]
        spikes = ["P"]
        glutamate_window_ms = 1000.0
    "#;
    let s = Scenario::from_toml("glu", text).expect("scenario");
    let net = Network::build(&s, 1000).expect("net");
    let mut cpu = CpuBackend::new(&net).expect("cpu");
    let (mut spikes, mut release, mut glu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..30 {
        let out = cpu.run_batch(1000).expect("batch");
        spikes.extend(out.spikes);
        release.extend(
            out.release_fixed
                .iter()
                .map(|&r| r as f64 / ketasim::model::layout::GLU_SCALE as f64),
        );
        glu.extend(out.glutamate_um);
    }
    // Regular firing: every interval is the same number of steps.
    let isi_steps: Vec<u32> = spikes.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let t_ms = isi_steps[isi_steps.len() - 1] as f64 * s.dt_ms;
    assert!(
        isi_steps[5..].iter().all(|&k| k as f64 * s.dt_ms == t_ms),
        "irregular firing"
    );
    let (p, tau, sites) = (0.3, 100.0, 2.0);
    let e = (-t_ms / tau).exp();
    let r_star = (1.0 - e) / (1.0 - (1.0 - p) * e);
    let per_spike = p * r_star * sites;
    let last = spikes[spikes.len() - 1].0 as usize;
    let got = release[last];
    assert!(
        ((got - per_spike) / per_spike).abs() < 1e-4,
        "release per spike {got} vs {per_spike}"
    );
    // Pool: mean input rate (µM/ms) and the Michaelis-Menten balance.
    let rho = per_spike * 0.5 / t_ms;
    let (vmax, km) = (0.2, 20.0);
    let g_star = rho * km / (vmax - rho);
    let tail = &glu[glu.len() - 10_000..];
    let mean = tail.iter().map(|&g| g as f64).sum::<f64>() / tail.len() as f64;
    assert!(
        ((mean - g_star) / g_star).abs() < 0.02,
        "glutamate {mean} µM vs steady state {g_star} µM"
    );
}
