//! The pictures of `digits eval --plots`, drawn with plotters into PNG files: the confusion
//! matrix as a heatmap, a grid of test images with their predictions, and the training curves.
//!
//! Text: plotters' default text support (its `ttf` feature, through font-kit) finds fonts with
//! fontconfig and rasterizes them with FreeType at run time, so on a machine without fonts (a
//! fresh Debian CI image) every caption fails. Instead the `ab_glyph` feature rasterizes in pure
//! Rust from a font compiled into the binary: DejaVu Sans Mono from Debian's fonts-dejavu-core,
//! unmodified (Bitstream Vera license; see `host/assets/fonts/LICENSE-DejaVu.txt`). The
//! monospaced face is the smallest DejaVu Sans (343 KB) and lines up the counts of the heatmap.
//!
//! PNG: plotters draws into an RGB buffer, and the `image` crate the host already uses encodes
//! it (plotters' own `bitmap_encoder` would pull in a second, older `image`).

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result};
use image::ImageEncoder;
use image::codecs::png::PngEncoder;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::data::Split;
use crate::evaluate::metrics::CLASSES;
use crate::model_io;
use crate::train::EpochReport;

/// The embedded font (see the module documentation).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");
/// The family name plotters asks for by default (chart captions, axis labels, legends).
const FAMILY: &str = "sans-serif";

/// Size of `confusion.png` in pixels.
pub const CONFUSION_SIZE: (u32, u32) = (860, 700);
/// Size of `digits.png` with a full 10 x 10 grid.
pub const DIGITS_SIZE: (u32, u32) = (1020, 1246);
/// Size of `curves.png`.
pub const CURVES_SIZE: (u32, u32) = (1200, 500);

/// Where the heatmap's grid starts, and its cell size.
const HEAT_LEFT: i32 = 150;
const HEAT_TOP: i32 = 110;
const HEAT_CELL: i32 = 56;
/// The colour scale right of the heatmap: its left edge and width; the swatch for zero below it.
const SCALE_LEFT: i32 = HEAT_LEFT + HEAT_CELL * CLASSES as i32 + 28;
const SCALE_WIDTH: i32 = 22;
const ZERO_SWATCH: i32 = 22;

/// The digit grid: columns, tile size, margin, header height, image magnification.
const GRID_COLUMNS: usize = 10;
const TILE_W: i32 = 100;
const TILE_H: i32 = 118;
const GRID_MARGIN: i32 = 10;
const GRID_HEADER: i32 = 56;
const SCALE: i32 = 3;

/// Blue and red for the training curves (train, and mistakes in the digit grid); the classic
/// matplotlib pair.
const RIGHT: RGBColor = RGBColor(31, 119, 180);
const WRONG: RGBColor = RGBColor(214, 39, 40);
const DARK: RGBColor = RGBColor(40, 40, 40);
const FAINT: RGBColor = RGBColor(190, 190, 190);

/// Registers the embedded font with plotters, once per process.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let ok = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok();
        assert!(ok, "the embedded font is a valid TrueType file");
    });
}

/// Draws a `size` picture with `draw` and writes it to `path` as a PNG (atomically).
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<()>,
) -> Result<()> {
    register_font();
    let (w, h) = size;
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root).with_context(|| format!("cannot draw {}", path.display()))?;
        root.present()?;
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)?;
    model_io::write_atomically(path, &png)
}

/// A text style of the embedded font, anchored at `pos`.
fn text(size: u32, color: RGBColor, pos: Pos) -> TextStyle<'static> {
    // Built field by field: `TextStyle::color` would tie the style to a borrow of `color`.
    TextStyle {
        font: (FAMILY, size).into_font(),
        color: color.to_backend_color(),
        pos,
    }
}

