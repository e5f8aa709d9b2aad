//! Readout statistics for the paper: power spectra (Welch), gamma-band power, an LFP
//! proxy from synaptic currents, spike-train irregularity (CV of the ISI), population
//! synchrony (Golomb's chi from binned spike counts) and Student-t confidence intervals.
//!
//! Everything here is a pure function on slices: no I/O, no global state, no
//! randomness. Each function's doc comment names the method and where it comes from.
//! Units are carried in argument names (`_hz`, `_ms`, `_pa`).

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

/// The gamma band used for the paper's gamma-power readout, in Hz (inclusive bounds).
///
/// 30-80 Hz is the conventional cortical gamma range; it is the band in which
/// sub-anaesthetic ketamine raises LFP/EEG power in rodents and humans
/// (e.g. Hakami et al. 2009; Pinault 2008).
pub const GAMMA_BAND_HZ: (f64, f64) = (30.0, 80.0);

/// A one-sided power spectral density.
///
/// `power[k]` is the density at `freqs_hz[k]` in (signal unit)^2 / Hz; the frequencies
/// are `k * fs / segment_len` for `k = 0 ..= segment_len / 2`, so they are evenly spaced
/// from 0 Hz up to (at most) the Nyquist frequency.
#[derive(Debug, Clone, PartialEq)]
pub struct Psd {
    /// Bin centre frequencies in Hz, ascending, starting at 0.
    pub freqs_hz: Vec<f64>,
    /// One-sided power spectral density at each frequency, (signal unit)^2 / Hz.
    pub power: Vec<f64>,
}

impl Psd {
    /// Frequency resolution (spacing of `freqs_hz`) in Hz; `NaN` with fewer than 2 bins.
    pub fn bin_width_hz(&self) -> f64 {
        if self.freqs_hz.len() < 2 {
            f64::NAN
        } else {
            self.freqs_hz[1] - self.freqs_hz[0]
        }
    }

    /// The frequency (Hz) and density of the largest bin, ignoring the 0 Hz bin.
    /// `None` if there is no bin above 0 Hz.
    pub fn peak(&self) -> Option<(f64, f64)> {
        self.freqs_hz.iter().zip(&self.power).skip(1).fold(
            None,
            |best: Option<(f64, f64)>, (&f, &p)| match best {
                Some((_, bp)) if bp >= p => best,
                _ => Some((f, p)),
            },
        )
    }
}

/// Power spectral density by Welch's method of averaged modified periodograms
/// (Welch 1967, IEEE Trans. Audio Electroacoust. 15:70-73).
///
/// Method, matching `scipy.signal.welch(x, fs, window="hann", nperseg=segment_len,
/// noverlap=overlap, detrend="constant", scaling="density", return_onesided=True)`:
///
/// 1. The series is cut into `K = 1 + (N - L) / (L - overlap)` segments of length
///    `L = segment_len`, each starting `L - overlap` samples after the previous one;
///    trailing samples that do not fill a segment are dropped.
/// 2. Each segment has its own mean removed, then is multiplied by a periodic Hann window
///    `w[n] = 0.5 - 0.5 cos(2 pi n / L)` and transformed with an FFT (rustfft).
/// 3. The periodograms `|X_k|^2 / (fs * sum_n w[n]^2)` are averaged over the segments and
///    folded to one side (doubled for every bin except 0 Hz and, for even `L`, Nyquist).
///
/// With this scaling the density integrates over frequency to the (window-weighted)
/// variance of the series (Parseval): `sum_k power[k] * fs / L` equals the mean over
/// segments of `sum_n (w[n] (x[n] - mean))^2 / sum_n w[n]^2`, which for stationary
/// signals is the variance. Per-segment mean removal also suppresses the lowest bins
/// (0 Hz and, to about 1/6 for white noise, the first bin), as in scipy.
///
/// Errors: `fs_hz` not finite and positive, `segment_len < 2`, `overlap >= segment_len`,
/// a series shorter than one segment, or any non-finite sample.
pub fn welch_psd(x: &[f64], fs_hz: f64, segment_len: usize, overlap: usize) -> Result<Psd, String> {
    if !(fs_hz.is_finite() && fs_hz > 0.0) {
        return Err(format!(
            "welch_psd: sampling rate must be finite and > 0, got {fs_hz}"
        ));
    }
    if segment_len < 2 {
        return Err(format!(
            "welch_psd: segment length must be at least 2, got {segment_len}"
        ));
    }
    if overlap >= segment_len {
        return Err(format!(
            "welch_psd: overlap ({overlap}) must be smaller than the segment length ({segment_len})"
        ));
    }
    if x.len() < segment_len {
        return Err(format!(
            "welch_psd: series of {} samples is shorter than one segment ({segment_len})",
            x.len()
        ));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(format!("welch_psd: sample {i} is not finite ({})", x[i]));
    }

    let l = segment_len;
    let step = l - overlap;
    let n_segments = 1 + (x.len() - l) / step;
    let window: Vec<f64> = (0..l)
        .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / l as f64).cos())
        .collect();
    let window_power: f64 = window.iter().map(|w| w * w).sum();

    let fft = FftPlanner::<f64>::new().plan_fft_forward(l);
    let mut buf = vec![Complex::new(0.0, 0.0); l];
    let mut scratch = vec![Complex::new(0.0, 0.0); fft.get_inplace_scratch_len()];
    let n_bins = l / 2 + 1;
    let mut acc = vec![0.0f64; n_bins];

    for s in 0..n_segments {
        let seg = &x[s * step..s * step + l];
        let mean = seg.iter().sum::<f64>() / l as f64;
        for ((b, &v), &w) in buf.iter_mut().zip(seg).zip(&window) {
            *b = Complex::new((v - mean) * w, 0.0);
        }
        fft.process_with_scratch(&mut buf, &mut scratch);
        for (a, c) in acc.iter_mut().zip(&buf) {
            *a += c.norm_sqr();
        }
    }

    let scale = 1.0 / (fs_hz * window_power * n_segments as f64);
    let nyquist_bin = if l.is_multiple_of(2) {
        Some(l / 2)
    } else {
        None
    };
    let power = acc
        .iter()
        .enumerate()
        .map(|(k, &a)| {
            let one_sided = if k == 0 || Some(k) == nyquist_bin {
                1.0
            } else {
                2.0
            };
            a * scale * one_sided
        })
        .collect();
    let freqs_hz = (0..n_bins).map(|k| k as f64 * fs_hz / l as f64).collect();
    Ok(Psd { freqs_hz, power })
}

