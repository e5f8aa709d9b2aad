//! Figures of a run (PNG, `crate::figures`): the time course over the protocol, spike
//! raster excerpts and the LFP-proxy spectrum.

use std::path::Path;

use crate::figures::{self, FigureError, Panel, Series};
use crate::protocol::{lfp_psd, Window};
use crate::run::RunResult;
use crate::stats::GAMMA_BAND_HZ;

/// Raster excerpts show this much time (ms).
pub const RASTER_SPAN_MS: f64 = 500.0;
/// Raster excerpts show at most this many neurons of each population.
pub const RASTER_NEURONS: u32 = 200;
/// The spectrum figure's upper frequency (Hz).
pub const SPECTRUM_MAX_HZ: f64 = 150.0;

fn series(label: &str, windows: &[Window], y: impl Fn(&Window) -> f64) -> Series {
    Series {
        label: label.to_string(),
        x: windows
            .iter()
            .map(|w| 0.5 * (w.protocol_min.0 + w.protocol_min.1))
            .collect(),
        y: windows.iter().map(y).collect(),
    }
}

fn panel(title: &str, y_label: &str, series: Vec<Series>) -> Panel {
    Panel {
        title: title.to_string(),
        y_label: y_label.to_string(),
        bands: vec![None; series.len()],
        series,
        log_y: false,
    }
}

/// Write `timecourse.png`, `spectrum.png`, with slow signalling `signalling.png`,
/// and (with recorded spikes) `raster.png` (and `raster_peak.png` for the glutamate
/// peak window) into `dir`. Returns the files written.
pub fn write_figures(res: &RunResult, dir: &Path) -> Result<Vec<String>, FigureError> {
    let mut written = Vec::new();
    let names = &res.pop_names;
    let lfp = names
        .iter()
        .position(|n| *n == res.summary.protocol.lfp_population)
        .unwrap_or(0);
    let w = &res.windows;
    if w.is_empty() {
        return Ok(written);
    }
    let per_pop = |f: fn(&crate::protocol::PopWindow) -> f64| -> Vec<Series> {
        names
            .iter()
            .enumerate()
            .map(|(p, n)| series(n, w, |x| f(&x.pops[p])))
            .collect()
    };
    let mut panels = vec![
        panel(
            "Free ketamine at the receptors",
            "µM",
            vec![series("free effect-site", w, |x| x.conc_um)],
        ),
        // One rate panel per population: PV and pyramidal rates differ by 10-20x.
        panel(
            "NMDA receptors blocked by ketamine",
            "fraction",
            per_pop(|p| p.nmda_blocked),
        ),
    ];
    for (p, n) in names.iter().enumerate() {
        panels.insert(
            1 + p,
            panel(
                &format!("Firing rate, {n}"),
                "Hz",
                vec![series(n, w, move |x| x.pops[p].rate_hz)],
            ),
        );
    }
    let glu: Vec<Series> = names
        .iter()
        .enumerate()
        .filter(|(p, _)| res.glu_pops[*p])
        .map(|(p, n)| series(n, w, move |x| x.pops[p].glutamate_pct_baseline))
        .collect();
    if !glu.is_empty() && w.iter().any(|x| x.baseline) {
        panels.push(panel("Extracellular glutamate", "% of baseline", glu));
        panels.push(panel(
            "Gamma (30-80 Hz) power of the LFP proxy",
            "ratio to baseline",
            vec![series(&names[lfp], w, |x| x.gamma_power_ratio)],
        ));
    }
    let path = dir.join("timecourse.png");
    figures::stacked_panels(
        &path,
        &format!("{}: time course", res.summary.scenario),
        "protocol time (min)",
        &panels,
        false,
    )?;
    written.push(path.display().to_string());

    if let Some(path) = signalling_figure(res, dir)? {
        written.push(path);
    }

    // Spectrum: the baseline windows' and the peak window's (or the first and last).
    let base: Vec<&Window> = w.iter().filter(|x| x.baseline).collect();
    let peak = crate::protocol::glutamate_peak(&res.windows, lfp);
    let mut picks: Vec<(String, &Window)> = Vec::new();
    if let Some(b) = base.last() {
        picks.push(("baseline".into(), b));
    } else {
        picks.push(("first window".into(), &w[0]));
    }
    match peak {
        Some(p) => picks.push((
            format!(
                "glutamate peak ({:.1} min, {:.2} µM)",
                0.5 * (p.protocol_min.0 + p.protocol_min.1),
                p.conc_um
            ),
            p,
        )),
        None if w.len() > 1 => picks.push(("last window".into(), &w[w.len() - 1])),
        None => {}
    }
    let spectra: Vec<Series> = picks
        .iter()
        .filter_map(|(label, x)| {
            lfp_psd(&res.samples, lfp, x.sim_ms.0, x.sim_ms.1).map(|psd| Series {
                label: label.clone(),
                x: psd.freqs_hz,
                y: psd.power,
            })
        })
        .collect();
    if !spectra.is_empty() {
        let path = dir.join("spectrum.png");
        figures::spectrum(
            &path,
            &format!("LFP proxy of {} (summed synaptic currents)", names[lfp]),
            &spectra,
            GAMMA_BAND_HZ,
            SPECTRUM_MAX_HZ,
        )?;
        written.push(path.display().to_string());
    }

    // Rasters of recorded spikes.
    if !res.spikes.is_empty() {
        let mut offset = 0u32;
        let pops: Vec<(String, u32, u32)> = names
            .iter()
            .zip(&res.pop_sizes)
            .map(|(n, &size)| {
                let p = (n.clone(), offset, size);
                offset += size;
                p
            })
            .collect();
        let mut rasters = vec![("raster.png", picks[0].0.clone(), picks[0].1)];
        if let Some(p) = peak {
            rasters.push(("raster_peak.png", "glutamate peak".to_string(), p));
        }
        for (file, what, x) in rasters {
            let t0 = x.sim_ms.0;
            let t1 = (t0 + RASTER_SPAN_MS).min(x.sim_ms.1);
            let path = dir.join(file);
            figures::raster(
                &path,
                &format!(
                    "Spikes, {what} window ({:.1} min, {:.2} µM)",
                    x.protocol_min.0, x.conc_um
                ),
                &res.spikes,
                &pops,
                t0,
                t1,
                RASTER_NEURONS,
            )?;
            written.push(path.display().to_string());
        }
    }
    Ok(written)
}

