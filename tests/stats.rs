//! Known-answer tests for the readout statistics in `ketasim::stats`.

use ketasim::stats::{
    band_power, bin_spike_counts, cv_isi, lfp_proxy, mean_ci95, mean_cv, spike_count_synchrony,
    t_quantile_975, welch_psd, Psd, GAMMA_BAND_HZ,
};
use std::f64::consts::PI;

/// SplitMix64 (Steele, Lea & Flood 2014): a small fixed-seed generator for test data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1): never exactly 0, so `ln` is safe.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal by Box-Muller (one value per call; simplicity over speed).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }

    /// Poisson spike train at `rate_hz` on [0, t_end_ms), exponential intervals.
    fn poisson_train(&mut self, rate_hz: f64, t_end_ms: f64) -> Vec<f64> {
        let mean_isi_ms = 1000.0 / rate_hz;
        let mut t = 0.0;
        let mut out = Vec::new();
        loop {
            t += -mean_isi_ms * self.uniform().ln();
            if t >= t_end_ms {
                return out;
            }
            out.push(t);
        }
    }
}

fn variance(x: &[f64]) -> f64 {
    let m = x.iter().sum::<f64>() / x.len() as f64;
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64
}

fn sine_plus_noise(n: usize, fs: f64, f0: f64, amp: f64, noise_sd: f64, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64(seed);
    (0..n)
        .map(|i| amp * (2.0 * PI * f0 * i as f64 / fs).sin() + noise_sd * rng.normal())
        .collect()
}

#[test]
fn sine_at_40_hz_peaks_at_40_hz_and_dominates_gamma() {
    let fs = 1000.0;
    let x = sine_plus_noise(20_000, fs, 40.0, 1.0, 0.5, 1);
    let psd = welch_psd(&x, fs, 512, 256).unwrap();
    let df = psd.bin_width_hz();
    assert!((df - fs / 512.0).abs() < 1e-12);
    assert_eq!(psd.freqs_hz.len(), 257);
    assert_eq!(psd.freqs_hz[0], 0.0);
    assert!((psd.freqs_hz[256] - 500.0).abs() < 1e-9);

    let (f_peak, _) = psd.peak().unwrap();
    assert!(
        (f_peak - 40.0).abs() <= df,
        "peak at {f_peak} Hz, bin width {df} Hz"
    );

    let total = band_power(&psd, 0.0, fs / 2.0);
    let gamma = band_power(&psd, GAMMA_BAND_HZ.0, GAMMA_BAND_HZ.1);
    // Sine variance 0.5 + noise 0.25 spread over 500 Hz (0.025 of it in 50 Hz of gamma).
    assert!(gamma / total > 0.6, "gamma fraction {}", gamma / total);
    assert!((gamma - 0.525).abs() < 0.03, "gamma power {gamma}");
    // Equal-width band above gamma holds noise only.
    let above = band_power(&psd, 100.0, 150.0);
    assert!(gamma > 15.0 * above, "gamma {gamma} vs 100-150 Hz {above}");
}

#[test]
fn parseval_integral_equals_variance() {
    let fs = 1000.0;
    for (seed, seg, ov) in [(2u64, 256usize, 128usize), (3, 1000, 500), (4, 333, 0)] {
        let x: Vec<f64> = sine_plus_noise(1 << 16, fs, 23.0, 2.0, 1.0, seed)
            .iter()
            .map(|v| v + 5.0) // a DC offset must not count as power
            .collect();
        let psd = welch_psd(&x, fs, seg, ov).unwrap();
        let integral = band_power(&psd, 0.0, fs / 2.0);
        let var = variance(&x);
        let rel = (integral - var).abs() / var;
        assert!(
            rel < 0.01,
            "L={seg}: integral {integral} vs variance {var} ({rel})"
        );
    }
}