/// Power in the band `[lo_hz, hi_hz]`: the trapezoid-rule integral of the density over
/// frequency, in (signal unit)^2.
///
/// The density is treated as piecewise linear between bins; band edges that fall between
/// bins are handled by linear interpolation, so the result is exact for piecewise-linear
/// spectra and continuous in the band edges. The band is clipped to the spectrum's
/// frequency range. An empty band (`hi_hz <= lo_hz`, or no overlap with the spectrum)
/// gives 0; a `NaN` edge gives `NaN`. `band_power(psd, 0, fs/2)` is the total variance
/// (see [`welch_psd`]).
pub fn band_power(psd: &Psd, lo_hz: f64, hi_hz: f64) -> f64 {
    if lo_hz.is_nan() || hi_hz.is_nan() {
        return f64::NAN;
    }
    let f = &psd.freqs_hz;
    let p = &psd.power;
    let n = f.len().min(p.len());
    let mut total = 0.0;
    for i in 1..n {
        let (fa, fb) = (f[i - 1], f[i]);
        let a = lo_hz.max(fa);
        let b = hi_hz.min(fb);
        if b > a && fb > fa {
            let interp = |x: f64| p[i - 1] + (p[i] - p[i - 1]) * (x - fa) / (fb - fa);
            total += 0.5 * (interp(a) + interp(b)) * (b - a);
        }
    }
    total
}

/// LFP proxy: the summed absolute synaptic currents onto the pyramidal population.
///
/// Mazzoni et al. (2008, J. Neurosci. 28:13052; 2015, PLoS Comput. Biol. 11:e1004584)
/// show that in point-neuron networks the LFP of a pyramidal population is well
/// approximated from its synaptic currents, because those currents, flowing across the
/// spatially separated dendrites of aligned pyramidal cells, set up the dipoles that
/// dominate the extracellular field. Their simple proxy is `sum |I_AMPA| + |I_GABA|`
/// over pyramidal cells; the best proxy of the 2015 paper (the "reference weighted sum",
/// `|I_AMPA(t - 6 ms)| - 1.65 |I_GABA(t)|`) adds a delay and relative weight fitted to a
/// specific multicompartment morphology, which we do not model.
///
/// We therefore use the 2008 absolute-value sum, extended with the NMDA current:
///
/// `lfp[t] = |ampa_pa[t]| + |gaba_pa[t]| + |nmda_pa[t]|`
///
/// NMDA is a glutamatergic current on the same dendrites as AMPA, so it contributes to
/// the same dipole; including it matters here because ketamine acts on exactly that
/// current. Absolute values make the proxy independent of the model's sign convention
/// for inward/outward currents. The inputs are the per-sample *mean* currents per
/// pyramidal cell (pA), so the proxy is the population sum divided by the number of
/// cells; the scale is irrelevant for spectral shape and band-power ratios. The output is
/// in pA.
///
/// Errors: slices of unequal length, or any non-finite sample.
pub fn lfp_proxy(ampa_pa: &[f64], gaba_pa: &[f64], nmda_pa: &[f64]) -> Result<Vec<f64>, String> {
    if ampa_pa.len() != gaba_pa.len() || ampa_pa.len() != nmda_pa.len() {
        return Err(format!(
            "lfp_proxy: current series differ in length (AMPA {}, GABA {}, NMDA {})",
            ampa_pa.len(),
            gaba_pa.len(),
            nmda_pa.len()
        ));
    }
    ampa_pa
        .iter()
        .zip(gaba_pa)
        .zip(nmda_pa)
        .enumerate()
        .map(|(i, ((&a, &g), &n))| {
            if a.is_finite() && g.is_finite() && n.is_finite() {
                Ok(a.abs() + g.abs() + n.abs())
            } else {
                Err(format!(
                    "lfp_proxy: sample {i} is not finite (AMPA {a}, GABA {g}, NMDA {n})"
                ))
            }
        })
        .collect()
}

