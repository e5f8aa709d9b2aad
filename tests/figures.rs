//! PNG figures: files are real PNGs of the stated size, data and text are drawn, bad
//! input and unwritable paths are errors that name the series or the path.

use std::path::{Path, PathBuf};

use ketasim::figures::{raster, spectrum, stacked_panels, Band, FigureError, Panel, Series};

/// A fresh, empty folder for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ketasim-figures-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Width and height from the IHDR chunk, after checking the PNG signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 24,
        "file too short for a PNG: {} bytes",
        bytes.len()
    );
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk is IHDR");
    let be = |o: usize| u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    (be(16), be(20))
}

/// RGB pixels, row-major.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Image {
    fn load(path: &Path) -> Image {
        let bytes = std::fs::read(path).expect("read PNG");
        let (w, h) = png_size(&bytes);
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("PNG header decodes");
        let mut rgb = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut rgb).expect("PNG data decodes");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!((info.width, info.height), (w, h));
        rgb.truncate(info.buffer_size());
        Image {
            width: w as usize,
            height: h as usize,
            rgb,
        }
    }

    fn pixels(&self, rows: std::ops::Range<usize>) -> impl Iterator<Item = [u8; 3]> + '_ {
        self.rgb[rows.start * self.width * 3..rows.end.min(self.height) * self.width * 3]
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
    }

    /// Pixels that are not white in a rectangle.
    fn inked_in(&self, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) -> usize {
        rows.flat_map(|r| cols.clone().map(move |c| (r, c)))
            .filter(|&(r, c)| {
                let o = 3 * (r * self.width + c);
                self.rgb[o..o + 3] != [255, 255, 255]
            })
            .count()
    }

    /// Pixels that are clearly coloured: data, never the greys of axes, grid and text.
    fn coloured(&self, rows: std::ops::Range<usize>) -> usize {
        self.pixels(rows)
            .filter(|p| {
                let (max, min) = (p.iter().max().unwrap_or(&0), p.iter().min().unwrap_or(&0));
                max - min > 60
            })
            .count()
    }

    /// Pixels that are not white.
    fn inked(&self, rows: std::ops::Range<usize>) -> usize {
        self.pixels(rows).filter(|p| *p != [255, 255, 255]).count()
    }
}

fn series(label: &str, x: Vec<f64>, y: Vec<f64>) -> Series {
    Series {
        label: label.into(),
        x,
        y,
    }
}

fn minutes() -> Vec<f64> {
    (0..=120).map(|i| i as f64 * 0.5).collect()
}

fn demo_panels() -> Vec<Panel> {
    let t = minutes();
    let e: Vec<f64> = t.iter().map(|m| 5.0 + 3.0 * (m / 10.0).sin()).collect();
    let i: Vec<f64> = t.iter().map(|m| 12.0 - 4.0 * (m / 12.0).cos()).collect();
    let glu: Vec<f64> = t.iter().map(|m| 1.0 + 0.02 * m).collect();
    // Log axis: a zero, a negative value and a NaN must be skipped, not fail.
    let mut conc: Vec<f64> = t.iter().map(|m| 10.0 * (-m / 20.0).exp()).collect();
    conc[0] = 0.0;
    conc[1] = -1.0;
    conc[50] = f64::NAN;
    vec![
        Panel {
            title: "Population rates".into(),
            y_label: "rate (Hz)".into(),
            series: vec![series("E", t.clone(), e.clone()), series("I", t.clone(), i)],
            bands: vec![Some(Band {
                lo: e.iter().map(|v| v - 1.0).collect(),
                hi: e.iter().map(|v| v + 1.0).collect(),
            })],
            log_y: false,
        },
        Panel {
            title: "Glutamate".into(),
            y_label: "glutamate (uM)".into(),
            series: vec![series("glutamate", t.clone(), glu)],
            bands: vec![],
            log_y: false,
        },
        Panel {
            title: "Ketamine".into(),
            y_label: "concentration (uM)".into(),
            series: vec![series("ketamine", t, conc)],
            bands: vec![None],
            log_y: true,
        },
    ]
}

