//! PNG figures: stacked time-course panels, spike rasters and power spectra.
//!
//! Drawn with `plotters` into an in-memory RGB buffer and encoded with `png`, so a
//! figure needs neither system fonts nor fontconfig: text is rendered by `ab_glyph`
//! from DejaVu Sans, embedded in the binary (`assets/fonts/DejaVuSans.ttf`, licence in
//! `assets/fonts/DejaVuSans-LICENSE.txt`) and registered once under the family name
//! [`FONT_FAMILY`].
//!
//! Input rules, the same for every figure:
//! - a series whose `x` and `y` differ in length, or a band whose `lo`/`hi` differ in
//!   length from its series, is an error that names the series;
//! - non-finite points are skipped (a line is broken there, not joined across);
//! - on a logarithmic axis, points with a non-positive coordinate are skipped;
//! - an empty series draws nothing (its legend entry still appears).
//!
//! Every error names the output path; nothing here panics on bad input.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::combinators::IntoLogRange;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle, RGBColor};

/// Font family name under which the embedded DejaVu Sans is registered and that every
/// text element of every figure uses.
pub const FONT_FAMILY: &str = "sans-serif";

/// DejaVu Sans 2.37 (Bitstream Vera licence, see `assets/fonts/DejaVuSans-LICENSE.txt`).
static FONT_TTF: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Height of one panel of [`stacked_panels`] (pixels).
const PANEL_HEIGHT_PX: u32 = 300;
/// Width of every figure (pixels).
const FIGURE_WIDTH_PX: u32 = 1200;
/// Raster and spectrum height (pixels).
const SINGLE_HEIGHT_PX: u32 = 600;
/// Height reserved for a figure title (pixels).
const TITLE_HEIGHT_PX: u32 = 50;
/// More panels than this is a caller bug, not a figure (it would be > 19 000 px tall).
const MAX_PANELS: usize = 64;
/// Line width of every series (pixels).
const LINE_PX: u32 = 2;

/// Colours of successive series and populations (the "tab10" palette without its grey,
/// so data is never drawn in the greys of axes, grid and text).
const PALETTE: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Shading of the frequency band in [`spectrum`].
const BAND_COLOR: RGBColor = RGBColor(255, 190, 0);

/// Why a figure was not written.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// The data cannot make this figure (the reason names the series or argument).
    #[error("figure {}: {reason}", path.display())]
    Input { path: PathBuf, reason: String },
    /// Drawing failed (font, layout or backend).
    #[error("figure {}: drawing failed: {reason}", path.display())]
    Draw { path: PathBuf, reason: String },
    /// PNG encoding failed.
    #[error("figure {}: PNG encoding failed: {source}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: png::EncodingError,
    },
    /// The file could not be written.
    #[error("figure {}: cannot write the file: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One line of a plot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// Optional shaded 95% band around a series (same x as the series).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Band {
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
}

/// One panel of [`stacked_panels`]. `bands[i]` belongs to `series[i]`; `bands` may be
/// shorter than `series` (missing bands are `None`) but not longer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub bands: Vec<Option<Band>>,
    pub log_y: bool,
}