/// Coefficient of variation of the inter-spike intervals of one neuron:
/// `CV = SD(ISI) / mean(ISI)` (e.g. Softky & Koch 1993; Brunel 2000 uses it to classify
/// regular vs. irregular firing). 0 for a perfectly regular train, 1 for a Poisson train.
///
/// The SD is the population SD (divisor = number of intervals, as `numpy.std`). The
/// spike times are sorted (on a copy) before the intervals are taken.
///
/// `None` with fewer than 3 spikes (2 intervals), any non-finite time, or a zero mean
/// interval.
pub fn cv_isi(spike_times_ms: &[f64]) -> Option<f64> {
    if spike_times_ms.len() < 3 || spike_times_ms.iter().any(|t| !t.is_finite()) {
        return None;
    }
    let mut t = spike_times_ms.to_vec();
    t.sort_by(f64::total_cmp);
    let isi: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let n = isi.len() as f64;
    let mean = isi.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return None;
    }
    let var = isi.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>() / n;
    Some(var.sqrt() / mean)
}

/// Mean of [`cv_isi`] over the neurons with at least `min_spikes` spikes (and at least
/// the 3 that `cv_isi` needs). `None` if no neuron qualifies.
pub fn mean_cv(trains: &[Vec<f64>], min_spikes: usize) -> Option<f64> {
    let (sum, count) = trains
        .iter()
        .filter(|t| t.len() >= min_spikes)
        .filter_map(|t| cv_isi(t))
        .fold((0.0, 0usize), |(s, c), cv| (s + cv, c + 1));
    (count > 0).then(|| sum / count as f64)
}

/// Bins spike trains into counts: `counts[i][k]` is the number of spikes of neuron `i`
/// in `[t_start_ms + k * bin_ms, t_start_ms + (k + 1) * bin_ms)`, for the
/// `floor((t_end_ms - t_start_ms) / bin_ms)` whole bins that fit; spikes outside them
/// (or non-finite) are ignored. Input for [`spike_count_synchrony`].
///
/// Errors: `bin_ms` not finite and positive, bounds not finite, or fewer than one bin.
pub fn bin_spike_counts(
    trains: &[Vec<f64>],
    t_start_ms: f64,
    t_end_ms: f64,
    bin_ms: f64,
) -> Result<Vec<Vec<u32>>, String> {
    if !(bin_ms.is_finite() && bin_ms > 0.0) {
        return Err(format!(
            "bin_spike_counts: bin width must be finite and > 0, got {bin_ms}"
        ));
    }
    if !(t_start_ms.is_finite() && t_end_ms.is_finite()) {
        return Err(format!(
            "bin_spike_counts: time window must be finite, got [{t_start_ms}, {t_end_ms})"
        ));
    }
    let n_bins_f = ((t_end_ms - t_start_ms) / bin_ms).floor();
    if n_bins_f < 1.0 || !n_bins_f.is_finite() {
        return Err(format!(
            "bin_spike_counts: window [{t_start_ms}, {t_end_ms}) holds no whole {bin_ms} ms bin"
        ));
    }
    let n_bins = n_bins_f as usize;
    Ok(trains
        .iter()
        .map(|train| {
            let mut counts = vec![0u32; n_bins];
            for &t in train {
                let k = ((t - t_start_ms) / bin_ms).floor();
                if k >= 0.0 && k < n_bins_f {
                    counts[k as usize] += 1;
                }
            }
            counts
        })
        .collect())
}