#[test]
fn white_noise_spectrum_is_flat() {
    let fs = 1000.0;
    let sd = 2.0;
    let mut rng = SplitMix64(5);
    let x: Vec<f64> = (0..1 << 18).map(|_| sd * rng.normal()).collect();
    let psd = welch_psd(&x, fs, 256, 128).unwrap();
    let expected = 2.0 * sd * sd / fs; // one-sided density of white noise
                                       // Bins 0 and 1 are depressed by per-segment mean removal, Nyquist is not doubled.
    let interior = &psd.power[2..psd.power.len() - 1];
    let mean = interior.iter().sum::<f64>() / interior.len() as f64;
    assert!(
        (mean / expected - 1.0).abs() < 0.02,
        "mean density {mean} vs {expected}"
    );
    for (k, p) in interior.iter().enumerate() {
        assert!(
            (p / expected - 1.0).abs() < 0.15,
            "bin {}: {p} vs {expected}",
            k + 2
        );
    }
    let nyq = *psd.power.last().unwrap();
    assert!((nyq / (expected / 2.0) - 1.0).abs() < 0.3, "Nyquist {nyq}");
}

#[test]
fn odd_segment_length_has_no_nyquist_bin() {
    let x = sine_plus_noise(4000, 100.0, 10.0, 1.0, 0.1, 6);
    let psd = welch_psd(&x, 100.0, 101, 50).unwrap();
    assert_eq!(psd.freqs_hz.len(), 51);
    assert!(*psd.freqs_hz.last().unwrap() < 50.0);
}

#[test]
fn welch_rejects_bad_input_without_panicking() {
    let x = vec![0.0; 100];
    assert!(welch_psd(&x, 1000.0, 128, 64).is_err()); // shorter than a segment
    assert!(welch_psd(&x, 1000.0, 0, 0).is_err());
    assert!(welch_psd(&x, 1000.0, 1, 0).is_err());
    assert!(welch_psd(&x, 1000.0, 50, 50).is_err());
    assert!(welch_psd(&x, 1000.0, 50, 60).is_err());
    assert!(welch_psd(&x, 0.0, 50, 25).is_err());
    assert!(welch_psd(&x, f64::NAN, 50, 25).is_err());
    assert!(welch_psd(&[], 1000.0, 50, 25).is_err());
    let mut bad = x.clone();
    bad[10] = f64::NAN;
    assert!(welch_psd(&bad, 1000.0, 50, 25).is_err());
    bad[10] = f64::INFINITY;
    assert!(welch_psd(&bad, 1000.0, 50, 25).is_err());
    // A constant series is fine and has no power.
    let psd = welch_psd(&x, 1000.0, 50, 25).unwrap();
    assert!(psd.power.iter().all(|&p| p == 0.0));
}

#[test]
fn band_power_of_known_spectra() {
    let freqs_hz: Vec<f64> = (0..=100).map(f64::from).collect();
    let flat = Psd {
        freqs_hz: freqs_hz.clone(),
        power: vec![3.0; 101],
    };
    assert!((band_power(&flat, 30.0, 80.0) - 150.0).abs() < 1e-9);
    assert!((band_power(&flat, 30.25, 79.5) - 3.0 * 49.25).abs() < 1e-9);
    assert!((band_power(&flat, -10.0, 1000.0) - 300.0).abs() < 1e-9); // clipped
    assert_eq!(band_power(&flat, 80.0, 30.0), 0.0);
    assert_eq!(band_power(&flat, 200.0, 300.0), 0.0);
    assert!(band_power(&flat, f64::NAN, 30.0).is_nan());

    // Linear density p(f) = 2f: trapezoid is exact, integral = hi^2 - lo^2.
    let ramp = Psd {
        power: freqs_hz.iter().map(|f| 2.0 * f).collect(),
        freqs_hz,
    };
    let (lo, hi) = GAMMA_BAND_HZ;
    assert!((band_power(&ramp, lo, hi) - (hi * hi - lo * lo)).abs() < 1e-9);
    assert!((band_power(&ramp, 12.3, 45.6) - (45.6f64.powi(2) - 12.3f64.powi(2))).abs() < 1e-9);
}