/// Vertically stacked panels sharing one x axis (e.g. time in min): rates, glutamate,
/// concentration. 1200 x (300 per panel + 50 for a title) pixels.
pub fn stacked_panels(
    path: &Path,
    title: &str,
    x_label: &str,
    panels: &[Panel],
    log_x: bool,
) -> Result<(), FigureError> {
    let input = |reason: String| FigureError::Input {
        path: path.to_path_buf(),
        reason,
    };
    if panels.is_empty() {
        return Err(input("no panels to draw".into()));
    }
    if panels.len() > MAX_PANELS {
        return Err(input(format!(
            "{} panels, at most {MAX_PANELS} fit one figure",
            panels.len()
        )));
    }
    let plots = panels
        .iter()
        .enumerate()
        .map(|(i, panel)| {
            let x_desc = if i + 1 == panels.len() { x_label } else { "" };
            panel_plot(panel, x_desc, log_x).map_err(&input)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // One x range for all panels.
    let x_range = finish_range(
        plots.iter().filter_map(|p| p.x_range).reduce(union),
        log_x,
        false,
    );

    let title_px = if title.is_empty() { 0 } else { TITLE_HEIGHT_PX };
    let n = u32::try_from(plots.len()).unwrap_or(u32::MAX);
    let height = PANEL_HEIGHT_PX * n + title_px;
    render(path, (FIGURE_WIDTH_PX, height), |root| {
        let area = if title.is_empty() {
            root.clone()
        } else {
            root.titled(title, (FONT_FAMILY, 28)).map_err(err_str)?
        };
        for (plot, cell) in plots.iter().zip(area.split_evenly((plots.len(), 1))) {
            let y_range = finish_range(plot.y_range, plot.log_y, true);
            draw_plot(&cell, plot, x_range, y_range)?;
        }
        Ok(())
    })
}

/// Spike raster excerpt: spikes (t_ms, neuron index), populations as (name, first
/// neuron, count) drawn in different colours, time window [t0_ms, t1_ms]; at most
/// `max_neurons_per_pop` neurons of each population (the first ones), y axis is the
/// neuron rank (populations stacked in the given order from rank 0 up). 1200 x 600
/// pixels.
pub fn raster(
    path: &Path,
    title: &str,
    spikes: &[(f64, u32)],
    pops: &[(String, u32, u32)],
    t0_ms: f64,
    t1_ms: f64,
    max_neurons_per_pop: u32,
) -> Result<(), FigureError> {
    let input = |reason: String| FigureError::Input {
        path: path.to_path_buf(),
        reason,
    };
    if !(t0_ms.is_finite() && t1_ms.is_finite() && t1_ms > t0_ms) {
        return Err(input(format!(
            "time window [{t0_ms}, {t1_ms}] ms is not a finite interval with t1 > t0"
        )));
    }
    if max_neurons_per_pop == 0 {
        return Err(input("max_neurons_per_pop is 0: no neuron to show".into()));
    }
    if pops.is_empty() {
        return Err(input("no populations given".into()));
    }
    // (first neuron, shown neurons, first rank) per population.
    let mut rows = Vec::with_capacity(pops.len());
    let mut ranks = 0u64;
    for (_, first, count) in pops {
        let shown = (*count).min(max_neurons_per_pop);
        rows.push((u64::from(*first), u64::from(shown), ranks));
        ranks += u64::from(shown);
    }
    if ranks == 0 {
        return Err(input("every population has 0 neurons".into()));
    }

    let mut ticks: Vec<Vec<(f64, f64)>> = vec![Vec::new(); pops.len()];
    for &(t, neuron) in spikes {
        if !(t.is_finite() && t >= t0_ms && t <= t1_ms) {
            continue;
        }
        let n = u64::from(neuron);
        // A neuron in overlapping populations is drawn in the first one.
        if let Some(p) = rows
            .iter()
            .position(|&(first, shown, _)| n >= first && n < first + shown)
        {
            ticks[p].push((t, (rows[p].2 + n - rows[p].0) as f64));
        }
    }
    let mut layers = Vec::with_capacity(2 * pops.len());
    for (p, (((name, _, count), &(_, shown, offset)), ticks)) in
        pops.iter().zip(&rows).zip(ticks).enumerate()
    {
        if p > 0 {
            layers.push(Layer::Rule {
                y: offset as f64 - 0.5,
            });
        }
        let label = if u64::from(*count) > shown {
            format!("{name} (first {shown} of {count})")
        } else {
            name.clone()
        };
        layers.push(Layer::Ticks {
            ticks,
            color: PALETTE[p % PALETTE.len()],
            label,
        });
    }

    let plot = Plot {
        caption: title.to_string(),
        x_desc: "time (ms)".into(),
        y_desc: "neuron (rank)".into(),
        x_range: Some((t0_ms, t1_ms)),
        y_range: Some((-0.5, ranks as f64 - 0.5)),
        log_x: false,
        log_y: false,
        legend: true,
        layers,
    };
    render(path, (FIGURE_WIDTH_PX, SINGLE_HEIGHT_PX), |root| {
        draw_plot(root, &plot, (t0_ms, t1_ms), (-0.5, ranks as f64 - 0.5))
    })
}

/// Power spectra (log y, linear frequency axis from 0 to `max_hz`), with the band
/// [lo_hz, hi_hz] shaded (gamma 30-80 Hz). 1200 x 600 pixels.
pub fn spectrum(
    path: &Path,
    title: &str,
    spectra: &[Series],
    band_hz: (f64, f64),
    max_hz: f64,
) -> Result<(), FigureError> {
    let input = |reason: String| FigureError::Input {
        path: path.to_path_buf(),
        reason,
    };
    if !(max_hz.is_finite() && max_hz > 0.0) {
        return Err(input(format!("max_hz = {max_hz} must be finite and > 0")));
    }
    let (lo_hz, hi_hz) = band_hz;
    if !(lo_hz.is_finite() && hi_hz.is_finite() && lo_hz >= 0.0 && hi_hz > lo_hz) {
        return Err(input(format!(
            "band [{lo_hz}, {hi_hz}] Hz must be finite with 0 <= lo < hi"
        )));
    }
    if spectra.is_empty() {
        return Err(input("no spectra to draw".into()));
    }
    let mut layers = Vec::with_capacity(spectra.len() + 1);
    let mut y_range = None;
    for (i, s) in spectra.iter().enumerate() {
        check_lengths(s).map_err(&input)?;
        let valid = |x: f64, y: f64| {
            x.is_finite() && y.is_finite() && (0.0..=max_hz).contains(&x) && y > 0.0
        };
        let segments = segments(&s.x, &s.y, valid);
        y_range = union_opt(
            y_range,
            points_range(segments.iter().flatten().map(|p| p.1)),
        );
        layers.push(Layer::Line {
            segments,
            color: PALETTE[i % PALETTE.len()],
            label: s.label.clone(),
        });
    }
    let y_range = finish_range(y_range, true, false);
    let band = (lo_hz.min(max_hz), hi_hz.min(max_hz));
    if band.1 > band.0 {
        layers.insert(
            0,
            Layer::Rect {
                x: band,
                y: y_range,
                color: BAND_COLOR,
                label: format!("{} to {} Hz", fmt_num(lo_hz), fmt_num(hi_hz)),
            },
        );
    }
    let plot = Plot {
        caption: title.to_string(),
        x_desc: "frequency (Hz)".into(),
        y_desc: "power".into(),
        x_range: Some((0.0, max_hz)),
        y_range: Some(y_range),
        log_x: false,
        log_y: true,
        legend: true,
        layers,
    };
    render(path, (FIGURE_WIDTH_PX, SINGLE_HEIGHT_PX), |root| {
        draw_plot(root, &plot, (0.0, max_hz), y_range)
    })
}

// ---------------------------------------------------------------------------------
// Data preparation (no drawing).

/// A backend-independent description of one chart.
struct Plot {
    caption: String,
    x_desc: String,
    y_desc: String,
    /// Extent of the drawable data (None: nothing to draw).
    x_range: Option<(f64, f64)>,
    y_range: Option<(f64, f64)>,
    log_x: bool,
    log_y: bool,
    legend: bool,
    layers: Vec<Layer>,
}

enum Layer {
    /// Filled polygons (bands), drawn translucent.
    Fill {
        polygons: Vec<Vec<(f64, f64)>>,
        color: RGBColor,
    },
    /// A translucent rectangle with a legend entry.
    Rect {
        x: (f64, f64),
        y: (f64, f64),
        color: RGBColor,
        label: String,
    },
    /// A line broken into segments at invalid points.
    Line {
        segments: Vec<Vec<(f64, f64)>>,
        color: RGBColor,
        label: String,
    },
    /// Spike ticks (t, rank), one row high.
    Ticks {
        ticks: Vec<(f64, f64)>,
        color: RGBColor,
        label: String,
    },
    /// A horizontal grey rule across the whole x range (population separators).
    Rule { y: f64 },
}

fn check_lengths(s: &Series) -> Result<(), String> {
    if s.x.len() != s.y.len() {
        return Err(format!(
            "series '{}': x has {} values but y has {}",
            s.label,
            s.x.len(),
            s.y.len()
        ));
    }
    Ok(())
}

/// Runs of consecutive points accepted by `valid`.
fn segments(x: &[f64], y: &[f64], valid: impl Fn(f64, f64) -> bool) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (&xi, &yi) in x.iter().zip(y) {
        if valid(xi, yi) {
            current.push((xi, yi));
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn points_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

fn union(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0.min(b.0), a.1.max(b.1))
}

fn union_opt(a: Option<(f64, f64)>, b: Option<(f64, f64)>) -> Option<(f64, f64)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(union(a, b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Axis range from a data extent: padded, never empty, positive on a log axis.
/// `from_zero`: a linear range of non-negative data close to 0 starts at 0.
fn finish_range(extent: Option<(f64, f64)>, log: bool, from_zero: bool) -> (f64, f64) {
    match (extent, log) {
        (None, false) => (0.0, 1.0),
        (None, true) => (0.1, 10.0),
        (Some((lo, hi)), true) => {
            if hi > lo {
                (lo / 1.25, hi * 1.25)
            } else {
                (lo / 2.0, hi * 2.0)
            }
        }
        (Some((lo, hi)), false) => {
            if hi > lo {
                let pad = 0.05 * (hi - lo);
                let bottom = if from_zero && lo >= 0.0 && lo <= 0.25 * hi {
                    0.0
                } else {
                    lo - pad
                };
                (bottom, hi + pad)
            } else {
                let pad = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
                (lo - pad, hi + pad)
            }
        }
    }
}

fn panel_plot(panel: &Panel, x_desc: &str, log_x: bool) -> Result<Plot, String> {
    let named = |reason: String| {
        if panel.title.is_empty() {
            reason
        } else {
            format!("panel '{}', {reason}", panel.title)
        }
    };
    if panel.bands.len() > panel.series.len() {
        return Err(named(format!(
            "{} bands for {} series",
            panel.bands.len(),
            panel.series.len()
        )));
    }
    let log_y = panel.log_y;
    let x_ok = |x: f64| x.is_finite() && (!log_x || x > 0.0);
    let y_ok = |y: f64| y.is_finite() && (!log_y || y > 0.0);

    let mut x_range = None;
    let mut y_range = None;
    let mut lines = Vec::with_capacity(panel.series.len());
    let mut bands = Vec::new();
    for (i, s) in panel.series.iter().enumerate() {
        check_lengths(s).map_err(named)?;
        let color = PALETTE[i % PALETTE.len()];
        let segs = segments(&s.x, &s.y, |x, y| x_ok(x) && y_ok(y));
        x_range = union_opt(x_range, points_range(segs.iter().flatten().map(|p| p.0)));
        y_range = union_opt(y_range, points_range(segs.iter().flatten().map(|p| p.1)));
        lines.push(Layer::Line {
            segments: segs,
            color,
            label: s.label.clone(),
        });
        if let Some(Some(band)) = panel.bands.get(i) {
            if band.lo.len() != s.x.len() || band.hi.len() != s.x.len() {
                return Err(named(format!(
                    "series '{}': band has {} lo and {} hi values for {} x values",
                    s.label,
                    band.lo.len(),
                    band.hi.len(),
                    s.x.len()
                )));
            }
            // A band point needs a valid x and upper edge; a lower edge that a log axis
            // cannot show is clamped to the axis bottom below.
            let pts: Vec<(f64, f64, f64)> =
                s.x.iter()
                    .zip(band.lo.iter().zip(&band.hi))
                    .map(|(&x, (&lo, &hi))| (x, lo.min(hi), lo.max(hi)))
                    .collect();
            let valid = |&(x, lo, hi): &(f64, f64, f64)| x_ok(x) && lo.is_finite() && y_ok(hi);
            for p in pts.iter().filter(|p| valid(p)) {
                x_range = union_opt(x_range, Some((p.0, p.0)));
                y_range = union_opt(y_range, Some((p.2, p.2)));
                if y_ok(p.1) {
                    y_range = union_opt(y_range, Some((p.1, p.1)));
                }
            }
            bands.push((pts, color));
        }
    }
    let y_axis = finish_range(y_range, log_y, true);
    let mut layers = Vec::with_capacity(bands.len() + lines.len());
    for (pts, color) in bands {
        let mut polygons = Vec::new();
        let mut run: Vec<(f64, f64, f64)> = Vec::new();
        let mut flush = |run: &mut Vec<(f64, f64, f64)>| {
            if run.len() >= 2 {
                let mut poly: Vec<(f64, f64)> = run.iter().map(|p| (p.0, p.2)).collect();
                poly.extend(run.iter().rev().map(|p| (p.0, p.1.max(y_axis.0))));
                polygons.push(poly);
            }
            run.clear();
        };
        for p in pts {
            if x_ok(p.0) && p.1.is_finite() && y_ok(p.2) {
                run.push(p);
            } else {
                flush(&mut run);
            }
        }
        flush(&mut run);
        layers.push(Layer::Fill { polygons, color });
    }
    layers.extend(lines);
    Ok(Plot {
        caption: panel.title.clone(),
        x_desc: x_desc.to_string(),
        y_desc: panel.y_label.clone(),
        x_range,
        y_range,
        log_x,
        log_y,
        legend: panel.series.len() > 1,
        layers,
    })
}

// ---------------------------------------------------------------------------------
// Drawing.

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn err_str(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Registers the embedded font once; later calls return the first outcome.
fn ensure_font() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font(FONT_FAMILY, FontStyle::Normal, FONT_TTF).is_ok());
    if ok {
        Ok(())
    } else {
        Err("the embedded DejaVu Sans font could not be parsed".into())
    }
}

/// Draws into a white `size` RGB buffer, encodes it as PNG and writes it to `path`.
fn render(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Result<(), String>,
) -> Result<(), FigureError> {
    let draw_err = |reason: String| FigureError::Draw {
        path: path.to_path_buf(),
        reason,
    };
    ensure_font().map_err(draw_err)?;
    let mut buffer = vec![255u8; width as usize * height as usize * 3];
    {
        let backend = BitMapBackend::with_buffer_and_format(&mut buffer, (width, height))
            .map_err(|e| draw_err(e.to_string()))?;
        let root = backend.into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(e.to_string()))?;
        draw(&root).map_err(draw_err)?;
        root.present().map_err(|e| draw_err(e.to_string()))?;
    }
    let bytes = encode_png(&buffer, width, height).map_err(|source| FigureError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(path, bytes).map_err(|source| FigureError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Short tick labels: plain decimals in [0.01, 1e4), otherwise scientific.
fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if (1e-2..1e4).contains(&a) {
        trim(format!("{v:.3}"))
    } else {
        let s = format!("{v:.2e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => format!("{}e{exp}", trim(mantissa.to_string())),
            None => s,
        }
    }
}

fn fmt_tick(v: &f64) -> String {
    fmt_num(*v)
}

/// Draws `plot` on `area` with the given axis ranges, choosing linear or log axes.
fn draw_plot(area: &Area<'_>, plot: &Plot, x: (f64, f64), y: (f64, f64)) -> Result<(), String> {
    match (plot.log_x, plot.log_y) {
        (false, false) => draw_on(area, plot, x.0..x.1, y.0..y.1, x),
        (true, false) => draw_on(area, plot, (x.0..x.1).log_scale(), y.0..y.1, x),
        (false, true) => draw_on(area, plot, x.0..x.1, (y.0..y.1).log_scale(), x),
        (true, true) => draw_on(
            area,
            plot,
            (x.0..x.1).log_scale(),
            (y.0..y.1).log_scale(),
            x,
        ),
    }
}

fn draw_on<X, Y>(
    area: &Area<'_>,
    plot: &Plot,
    x_spec: X,
    y_spec: Y,
    (x_lo, x_hi): (f64, f64),
) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .x_label_area_size(if plot.x_desc.is_empty() { 30 } else { 50 })
        .y_label_area_size(90);
    if !plot.caption.is_empty() {
        builder.caption(&plot.caption, (FONT_FAMILY, 20));
    }
    let mut chart = builder
        .build_cartesian_2d(x_spec, y_spec)
        .map_err(err_str)?;
    chart
        .configure_mesh()
        // Fewer labels on a log axis: plotters otherwise labels 1, 2, ..., 9, 10 per decade.
        .x_labels(if plot.log_x { 6 } else { 10 })
        .y_labels(if plot.log_y { 6 } else { 10 })
        .x_desc(plot.x_desc.as_str())
        .y_desc(plot.y_desc.as_str())
        .x_label_formatter(&fmt_tick)
        .y_label_formatter(&fmt_tick)
        .label_style((FONT_FAMILY, 14))
        .axis_desc_style((FONT_FAMILY, 16))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(err_str)?;

    for layer in &plot.layers {
        match layer {
            Layer::Fill { polygons, color } => {
                let style = color.mix(0.2).filled();
                chart
                    .draw_series(polygons.iter().map(|p| Polygon::new(p.clone(), style)))
                    .map_err(err_str)?;
            }
            Layer::Rect { x, y, color, label } => {
                let style = color.mix(0.25).filled();
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x.0, y.0), (x.1, y.1)],
                        style,
                    )))
                    .map_err(err_str)?
                    .label(label.as_str())
                    .legend(move |(px, py)| {
                        Rectangle::new([(px, py - 6), (px + 20, py + 6)], style)
                    });
            }
            Layer::Line {
                segments,
                color,
                label,
            } => {
                let style = color.stroke_width(LINE_PX);
                // A lone point is a dot, since a one-point path draws nothing.
                let dot = color.filled();
                chart
                    .draw_series(
                        segments
                            .iter()
                            .filter(|s| s.len() == 1)
                            .map(|s| Circle::new(s[0], 2, dot)),
                    )
                    .map_err(err_str)?;
                chart
                    .draw_series(
                        segments
                            .iter()
                            .filter(|s| s.len() > 1)
                            .map(|s| PathElement::new(s.clone(), style)),
                    )
                    .map_err(err_str)?
                    .label(label.as_str())
                    .legend(move |(px, py)| PathElement::new(vec![(px, py), (px + 20, py)], style));
            }
            Layer::Ticks {
                ticks,
                color,
                label,
            } => {
                // A 1-px vertical stroke per spike (a zero-width rectangle draws nothing).
                let style = color.stroke_width(1);
                let key = color.filled();
                chart
                    .draw_series(
                        ticks.iter().map(|&(t, r)| {
                            PathElement::new(vec![(t, r - 0.4), (t, r + 0.4)], style)
                        }),
                    )
                    .map_err(err_str)?
                    .label(label.as_str())
                    .legend(move |(px, py)| Rectangle::new([(px, py - 5), (px + 12, py + 5)], key));
            }
            Layer::Rule { y } => {
                let style = BLACK.mix(0.35).stroke_width(1);
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x_lo, *y), (x_hi, *y)],
                        style,
                    )))
                    .map_err(err_str)?;
            }
        }
    }
    if plot.legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font((FONT_FAMILY, 14))
            .draw()
            .map_err(err_str)?;
    }
    Ok(())
}