/// Population synchrony `chi` (Golomb & Rinzel 1993, Phys. Rev. E 48:4810; Golomb & Hansel
/// 2000, Neural Comput. 12:1095; Golomb 2007, Scholarpedia 2(1):1347), computed from
/// binned spike counts instead of membrane potentials:
///
/// `chi^2 = Var_t[ (1/N) sum_i c_i(t) ] / ( (1/N) sum_i Var_t[ c_i(t) ] )`
///
/// where `c_i(t)` is the spike count of neuron `i` in bin `t` (`counts_per_neuron[i][t]`)
/// and the variances are over time bins (population variances, divisor = number of
/// bins). It is the variance of the population-averaged activity relative to the mean
/// single-neuron variance: `chi = 1` when all trains are identical, and for `N`
/// independent trains `chi^2 ~ 1/N` (so `chi ~ 1/sqrt(N)`, the finite-size floor that a
/// subsample of `N` neurons cannot go below). Between those, `chi` rises with the
/// fraction of shared fluctuations. The value depends on the bin width (the time scale of
/// synchrony probed); a few ms (e.g. 2-5 ms) resolves gamma-cycle locking.
///
/// Returns `chi` (not `chi^2`). `None` if there are no neurons, fewer than 2 bins,
/// neurons with different numbers of bins, or no variance at all (no neuron's count
/// varies, e.g. no spikes).
pub fn spike_count_synchrony(counts_per_neuron: &[Vec<u32>]) -> Option<f64> {
    let n = counts_per_neuron.len();
    let t = counts_per_neuron.first()?.len();
    if t < 2 || counts_per_neuron.iter().any(|c| c.len() != t) {
        return None;
    }
    let variance = |xs: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = xs.collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64
    };
    let mut pop = vec![0.0f64; t];
    let mut mean_single_var = 0.0;
    for c in counts_per_neuron {
        for (p, &k) in pop.iter_mut().zip(c) {
            *p += f64::from(k);
        }
        mean_single_var += variance(&mut c.iter().map(|&k| f64::from(k)));
    }
    mean_single_var /= n as f64;
    if mean_single_var <= 0.0 {
        return None;
    }
    let pop_var = variance(&mut pop.iter().map(|&s| s / n as f64));
    Some((pop_var / mean_single_var).sqrt())
}

/// Two-sided 95% Student-t quantile `t_{0.975, df}`: the `q` with `P(|T| <= q) = 0.95`
/// for `df` degrees of freedom.
///
/// Exact values (to 9 significant digits, computed from the regularized incomplete beta
/// function) for `df = 1..=30`; above that the Cornish-Fisher expansion of the t quantile
/// in powers of `1/df` to 4th order (Abramowitz & Stegun 26.7.5), whose error is below
/// 3e-8 for `df > 30`. `NaN` for `df = 0`.
pub fn t_quantile_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.70620474,
        4.30265273,
        3.182446305,
        2.776445105,
        2.570581836,
        2.446911851,
        2.364624252,
        2.306004135,
        2.262157163,
        2.228138852,
        2.20098516,
        2.17881283,
        2.160368656,
        2.144786688,
        2.131449546,
        2.119905299,
        2.109815578,
        2.10092204,
        2.093024054,
        2.085963447,
        2.079613845,
        2.073873068,
        2.06865761,
        2.063898562,
        2.059538553,
        2.055529439,
        2.051830516,
        2.048407142,
        2.045229642,
        2.042272456,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        _ => {
            let z: f64 = 1.959_963_984_540_054; // standard normal 0.975 quantile
            let v = df as f64;
            let (z3, z5, z7, z9) = (z.powi(3), z.powi(5), z.powi(7), z.powi(9));
            z + (z3 + z) / (4.0 * v)
                + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
                + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v.powi(3))
                + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z)
                    / (92160.0 * v.powi(4))
        }
    }
}

/// Sample mean and its 95% confidence interval, `(mean, lo, hi)`, from the Student t
/// distribution with `n - 1` degrees of freedom:
/// `mean -/+ t_{0.975, n-1} * s / sqrt(n)`, with `s` the sample SD (divisor `n - 1`).
/// Intended for per-seed readouts (independent network realisations).
///
/// `n = 1` gives `(x, NaN, NaN)` (the interval is undefined); `n = 0` gives all `NaN`.
/// Non-finite samples propagate into the result.
pub fn mean_ci95(samples: &[f64]) -> (f64, f64, f64) {
    let n = samples.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = samples.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, f64::NAN, f64::NAN);
    }
    let var = samples.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
    let half = t_quantile_975(n - 1) * (var / n as f64).sqrt();
    (mean, mean - half, mean + half)
}