#[test]
fn lfp_proxy_sums_absolute_currents() {
    let ampa = [-10.0, 0.0, 5.0];
    let gaba = [20.0, -1.0, 0.0];
    let nmda = [-3.0, 0.5, 0.0];
    assert_eq!(
        lfp_proxy(&ampa, &gaba, &nmda).unwrap(),
        vec![33.0, 1.5, 5.0]
    );
    assert!(lfp_proxy(&ampa, &gaba[..2], &nmda).is_err());
    assert!(lfp_proxy(&ampa, &gaba, &[0.0, f64::NAN, 0.0]).is_err());
    assert_eq!(lfp_proxy(&[], &[], &[]).unwrap(), Vec::<f64>::new());
}

#[test]
fn cv_of_regular_train_is_zero_and_of_poisson_train_is_one() {
    let regular: Vec<f64> = (0..100).map(|k| 10.0 * f64::from(k)).collect();
    assert!(cv_isi(&regular).unwrap().abs() < 1e-12);

    let mut rng = SplitMix64(7);
    let poisson = rng.poisson_train(20.0, 500_000.0); // ~10 000 spikes
    let cv = cv_isi(&poisson).unwrap();
    assert!((cv - 1.0).abs() < 0.04, "Poisson CV {cv}");

    // Order does not matter.
    let mut shuffled = poisson.clone();
    shuffled.reverse();
    assert_eq!(cv_isi(&shuffled), Some(cv));

    assert_eq!(cv_isi(&[]), None);
    assert_eq!(cv_isi(&[1.0, 2.0]), None);
    assert_eq!(cv_isi(&[1.0, 1.0, 1.0]), None);
    assert_eq!(cv_isi(&[1.0, f64::NAN, 3.0]), None);
}

#[test]
fn mean_cv_skips_sparse_neurons() {
    let mut rng = SplitMix64(8);
    let mut trains: Vec<Vec<f64>> = (0..50).map(|_| rng.poisson_train(10.0, 20_000.0)).collect();
    trains.push(vec![1.0, 2.0, 100.0]); // CV ~0.96 but only 3 spikes
    trains.push(Vec::new());
    let cv = mean_cv(&trains, 20).unwrap();
    assert!((cv - 1.0).abs() < 0.05, "mean CV {cv}");
    let regular: Vec<f64> = (0..30).map(|k| 5.0 * f64::from(k)).collect();
    assert!(mean_cv(&[regular.clone(), regular], 10).unwrap().abs() < 1e-12);
    assert_eq!(mean_cv(&trains, 1_000_000), None);
    assert_eq!(mean_cv(&[], 0), None);
}

#[test]
fn synchrony_is_one_for_identical_and_small_for_independent_trains() {
    let n = 100;
    let mut rng = SplitMix64(9);
    let t_end = 10_000.0;

    let shared = rng.poisson_train(10.0, t_end);
    let identical = vec![shared; n];
    let counts = bin_spike_counts(&identical, 0.0, t_end, 5.0).unwrap();
    assert_eq!(counts.len(), n);
    assert_eq!(counts[0].len(), 2000);
    let chi = spike_count_synchrony(&counts).unwrap();
    assert!((chi - 1.0).abs() < 1e-12, "identical trains chi {chi}");

    let independent: Vec<Vec<f64>> = (0..n).map(|_| rng.poisson_train(10.0, t_end)).collect();
    let counts = bin_spike_counts(&independent, 0.0, t_end, 5.0).unwrap();
    let chi = spike_count_synchrony(&counts).unwrap();
    let scaled = chi * (n as f64).sqrt(); // expected ~1
    assert!(
        (scaled - 1.0).abs() < 0.15,
        "independent chi {chi}, chi*sqrt(N) {scaled}"
    );

    // Half of each neuron's spikes from a common source: in between.
    let common = rng.poisson_train(5.0, t_end);
    let mixed: Vec<Vec<f64>> = (0..n)
        .map(|_| {
            let mut t = rng.poisson_train(5.0, t_end);
            t.extend_from_slice(&common);
            t
        })
        .collect();
    let counts = bin_spike_counts(&mixed, 0.0, t_end, 5.0).unwrap();
    let chi_mixed = spike_count_synchrony(&counts).unwrap();
    assert!(
        chi_mixed > 3.0 * chi && chi_mixed < 0.9,
        "mixed chi {chi_mixed}"
    );

    assert_eq!(spike_count_synchrony(&[]), None);
    assert_eq!(spike_count_synchrony(&[vec![0, 0, 0], vec![0, 0, 0]]), None);
    assert_eq!(spike_count_synchrony(&[vec![1, 0, 1], vec![0, 1]]), None);
    assert_eq!(spike_count_synchrony(&[vec![1]]), None);
}