/// `signalling.png` (runs with `[signalling]`): the windows after protocol time 0
/// (where the scenarios give the dose) on a logarithmic time axis in hours (the
/// pre-drug baseline is the reference 1 / 100%), the free concentration, glutamate, the AMPA activation, BDNF and
/// mTOR relative to baseline, and the synapse density of each signalling population.
fn signalling_figure(res: &RunResult, dir: &Path) -> Result<Option<String>, FigureError> {
    let w = &res.windows;
    let slow_pops: Vec<usize> = (0..res.pop_names.len())
        .filter(|&p| w.iter().any(|x| x.pops[p].slow.is_some()))
        .collect();
    if slow_pops.is_empty() {
        return Ok(None);
    }
    // Time zero of the protocol clock (where the scenarios put the dose).
    let t0 = 0.0;
    let after: Vec<Window> = w
        .iter()
        .filter(|x| 0.5 * (x.protocol_min.0 + x.protocol_min.1) > t0)
        .cloned()
        .collect();
    if after.len() < 2 {
        return Ok(None);
    }
    let hours = |label: &str, y: &dyn Fn(&Window) -> f64| Series {
        label: label.to_string(),
        x: after
            .iter()
            .map(|x| (0.5 * (x.protocol_min.0 + x.protocol_min.1) - t0) / 60.0)
            .collect(),
        y: after.iter().map(y).collect(),
    };
    let mut panels = vec![panel(
        "Free ketamine at the receptors",
        "µM",
        vec![hours("free effect-site", &|x| x.conc_um)],
    )];
    let glu: Vec<Series> = (0..res.pop_names.len())
        .filter(|&p| res.glu_pops[p])
        .map(|p| hours(&res.pop_names[p], &|x| x.pops[p].glutamate_pct_baseline))
        .collect();
    if !glu.is_empty() {
        panels.push(panel("Extracellular glutamate", "% of baseline", glu));
    }
    let rel = |p: usize, f: fn(&crate::signalling::SlowReadout) -> f64| {
        move |x: &Window| x.pops[p].slow.map_or(f64::NAN, |s| f(&s))
    };
    for &p in &slow_pops {
        let n = &res.pop_names[p];
        panels.push(panel(
            &format!("AMPA activation, BDNF and mTOR of {n} (1 = baseline)"),
            "relative",
            vec![
                hours("AMPA activation", &rel(p, |s| s.activation_rel)),
                hours("BDNF", &rel(p, |s| s.bdnf / s.m_rest)),
                hours("mTOR", &rel(p, |s| s.mtor / s.m_rest)),
            ],
        ));
        panels.push(panel(
            &format!("Synapse density of {n}"),
            "relative to healthy",
            vec![hours(n, &rel(p, |s| s.density))],
        ));
    }
    let path = dir.join("signalling.png");
    figures::stacked_panels(
        &path,
        &format!("{}: from surge to synapses", res.summary.scenario),
        "hours after protocol time 0 (log)",
        &panels,
        true,
    )?;
    Ok(Some(path.display().to_string()))
}