/// The heatmap's colour of a count: white for none; else viridis (dark purple to yellow, the
/// same lightness steps everywhere, readable in grey and by the colour-blind) on a log scale
/// from 1 to `max`, so that a single mistake is as dark as a colour gets while the diagonal's
/// thousand images are bright.
fn heat(n: u64, max: u64) -> RGBColor {
    if n == 0 {
        WHITE
    } else {
        viridis(heat_level(n, max))
    }
}

/// Matplotlib's viridis at `t` in 0..=1: linear between eight of its colours (the same stops as
/// plotters' `ViridisRGB`, whose feature pulls in a whole palette).
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 8] = [
        (68, 1, 84),
        (70, 50, 127),
        (54, 92, 141),
        (39, 127, 143),
        (31, 162, 136),
        (74, 194, 110),
        (160, 219, 57),
        (254, 232, 37),
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - k as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Where a count of at least 1 sits on the colour scale, 0 (one) to 1 (`max`).
fn heat_level(n: u64, max: u64) -> f64 {
    let top = (max.max(2) as f64).ln();
    ((n.max(1) as f64).ln() / top).clamp(0.0, 1.0)
}

/// Text that reads on `fill`: white on dark colours, dark on light ones (by luma).
fn ink_on(fill: RGBColor) -> RGBColor {
    let luma = 0.299 * fill.0 as f64 + 0.587 * fill.1 as f64 + 0.114 * fill.2 as f64;
    if luma < 140.0 { WHITE } else { DARK }
}

/// The counts labelled on the colour scale: 1, 2, 5, 10, 20, 50, ... up to `max`, only powers of
/// ten past three decades.
fn heat_ticks(max: u64) -> Vec<u64> {
    let steps: &[u64] = if max >= 1000 { &[1] } else { &[1, 2, 5] };
    let mut ticks = Vec::new();
    let mut decade = 1u64;
    while decade <= max {
        ticks.extend(steps.iter().map(|s| s * decade).filter(|&t| t <= max));
        decade = decade.saturating_mul(10);
    }
    ticks
}

/// The label of row `t` of the heatmap: the digit, or the number and name of a Fashion-MNIST
/// class (the columns only have room for numbers).
fn row_label(names: &[&str; CLASSES], t: usize) -> String {
    if names[t] == t.to_string() {
        names[t].to_string()
    } else {
        format!("{t} {}", names[t])
    }
}

/// `confusion.png`: the confusion matrix as a heatmap with the counts in the cells, true class
/// down, predicted class across, and its colour scale on the right.
pub fn confusion(
    path: &Path,
    m: &[[u64; CLASSES]; CLASSES],
    names: &[&str; CLASSES],
) -> Result<()> {
    render(path, CONFUSION_SIZE, |root| {
        let centre = Pos::new(HPos::Center, VPos::Center);
        let grid = HEAT_CELL * CLASSES as i32;
        let total: u64 = m.iter().flatten().sum();
        let right: u64 = (0..CLASSES).map(|k| m[k][k]).sum();
        root.draw_text(
            &format!(
                "confusion matrix: {right} of {total} right ({:.2}%)",
                100.0 * right as f64 / total.max(1) as f64
            ),
            &text(20, DARK, centre),
            (HEAT_LEFT + grid / 2, 22),
        )?;
        root.draw_text(
            "predicted class",
            &text(17, DARK, centre),
            (HEAT_LEFT + grid / 2, 60),
        )?;
        // Just left of the row labels (DejaVu Sans Mono advances 0.6 em: 9 px at 15 px).
        let widest = (0..CLASSES)
            .map(|t| row_label(names, t).len())
            .max()
            .unwrap_or(1) as i32;
        root.draw_text(
            "true class",
            &text(17, DARK, centre).transform(FontTransform::Rotate270),
            (
                (HEAT_LEFT - 8 - 9 * widest - 18).max(12),
                HEAT_TOP + grid / 2,
            ),
        )?;
        let max = m.iter().flatten().copied().max().unwrap_or(0);
        for (t, row) in m.iter().enumerate() {
            let y = HEAT_TOP + t as i32 * HEAT_CELL;
            root.draw_text(
                &row_label(names, t),
                &text(15, DARK, Pos::new(HPos::Right, VPos::Center)),
                (HEAT_LEFT - 8, y + HEAT_CELL / 2),
            )?;
            for (p, &n) in row.iter().enumerate() {
                let x = HEAT_LEFT + p as i32 * HEAT_CELL;
                let fill = heat(n, max);
                root.draw(&Rectangle::new(
                    [(x, y), (x + HEAT_CELL, y + HEAT_CELL)],
                    fill.filled(),
                ))?;
                let ink = if n == 0 { FAINT } else { ink_on(fill) };
                root.draw_text(
                    &n.to_string(),
                    &text(15, ink, centre),
                    (x + HEAT_CELL / 2, y + HEAT_CELL / 2),
                )?;
            }
        }
        draw_heat_scale(root, max)?;
        for p in 0..CLASSES as i32 {
            root.draw_text(
                &p.to_string(),
                &text(15, DARK, centre),
                (HEAT_LEFT + p * HEAT_CELL + HEAT_CELL / 2, HEAT_TOP - 14),
            )?;
        }
        // Cell borders last, so that neighbouring fills do not cover them.
        for k in 0..=CLASSES as i32 {
            let (a, b) = (HEAT_LEFT + k * HEAT_CELL, HEAT_TOP + k * HEAT_CELL);
            let line = RGBColor(225, 225, 225);
            root.draw(&PathElement::new(
                vec![(a, HEAT_TOP), (a, HEAT_TOP + grid)],
                line,
            ))?;
            root.draw(&PathElement::new(
                vec![(HEAT_LEFT, b), (HEAT_LEFT + grid, b)],
                line,
            ))?;
        }
        Ok(())
    })
}

/// The colour scale right of the heatmap: viridis from 1 (bottom) to `max` (top) on a log
/// scale, its ticks, and a white swatch for zero below.
fn draw_heat_scale(root: &DrawingArea<BitMapBackend, Shift>, max: u64) -> Result<()> {
    let grid = HEAT_CELL * CLASSES as i32;
    // The bar spans the grid less room for the zero swatch below it.
    let (top, bottom) = (HEAT_TOP, HEAT_TOP + grid - ZERO_SWATCH - 14);
    let height = bottom - top;
    for y in top..bottom {
        let level = (bottom - 1 - y) as f64 / (height - 1) as f64;
        root.draw(&Rectangle::new(
            [(SCALE_LEFT, y), (SCALE_LEFT + SCALE_WIDTH, y + 1)],
            viridis(level).filled(),
        ))?;
    }
    let frame = RGBColor(150, 150, 150);
    root.draw(&Rectangle::new(
        [(SCALE_LEFT, top), (SCALE_LEFT + SCALE_WIDTH, bottom)],
        frame,
    ))?;
    let label = Pos::new(HPos::Left, VPos::Center);
    let max = max.max(2);
    for tick in heat_ticks(max) {
        let y = bottom - 1 - (heat_level(tick, max) * (height - 1) as f64).round() as i32;
        root.draw(&PathElement::new(
            vec![
                (SCALE_LEFT + SCALE_WIDTH, y),
                (SCALE_LEFT + SCALE_WIDTH + 5, y),
            ],
            DARK,
        ))?;
        root.draw_text(
            &tick.to_string(),
            &text(13, DARK, label),
            (SCALE_LEFT + SCALE_WIDTH + 8, y),
        )?;
    }
    let zero = HEAT_TOP + grid - ZERO_SWATCH;
    root.draw(&Rectangle::new(
        [
            (SCALE_LEFT, zero),
            (SCALE_LEFT + SCALE_WIDTH, zero + ZERO_SWATCH),
        ],
        frame,
    ))?;
    root.draw_text(
        "0",
        &text(13, DARK, label),
        (SCALE_LEFT + SCALE_WIDTH + 8, zero + ZERO_SWATCH / 2),
    )?;
    root.draw_text(
        "images (log scale)",
        &text(14, DARK, Pos::new(HPos::Center, VPos::Center)).transform(FontTransform::Rotate270),
        (SCALE_LEFT + SCALE_WIDTH + 56, HEAT_TOP + grid / 2),
    )?;
    Ok(())
}

/// `digits.png`: the test images `tiles` (indices into `split`) in a grid, magnified, each
/// captioned "true → predicted"; misclassified ones in a red frame.
pub fn digits(path: &Path, split: &Split, predicted: &[u8], tiles: &[usize]) -> Result<()> {
    let rows = tiles.len().div_ceil(GRID_COLUMNS) as i32;
    let size = (
        DIGITS_SIZE.0,
        (GRID_HEADER + rows * TILE_H + GRID_MARGIN) as u32,
    );
    let is_wrong = |i: usize| predicted[i] != split.labels[i];
    let shown_wrong = tiles.iter().filter(|&&i| is_wrong(i)).count();
    let all_wrong = (0..split.labels.len()).filter(|&i| is_wrong(i)).count();
    render(path, size, |root| {
        let left = Pos::new(HPos::Left, VPos::Center);
        root.draw_text(
            &format!(
                "{} of the {} test images; {shown_wrong} of the {all_wrong} misclassified (red frames)",
                tiles.len(),
                split.labels.len()
            ),
            &text(18, DARK, left),
            (GRID_MARGIN + 4, 16),
        )?;
        root.draw_text(
            "the first mistakes and the first images, in test-set order; \
             caption: true class \u{2192} predicted",
            &text(15, DARK, left),
            (GRID_MARGIN + 4, 40),
        )?;
        for (n, &i) in tiles.iter().enumerate() {
            let x0 = GRID_MARGIN + (n % GRID_COLUMNS) as i32 * TILE_W;
            let y0 = GRID_HEADER + (n / GRID_COLUMNS) as i32 * TILE_H;
            let (ix, iy) = (x0 + 8, y0 + 4);
            // Dark ink on white paper, one square per MNIST pixel.
            for (k, &v) in split.images[i].iter().enumerate() {
                if v == 0 {
                    continue;
                }
                let (px, py) = ((k % 28) as i32, (k / 28) as i32);
                let (x, y) = (ix + px * SCALE, iy + py * SCALE);
                let g = 255 - v;
                root.draw(&Rectangle::new(
                    [(x, y), (x + SCALE, y + SCALE)],
                    RGBColor(g, g, g).filled(),
                ))?;
            }
            let side = 28 * SCALE;
            let wrong = is_wrong(i);
            let frame = if wrong {
                WRONG.stroke_width(3)
            } else {
                RGBColor(210, 210, 210).stroke_width(1)
            };
            root.draw(&Rectangle::new(
                [(ix - 3, iy - 3), (ix + side + 3, iy + side + 3)],
                frame,
            ))?;
            root.draw_text(
                &format!("{} \u{2192} {}", split.labels[i], predicted[i]),
                &text(
                    16,
                    if wrong { WRONG } else { DARK },
                    Pos::new(HPos::Center, VPos::Center),
                ),
                (x0 + TILE_W / 2, iy + side + 17),
            )?;
        }
        Ok(())
    })
}

/// `curves.png`: training and validation loss (left) and accuracy (right) per epoch, from the
/// metrics file of `digits train --metrics`.
pub fn curves(path: &Path, reports: &[EpochReport]) -> Result<()> {
    let first = reports.iter().map(|r| r.epoch).min().unwrap_or(1);
    // A one-epoch run still needs a non-empty axis.
    let last = reports
        .iter()
        .map(|r| r.epoch)
        .max()
        .unwrap_or(1)
        .max(first + 1);
    let ticks = (last - first + 1).min(12) as usize;
    // Epochs without a value (no validation split) are left out.
    let series = |f: fn(&EpochReport) -> Option<f64>, scale: f64| -> Vec<(u32, f64)> {
        reports
            .iter()
            .filter_map(|r| Some((r.epoch, scale * f(r)?)))
            .collect()
    };
    let train_loss = series(|r| Some(r.train_loss), 1.0);
    let val_loss = series(|r| r.val_loss, 1.0);
    let train_acc = series(|r| Some(r.train_accuracy), 100.0);
    let val_acc = series(|r| r.val_accuracy, 100.0);
    let top_loss = train_loss
        .iter()
        .chain(&val_loss)
        .map(|p| p.1)
        .fold(0.0, f64::max)
        * 1.1;
    let low_acc = train_acc
        .iter()
        .chain(&val_acc)
        .map(|p| p.1)
        .fold(100.0, f64::min);
    let low_acc = (low_acc - 1.0).floor().max(0.0);
    let orange = RGBColor(255, 127, 14);

    render(path, CURVES_SIZE, |root| {
        let (left, right) = root.split_horizontally(CURVES_SIZE.0 / 2);
        let panels = [
            (
                &left,
                "loss per epoch",
                "mean cross-entropy",
                0.0..top_loss.max(1e-6),
                [&train_loss, &val_loss],
                // Where the falling loss curves usually leave room.
                SeriesLabelPosition::UpperRight,
            ),
            (
                &right,
                "accuracy per epoch",
                "accuracy (%)",
                low_acc..100.0,
                [&train_acc, &val_acc],
                // Where the rising accuracy curves usually leave room.
                SeriesLabelPosition::LowerRight,
            ),
        ];
        for (area, caption, y_desc, y_range, [train, val], legend) in panels {
            let y_span = y_range.end - y_range.start;
            let mut chart = ChartBuilder::on(area)
                .caption(caption, (FAMILY, 20))
                .margin(12)
                .x_label_area_size(42)
                .y_label_area_size(64)
                .build_cartesian_2d(first..last, y_range)?;
            chart
                .configure_mesh()
                .x_labels(ticks)
                .x_desc("epoch")
                .y_desc(y_desc)
                .light_line_style(RGBColor(238, 238, 238))
                .y_label_formatter(&|v| format_tick(*v, y_span))
                .label_style((FAMILY, 14))
                .axis_desc_style((FAMILY, 15))
                .draw()?;
            for (points, name, color) in [(train, "train", RIGHT), (val, "validation", orange)]
                .into_iter()
                .filter(|(points, ..)| !points.is_empty())
            {
                chart
                    .draw_series(
                        LineSeries::new(points.iter().copied(), color.stroke_width(2))
                            .point_size(3),
                    )?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(legend)
                .label_font((FAMILY, 14))
                .background_style(WHITE.mix(0.85))
                .border_style(FAINT)
                .draw()?;
        }
        Ok(())
    })
}

/// A y-axis tick with as many decimals as the tick spacing needs (plotters' default prints
/// "100.0" on a 90-100 axis). Plotters puts eight to ten ticks on an axis of this height.
fn format_tick(v: f64, span: f64) -> String {
    let step = span / 8.0;
    let decimals = if step > 0.0 {
        (-step.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        0
    };
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_size(path: &Path) -> (u32, u32) {
        image::image_dimensions(path).unwrap()
    }

    fn luma(p: &image::Rgb<u8>) -> f64 {
        0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
    }

    #[test]
    fn a_single_mistake_shows_and_the_scale_is_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = [[0u64; CLASSES]; CLASSES];
        for (k, row) in m.iter_mut().enumerate() {
            row[k] = 980 + k as u64;
        }
        m[0][1] = 1;
        m[4][9] = 12;
        let names = crate::evaluate::metrics::class_names(crate::data::DatasetKind::Mnist);
        let path = dir.path().join("confusion.png");
        confusion(&path, &m, &names).unwrap();
        let png = image::open(&path).unwrap().to_rgb8();
        assert_eq!(png.dimensions(), CONFUSION_SIZE);
        // A cell's corner, clear of its number and of the grid lines.
        let cell = |t: i32, p: i32| {
            let (x, y) = (HEAT_LEFT + p * HEAT_CELL + 4, HEAT_TOP + t * HEAT_CELL + 4);
            *png.get_pixel(x as u32, y as u32)
        };
        let (one, zero, twelve, right) = (cell(0, 1), cell(0, 2), cell(4, 9), cell(3, 3));
        assert_eq!(zero, image::Rgb([255, 255, 255]), "a zero cell is white");
        assert!(luma(&one) < 80.0, "one mistake is dark: {one:?}");
        assert!(luma(&right) > 180.0, "the diagonal is bright: {right:?}");
        assert!(
            luma(&one) < luma(&twelve) && luma(&twelve) < luma(&right),
            "brighter with more images: {one:?} {twelve:?} {right:?}"
        );
        // The scale: dark at the bottom (1), bright at the top (the largest count).
        let bar = |y: i32| *png.get_pixel((SCALE_LEFT + SCALE_WIDTH / 2) as u32, y as u32);
        let (top, bottom) = (bar(HEAT_TOP + 2), bar(HEAT_TOP + 400));
        assert!(
            luma(&top) > 180.0 && luma(&bottom) < luma(&top),
            "{top:?} {bottom:?}"
        );
        assert_eq!(heat_ticks(989), [1, 2, 5, 10, 20, 50, 100, 200, 500]);
        assert_eq!(heat_ticks(5000), [1, 10, 100, 1000]);
        assert_eq!(heat(1, 989), RGBColor(68, 1, 84));
        assert_eq!(heat(989, 989), RGBColor(254, 232, 37));
        assert_eq!(viridis(0.5 / 7.0), RGBColor(69, 26, 106));
    }

    #[test]
    fn pictures_are_pngs_of_the_documented_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = [[0u64; CLASSES]; CLASSES];
        for (k, row) in m.iter_mut().enumerate() {
            row[k] = 90;
            row[(k + 1) % CLASSES] = 10;
        }
        let names = crate::evaluate::metrics::class_names(crate::data::DatasetKind::Mnist);
        let path = dir.path().join("confusion.png");
        confusion(&path, &m, &names).unwrap();
        assert_eq!(png_size(&path), CONFUSION_SIZE);

        let mut image = [0u8; 784];
        image[300..320].fill(255);
        let split = Split {
            images: vec![image; 120],
            labels: (0..120).map(|i| (i % 10) as u8).collect(),
        };
        let predicted: Vec<u8> = (0..120).map(|i| (i % 7) as u8).collect();
        let tiles: Vec<usize> = (0..100).collect();
        let path = dir.path().join("digits.png");
        digits(&path, &split, &predicted, &tiles).unwrap();
        assert_eq!(png_size(&path), DIGITS_SIZE);

        let reports: Vec<EpochReport> = (1..=3)
            .map(|e| EpochReport {
                epoch: e,
                lr: 0.05,
                train_loss: 1.0 / e as f64,
                train_accuracy: 0.8 + 0.05 * e as f64,
                val_loss: Some(1.1 / e as f64),
                val_accuracy: Some(0.78 + 0.05 * e as f64),
                seconds: 1.0,
                samples_per_second: 1000.0,
            })
            .collect();
        let path = dir.path().join("curves.png");
        curves(&path, &reports).unwrap();
        assert_eq!(png_size(&path), CURVES_SIZE);
        // One epoch only: still a picture.
        assert_eq!(format_tick(95.0, 9.0), "95");
        assert_eq!(format_tick(0.15, 0.25), "0.15");
        assert_eq!(format_tick(97.5, 3.0), "97.5");
        curves(&path, &reports[..1]).unwrap();
        assert_eq!(png_size(&path), CURVES_SIZE);
    }
}