#[test]
fn stacked_panels_write_a_png_of_the_stated_size_with_data_and_text() {
    let dir = temp_dir("stacked");
    let path = dir.join("timecourse.png");
    stacked_panels(
        &path,
        "Ketamine 10 mg/kg",
        "time (min)",
        &demo_panels(),
        false,
    )
    .expect("figure written");
    let bytes = std::fs::read(&path).expect("read");
    assert_eq!(png_size(&bytes), (1200, 3 * 300 + 50));
    let img = Image::load(&path);
    assert!(img.coloured(0..img.height) > 3000, "series and band drawn");
    assert!(
        img.inked(0..50) > 300,
        "title text drawn: {} inked pixels",
        img.inked(0..50)
    );

    // Without a title there is no title strip; the panels still carry text and data.
    let untitled = dir.join("untitled.png");
    stacked_panels(&untitled, "", "time (min)", &demo_panels(), false).expect("written");
    let img = Image::load(&untitled);
    assert_eq!((img.width, img.height), (1200, 900));
    assert!(img.coloured(0..img.height) > 3000);

    // Log x with x = 0 points: skipped, not an error.
    let logx = dir.join("logx.png");
    stacked_panels(&logx, "log x", "time (min)", &demo_panels(), true).expect("written");
    assert!(Image::load(&logx).coloured(0..950) > 2000);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_title_is_rendered_as_text() {
    let dir = temp_dir("title");
    let spikes: Vec<(f64, u32)> = (0..2000).map(|k| (k as f64 * 0.5, k % 40)).collect();
    let pops = vec![("E".to_string(), 0, 32), ("I".to_string(), 32, 8)];
    let titled = dir.join("titled.png");
    let untitled = dir.join("untitled.png");
    raster(&titled, "Spike raster", &spikes, &pops, 0.0, 1000.0, 100).expect("written");
    raster(&untitled, "", &spikes, &pops, 0.0, 1000.0, 100).expect("written");
    let (a, b) = (
        std::fs::read(&titled).expect("read"),
        std::fs::read(&untitled).expect("read"),
    );
    assert_ne!(a, b, "a title changes the image");
    let (a, b) = (Image::load(&titled), Image::load(&untitled));
    // The caption is centred in the top strip (the legend sits at the right); without
    // a caption nothing is drawn above the plot frame there.
    let (title_a, title_b) = (a.inked_in(0..35, 400..800), b.inked_in(0..12, 400..800));
    assert!(title_a > 200, "title glyphs: {title_a} inked pixels");
    assert_eq!(title_b, 0, "no title, nothing above the plot frame");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn raster_draws_spikes_in_the_window_only() {
    let dir = temp_dir("raster");
    let spikes: Vec<(f64, u32)> = (0..20_000)
        .map(|k| (k as f64 * 0.05, (k * 7919) % 1000))
        .chain([(f64::NAN, 3), (f64::INFINITY, 4), (500.0, 5000)])
        .collect();
    let pops = vec![
        ("E".to_string(), 0, 800),
        ("I".to_string(), 800, 200),
        ("empty".to_string(), 1000, 0),
    ];
    let inside = dir.join("inside.png");
    raster(&inside, "raster", &spikes, &pops, 0.0, 1000.0, 100).expect("written");
    let bytes = std::fs::read(&inside).expect("read");
    assert_eq!(png_size(&bytes), (1200, 600));
    let shown = Image::load(&inside).coloured(0..600);

    // Same populations, a window with no spikes: only the legend keys are coloured.
    let outside = dir.join("outside.png");
    raster(&outside, "raster", &spikes, &pops, 2000.0, 3000.0, 100).expect("written");
    let legend_only = Image::load(&outside).coloured(0..600);
    assert!(
        shown > legend_only + 5000,
        "spikes drawn: {shown} coloured pixels vs {legend_only} with none in the window"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spectrum_draws_on_a_log_axis_with_the_band() {
    let dir = temp_dir("spectrum");
    let f: Vec<f64> = (0..=500).map(|i| i as f64 * 0.5).collect();
    let p1: Vec<f64> = f.iter().map(|x| 1.0 / (1.0 + x * x)).collect();
    let mut p2: Vec<f64> = f
        .iter()
        .map(|x| 1.0 / (1.0 + x) + 0.05 * (-(x - 45.0).powi(2) / 50.0).exp())
        .collect();
    p2[10] = 0.0; // skipped on the log axis
    let spectra = vec![series("baseline", f.clone(), p1), series("ketamine", f, p2)];
    let path = dir.join("psd.png");
    spectrum(&path, "Power spectrum", &spectra, (30.0, 80.0), 150.0).expect("written");
    let bytes = std::fs::read(&path).expect("read");
    assert_eq!(png_size(&bytes), (1200, 600));
    let img = Image::load(&path);
    // The shaded band alone covers ~1/3 of the plot width at full height.
    assert!(img.coloured(0..600) > 50_000, "band and spectra drawn");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn empty_and_invalid_series_are_skipped_not_fatal() {
    let dir = temp_dir("empty");
    let panels = vec![Panel {
        title: "nothing".into(),
        y_label: "y".into(),
        series: vec![
            series("empty", vec![], vec![]),
            series("nan", vec![f64::NAN, 1.0], vec![1.0, f64::INFINITY]),
        ],
        bands: vec![],
        log_y: true,
    }];
    let path = dir.join("empty.png");
    stacked_panels(&path, "empty", "t", &panels, false).expect("written");
    let img = Image::load(&path);
    assert_eq!((img.width, img.height), (1200, 350));
    // Only the two legend keys are coloured.
    assert!(img.coloured(0..350) < 400, "{}", img.coloured(0..350));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mismatched_lengths_name_the_series() {
    let dir = temp_dir("mismatch");
    let path = dir.join("bad.png");
    let mut panels = demo_panels();
    panels[1]
        .series
        .push(series("astrocytes", vec![0.0, 1.0, 2.0], vec![1.0, 2.0]));
    let err = stacked_panels(&path, "t", "x", &panels, false).expect_err("mismatch is an error");
    assert!(matches!(err, FigureError::Input { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("astrocytes") && msg.contains("bad.png"),
        "{msg}"
    );
    assert!(!path.exists(), "no file written on bad input");

    let mut panels = demo_panels();
    panels[0].bands[0] = Some(Band {
        lo: vec![0.0; 3],
        hi: vec![1.0; 3],
    });
    let msg = stacked_panels(&path, "t", "x", &panels, false)
        .expect_err("band length mismatch")
        .to_string();
    assert!(msg.contains("'E'") && msg.contains("band"), "{msg}");

    let msg = spectrum(
        &path,
        "psd",
        &[series("gamma", vec![1.0, 2.0], vec![1.0])],
        (30.0, 80.0),
        100.0,
    )
    .expect_err("mismatch")
    .to_string();
    assert!(msg.contains("gamma"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_are_reported() {
    let dir = temp_dir("args");
    let path = dir.join("bad.png");
    let pops = vec![("E".to_string(), 0, 10)];
    let spikes = [(1.0, 0)];
    for (t0, t1, max) in [(10.0, 10.0, 5), (f64::NAN, 10.0, 5), (0.0, 10.0, 0)] {
        let err = raster(&path, "r", &spikes, &pops, t0, t1, max).expect_err("bad raster");
        assert!(matches!(err, FigureError::Input { .. }), "{err:?}");
    }
    assert!(raster(&path, "r", &spikes, &[], 0.0, 10.0, 5).is_err());
    assert!(stacked_panels(&path, "t", "x", &[], false).is_err());
    let s = [series("s", vec![1.0], vec![1.0])];
    assert!(spectrum(&path, "p", &[], (30.0, 80.0), 100.0).is_err());
    assert!(spectrum(&path, "p", &s, (80.0, 30.0), 100.0).is_err());
    assert!(spectrum(&path, "p", &s, (30.0, 80.0), 0.0).is_err());
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_path_is_an_error_naming_it() {
    let dir = temp_dir("unwritable");
    let path = dir.join("no-such-folder").join("figure.png");
    let err = spectrum(
        &path,
        "psd",
        &[series("s", vec![1.0, 2.0], vec![1.0, 0.5])],
        (30.0, 80.0),
        100.0,
    )
    .expect_err("missing folder");
    assert!(matches!(err, FigureError::Write { .. }), "{err:?}");
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");

    let err = raster(&path, "r", &[(1.0, 0)], &[("E".into(), 0, 1)], 0.0, 2.0, 1)
        .expect_err("missing folder");
    assert!(err.to_string().contains("no-such-folder"), "{err}");
    let err = stacked_panels(&path, "t", "x", &demo_panels(), false).expect_err("missing");
    assert!(err.to_string().contains("no-such-folder"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