#[test]
fn binning_counts_spikes_in_half_open_bins() {
    let trains = vec![vec![-1.0, 0.0, 4.999, 5.0, 9.9, 10.0, f64::NAN], vec![]];
    let counts = bin_spike_counts(&trains, 0.0, 10.0, 5.0).unwrap();
    assert_eq!(counts, vec![vec![2, 2], vec![0, 0]]);
    let counts = bin_spike_counts(&trains, 0.0, 12.0, 5.0).unwrap(); // partial bin dropped
    assert_eq!(counts[0], vec![2, 2]);
    assert!(bin_spike_counts(&trains, 0.0, 4.0, 5.0).is_err());
    assert!(bin_spike_counts(&trains, 0.0, 10.0, 0.0).is_err());
    assert!(bin_spike_counts(&trains, f64::NAN, 10.0, 1.0).is_err());
}

#[test]
fn mean_ci95_uses_student_t_quantiles() {
    // Known two-sided 95% quantiles for df = 1, 9, 29.
    for (samples_n, t_known) in [(2usize, 12.706), (10, 2.262), (30, 2.045)] {
        let samples: Vec<f64> = (0..samples_n).map(|i| (i as f64).powf(1.3)).collect();
        let (mean, lo, hi) = mean_ci95(&samples);
        let n = samples_n as f64;
        let m = samples.iter().sum::<f64>() / n;
        let s = (samples.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let se = s / n.sqrt();
        assert!((mean - m).abs() < 1e-12);
        assert!(((hi - mean) - (mean - lo)).abs() < 1e-9);
        let t = (hi - mean) / se;
        assert!(
            (t - t_known).abs() < 1e-3,
            "n={samples_n}: t={t}, expected {t_known}"
        );
    }
    // n = 2 with samples 0 and 2: mean 1, SE 1, half-width t_{0.975,1}.
    let (m, lo, hi) = mean_ci95(&[0.0, 2.0]);
    assert_eq!(m, 1.0);
    assert!((hi - 1.0 - 12.706_204_74).abs() < 1e-6 && (1.0 - lo - 12.706_204_74).abs() < 1e-6);

    let (m, lo, hi) = mean_ci95(&[4.2]);
    assert_eq!(m, 4.2);
    assert!(lo.is_nan() && hi.is_nan());
    let (m, lo, hi) = mean_ci95(&[]);
    assert!(m.is_nan() && lo.is_nan() && hi.is_nan());
    // Zero spread: a zero-width interval.
    assert_eq!(mean_ci95(&[3.0; 5]), (3.0, 3.0, 3.0));
}

#[test]
fn t_quantile_table_and_expansion_agree_with_reference_values() {
    assert!(t_quantile_975(0).is_nan());
    // Reference values (R: qt(0.975, df)).
    for (df, q) in [
        (1, 12.706_204_74),
        (2, 4.302_652_73),
        (5, 2.570_581_836),
        (30, 2.042_272_456),
        (31, 2.039_513_446),
        (40, 2.021_075_390),
        (60, 2.000_297_822),
        (100, 1.983_971_519),
        (1000, 1.962_339_081),
    ] {
        assert!(
            (t_quantile_975(df) - q).abs() < 1e-7,
            "df={df}: {} vs {q}",
            t_quantile_975(df)
        );
    }
    // Monotone decreasing towards the normal quantile.
    for df in 1..500 {
        assert!(t_quantile_975(df + 1) < t_quantile_975(df), "df={df}");
    }
    assert!((t_quantile_975(1_000_000) - 1.959_966_357).abs() < 1e-8);
}
