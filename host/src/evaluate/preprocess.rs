//! From a photo or scan of one digit to the 28x28 picture the network was trained on.
//!
//! MNIST was made like this: white ink (255) on black (0), the digit scaled to fit a 20x20 box
//! keeping its aspect ratio (anti-aliased, so edges are gray), then placed in a 28x28 field so
//! that the center of mass of the ink falls on the center. (Measured on the test set: the mean
//! center of mass is (14.00, 13.99) in pixel-index coordinates.) A person's own picture is
//! anything but: any size, usually dark ink on light paper, with paper that is not quite white,
//! uneven lighting, JPEG noise, the digit anywhere. [`to_mnist`] undoes all that:
//!
//! 1. very large pictures are first averaged down to at most [`WORK_SIDE`] pixels a side (the
//!    result is 20 pixels tall; more detail only costs time and memory);
//! 2. the paper's brightness is estimated from the border of the picture as a plane (a robust
//!    fit, so a slight lighting gradient is removed and ink touching the border is ignored);
//! 3. the ink is whatever differs from the paper, on the side (darker or lighter) where most of
//!    the difference is: dark ink on light paper and light chalk on a dark board both work;
//! 4. the difference is stretched: below the noise level (measured on the border) it is 0, and
//!    the strongest third of the ink becomes full intensity, as in MNIST;
//! 5. small specks far from the digit (dust, noise) are dropped;
//! 6. strokes much thinner than MNIST's (a fine pen on a large digit: after shrinking to 20
//!    pixels they would be faint hairlines the network never saw) are thickened to MNIST's
//!    typical width with a round brush;
//! 7. the ink is cropped, scaled to fit 20x20 (area averaging when shrinking, linear
//!    interpolation when enlarging) and placed so its center of mass is at (14, 14).
//!
//! [`load_gray`] reads the picture, refusing absurd sizes before decoding.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// Side of the network's input picture.
pub const SIDE: usize = 28;
/// Side of the box the digit is scaled to fit, as in MNIST.
pub const BOX: usize = 20;
/// Largest picture accepted, in pixels (a 50-megapixel camera's full resolution).
pub const MAX_PIXELS: u64 = 50_000_000;
/// Most memory the image decoder may allocate.
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;
/// Larger pictures are averaged down to this many pixels a side before the analysis.
pub const WORK_SIDE: usize = 1024;

/// Least difference from the paper (of 255) that counts as ink at all: below it the picture is
/// taken to be blank rather than stretching noise into a "digit".
const MIN_CONTRAST: f32 = 40.0;
/// Share of the ink that ends at full intensity: in MNIST about a third of the ink pixels are
/// 253 or more, the rest are anti-aliased edges.
const SATURATED_SHARE: f32 = 0.35;
/// Ink weaker than this share of the strongest ink is dropped: faint shadows and halos.
const FAINT_SHARE: f32 = 0.12;
/// Connected pieces of ink with less than this share of the largest piece's ink are specks.
const SPECK_SHARE: f32 = 0.03;
/// Stroke widths in pixels of the 20-pixel box, measured as 2 x area / perimeter of the
/// half-intensity ink (see [`stroke_width`]). On the MNIST test set: 5th percentile 1.23,
/// median 1.84. Thinner than `THIN_STROKE` is thickened to `TARGET_STROKE`; anything MNIST-like
/// is left alone.
const THIN_STROKE: f32 = 1.2;
/// See [`THIN_STROKE`].
const TARGET_STROKE: f32 = 1.8;

/// Why a picture has no digit in it.
#[derive(Clone, Debug, PartialEq)]
pub enum PreprocessError {
    /// The picture has no pixels.
    Empty,
    /// Nothing differs enough from the background to be ink.
    NoInk {
        /// The strongest difference from the background that was found (of 255).
        contrast: f32,
    },
}

impl fmt::Display for PreprocessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreprocessError::Empty => f.write_str("the image has no pixels"),
            PreprocessError::NoInk { contrast } => write!(
                f,
                "no ink found: the strongest marks differ from the background by only \
                 {contrast:.0} of 255 levels (at least {MIN_CONTRAST:.0} needed); is the image blank?"
            ),
        }
    }
}

impl std::error::Error for PreprocessError {}

/// Why a file could not be read as a picture. Every message names the file.
#[derive(Debug)]
pub struct LoadError(String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// Reads a PNG or JPEG file as 8-bit grayscale.
///
/// The format is told by the file's content, not its name. The dimensions are read from the
/// header first, so a picture of more than [`MAX_PIXELS`] is refused before any pixel is decoded,
/// and the decoder may not allocate more than [`MAX_ALLOC`]. JPEG orientation (EXIF) is applied,
/// as phones store photos sideways. Transparent pixels are laid on a backdrop that contrasts
/// with the opaque ones (white behind dark strokes), as a drawing program would show them.
pub fn load_gray(path: &Path) -> Result<GrayImage, LoadError> {
    let name = path.display();
    let io = |e: std::io::Error| LoadError(format!("cannot read {name}: {e}"));
    let mut file = File::open(path).map_err(io)?;
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]).map_err(io)? {
            0 => break,
            n => got += n,
        }
    }
    let format = match image::guess_format(&head[..got]) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        Ok(other) => {
            return Err(LoadError(format!(
                "{name} is a {} image, not a PNG/JPEG image (the only formats supported)",
                other
                    .extensions_str()
                    .first()
                    .unwrap_or(&"?")
                    .to_uppercase()
            )));
        }
        Err(_) if got == 0 => {
            return Err(LoadError(format!("{name} is empty, not a PNG/JPEG image")));
        }
        Err(_) => {
            return Err(LoadError(format!(
                "{name} is not a PNG/JPEG image (it starts with neither signature)"
            )));
        }
    };
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut reader = ImageReader::with_format(BufReader::new(file), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let bad = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => LoadError(format!(
            "{name} is too large to decode within {} MiB of memory",
            MAX_ALLOC >> 20
        )),
        e => LoadError(format!("{name}: cannot decode this {format:?} image: {e}")),
    };
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let (w, h) = decoder.dimensions();
    check_size(w, h).map_err(|why| LoadError(format!("{name} {why}")))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder).map_err(bad)?;
    picture.apply_orientation(orientation);
    Ok(flatten(&picture))
}

/// Refuses pictures with no pixels or more than [`MAX_PIXELS`].
fn check_size(w: u32, h: u32) -> Result<(), String> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 {
        return Err(format!("has no pixels ({w}x{h})"));
    }
    if pixels > MAX_PIXELS {
        return Err(format!(
            "is {w}x{h} pixels ({:.0} megapixels), more than the limit of {} megapixels",
            pixels as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        ));
    }
    Ok(())
}

/// Grayscale, with transparency laid on a contrasting backdrop.
fn flatten(picture: &DynamicImage) -> GrayImage {
    if !picture.color().has_alpha() {
        return picture.to_luma8();
    }
    let la = picture.to_luma_alpha8();
    // Transparent strokes are rare; a transparent background behind dark strokes (black on
    // transparent, as drawing programs export) is common, and its hidden color is arbitrary.
    let (mut weighted, mut alpha) = (0u64, 0u64);
    for p in la.pixels() {
        weighted += u64::from(p[0]) * u64::from(p[1]);
        alpha += u64::from(p[1]);
    }
    let backdrop: u32 = if alpha > 0 && weighted < 128 * alpha {
        255
    } else {
        0
    };
    GrayImage::from_fn(la.width(), la.height(), |x, y| {
        let p = la.get_pixel(x, y);
        let (l, a) = (u32::from(p[0]), u32::from(p[1]));
        image::Luma([((l * a + backdrop * (255 - a) + 127) / 255) as u8])
    })
}

/// A grayscale picture in floating point, row by row.
struct Plane {
    w: usize,
    h: usize,
    px: Vec<f32>,
}

impl Plane {
    /// The picture, averaged down by a whole factor so no side exceeds [`WORK_SIDE`].
    fn working_copy(gray: &GrayImage) -> Plane {
        let (w, h) = (gray.width() as usize, gray.height() as usize);
        let k = w.max(h).div_ceil(WORK_SIDE).max(1);
        let src = gray.as_raw();
        if k == 1 {
            return Plane {
                w,
                h,
                px: src.iter().map(|&v| f32::from(v)).collect(),
            };
        }
        let (ow, oh) = (w.div_ceil(k), h.div_ceil(k));
        let mut sum = vec![0u32; ow * oh];
        let mut count = vec![0u32; ow * oh];
        for y in 0..h {
            let row = &src[y * w..(y + 1) * w];
            let out = (y / k) * ow;
            for (x, &v) in row.iter().enumerate() {
                sum[out + x / k] += u32::from(v);
                count[out + x / k] += 1;
            }
        }
        Plane {
            w: ow,
            h: oh,
            px: sum
                .iter()
                .zip(&count)
                .map(|(&s, &c)| s as f32 / c as f32)
                .collect(),
        }
    }
}

/// The paper's brightness as a plane: `level + gx * (x - cx) + gy * (y - cy)`.
#[derive(Clone, Copy, Debug)]
struct Background {
    level: f32,
    gx: f32,
    gy: f32,
    cx: f32,
    cy: f32,
}

impl Background {
    fn at(&self, x: f32, y: f32) -> f32 {
        self.level + self.gx * (x - self.cx) + self.gy * (y - self.cy)
    }

    /// Fits the plane to the medians of short pieces of the border, robustly: pieces where the
    /// digit touches the border disagree with the rest and are left out.
    fn fit(img: &Plane) -> (Background, Vec<f32>) {
        let (w, h) = (img.w, img.h);
        let band = (w.min(h) / 40).max(1);
        let pieces = 8;
        let mut points: Vec<[f32; 3]> = Vec::new(); // x, y, median
        let mut region = |x0: usize, x1: usize, y0: usize, y1: usize| {
            if x1 <= x0 || y1 <= y0 {
                return;
            }
            let mut v: Vec<f32> = (y0..y1)
                .flat_map(|y| img.px[y * w + x0..y * w + x1].iter().copied())
                .collect();
            points.push([
                (x0 + x1 - 1) as f32 / 2.0,
                (y0 + y1 - 1) as f32 / 2.0,
                median(&mut v),
            ]);
        };
        for i in 0..pieces {
            let (x0, x1) = (i * w / pieces, (i + 1) * w / pieces);
            let (y0, y1) = (i * h / pieces, (i + 1) * h / pieces);
            region(x0, x1, 0, band);
            region(x0, x1, h - band, h);
            region(0, band, y0, y1);
            region(w - band, w, y0, y1);
        }
        let mut levels: Vec<f32> = points.iter().map(|p| p[2]).collect();
        let mut bg = Background {
            level: median(&mut levels),
            gx: 0.0,
            gy: 0.0,
            cx: 0.0,
            cy: 0.0,
        };
        for _ in 0..4 {
            let mut residuals: Vec<f32> = points
                .iter()
                .map(|p| (p[2] - bg.at(p[0], p[1])).abs())
                .collect();
            let tolerance = (3.0 * 1.4826 * median(&mut residuals)).max(6.0);
            let inliers: Vec<[f32; 3]> = points
                .iter()
                .copied()
                .filter(|p| (p[2] - bg.at(p[0], p[1])).abs() <= tolerance)
                .collect();
            match fit_plane(&inliers) {
                Some(next) => bg = next,
                None => break,
            }
        }
        // The noise is measured on every border pixel (not only the medians).
        let mut border: Vec<f32> = Vec::new();
        for y in 0..h {
            for x in 0..w {
                if x < band || x >= w - band || y < band || y >= h - band {
                    border.push((img.px[y * w + x] - bg.at(x as f32, y as f32)).abs());
                }
            }
        }
        (bg, border)
    }
}

/// Least-squares plane through `points` (x, y, value); `None` when they do not determine one.
fn fit_plane(points: &[[f32; 3]]) -> Option<Background> {
    if points.len() < 6 {
        return None;
    }
    let n = points.len() as f64;
    let cx = points.iter().map(|p| f64::from(p[0])).sum::<f64>() / n;
    let cy = points.iter().map(|p| f64::from(p[1])).sum::<f64>() / n;
    let cz = points.iter().map(|p| f64::from(p[2])).sum::<f64>() / n;
    // With centered coordinates the level is the mean and the slopes solve a 2x2 system.
    let (mut sxx, mut sxy, mut syy, mut sxz, mut syz) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        let (x, y, z) = (
            f64::from(p[0]) - cx,
            f64::from(p[1]) - cy,
            f64::from(p[2]) - cz,
        );
        sxx += x * x;
        sxy += x * y;
        syy += y * y;
        sxz += x * z;
        syz += y * z;
    }
    let det = sxx * syy - sxy * sxy;
    if det.abs() < 1e-9 * (sxx * syy).max(1e-12) {
        return None;
    }
    Some(Background {
        level: cz as f32,
        gx: ((sxz * syy - syz * sxy) / det) as f32,
        gy: ((syz * sxx - sxz * sxy) / det) as f32,
        cx: cx as f32,
        cy: cy as f32,
    })
}

/// Median (the upper one for an even count); reorders `v`. 0 for an empty slice.
fn median(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// The value below which `share` of the counted levels lie (histogram of levels 0..=255).
fn quantile(hist: &[u64; 256], from: usize, share: f32) -> f32 {
    let total: u64 = hist[from..].iter().sum();
    let target = (total as f64 * f64::from(share)).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (level, &n) in hist.iter().enumerate().skip(from) {
        seen += n;
        if seen >= target {
            return level as f32;
        }
    }
    255.0
}

/// Ink intensity in `[0, 1]` per pixel of `img`: the difference from the background on the ink's
/// side, with noise removed and the strong ink saturated.
fn ink(img: &Plane) -> Result<Vec<f32>, PreprocessError> {
    let (bg, mut border) = Background::fit(img);
    let sigma = 1.4826 * median(&mut border);
    let noise = 3.0 * sigma + 4.0;
    let mut diff = Vec::with_capacity(img.px.len());
    let (mut darker, mut lighter) = (0.0f64, 0.0f64);
    for y in 0..img.h {
        for x in 0..img.w {
            let d = img.px[y * img.w + x] - bg.at(x as f32, y as f32);
            darker += f64::from((-d - noise).max(0.0));
            lighter += f64::from((d - noise).max(0.0));
            diff.push(d);
        }
    }
    // Ink is on the side with more difference; for dark ink on light paper this inverts.
    let sign = if darker >= lighter { -1.0 } else { 1.0 };
    let mut hist = [0u64; 256];
    for d in &mut diff {
        *d = (sign * *d).clamp(0.0, 255.0);
        hist[d.round() as usize] += 1;
    }
    let above_noise = (noise.ceil() as usize + 1).min(255);
    let peak = if hist[above_noise..].iter().sum::<u64>() == 0 {
        // Nothing rises above the noise: report the largest difference seen.
        hist.iter().rposition(|&n| n > 0).unwrap_or(0) as f32
    } else {
        quantile(&hist, above_noise, 0.99)
    };
    if peak < MIN_CONTRAST {
        return Err(PreprocessError::NoInk { contrast: peak });
    }
    let low = noise.max(FAINT_SHARE * peak);
    let high = quantile(
        &hist,
        (low.ceil() as usize + 1).min(255),
        1.0 - SATURATED_SHARE,
    )
    .max(low + 1.0);
    let scale = 1.0 / (high - low);
    for d in &mut diff {
        *d = ((*d - low) * scale).clamp(0.0, 1.0);
    }
    Ok(diff)
}

/// Zeroes the specks (8-connected pieces with little ink compared with the largest piece) and
/// returns the bounding box `(x0, y0, x1, y1)` (exclusive ends) of the rest.
fn drop_specks(ink: &mut [f32], w: usize, h: usize) -> Option<(usize, usize, usize, usize)> {
    const NONE: u32 = u32::MAX;
    let mut label = vec![NONE; ink.len()];
    let mut pieces: Vec<(f32, [usize; 4])> = Vec::new(); // ink, bounding box
    let mut stack = Vec::new();
    for start in 0..ink.len() {
        if ink[start] <= 0.0 || label[start] != NONE {
            continue;
        }
        let id = pieces.len() as u32;
        let mut mass = 0.0f32;
        let mut bbox = [usize::MAX, usize::MAX, 0, 0];
        label[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            mass += ink[i];
            bbox = [
                bbox[0].min(x),
                bbox[1].min(y),
                bbox[2].max(x + 1),
                bbox[3].max(y + 1),
            ];
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if ink[j] > 0.0 && label[j] == NONE {
                        label[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        pieces.push((mass, bbox));
    }
    let largest = pieces.iter().map(|p| p.0).fold(0.0, f32::max);
    let keep: Vec<bool> = pieces
        .iter()
        .map(|p| p.0 >= SPECK_SHARE * largest)
        .collect();
    let mut bbox: Option<[usize; 4]> = None;
    for (p, _) in pieces.iter().zip(&keep).filter(|(_, k)| **k) {
        let b = p.1;
        bbox = Some(match bbox {
            None => b,
            Some(a) => [
                a[0].min(b[0]),
                a[1].min(b[1]),
                a[2].max(b[2]),
                a[3].max(b[3]),
            ],
        });
    }
    for (v, &l) in ink.iter_mut().zip(&label) {
        if l != NONE && !keep[l as usize] {
            *v = 0.0;
        }
    }
    bbox.map(|b| (b[0], b[1], b[2], b[3]))
}

/// For each output position along one axis, the source positions and their weights: area
/// averaging when shrinking (every source pixel counts by how much of it the output pixel
/// covers: MNIST-like anti-aliasing), linear interpolation between pixel centers when enlarging.
fn axis_weights(n_in: usize, n_out: usize) -> Vec<Vec<(usize, f32)>> {
    let r = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|j| {
            if r >= 1.0 {
                let (lo, hi) = (j as f64 * r, (j + 1) as f64 * r);
                (lo.floor() as usize..(hi.ceil() as usize).min(n_in))
                    .map(|i| {
                        let cover = hi.min(i as f64 + 1.0) - lo.max(i as f64);
                        (i, (cover / r) as f32)
                    })
                    .filter(|&(_, wgt)| wgt > 0.0)
                    .collect()
            } else {
                let x = ((j as f64 + 0.5) * r - 0.5).clamp(0.0, (n_in - 1) as f64);
                let i0 = x.floor() as usize;
                let t = (x - i0 as f64) as f32;
                vec![(i0, 1.0 - t), ((i0 + 1).min(n_in - 1), t)]
            }
        })
        .collect()
}

/// Resamples a `sw` x `sh` picture to `dw` x `dh`, one axis after the other.
fn resample(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let (wx, wy) = (axis_weights(sw, dw), axis_weights(sh, dh));
    let mut rows = vec![0.0f32; dw * sh];
    for y in 0..sh {
        let line = &src[y * sw..(y + 1) * sw];
        for (x, taps) in wx.iter().enumerate() {
            rows[y * dw + x] = taps.iter().map(|&(i, wgt)| wgt * line[i]).sum();
        }
    }
    let mut out = vec![0.0f32; dw * dh];
    for (y, taps) in wy.iter().enumerate() {
        for x in 0..dw {
            out[y * dw + x] = taps.iter().map(|&(i, wgt)| wgt * rows[i * dw + x]).sum();
        }
    }
    out
}

/// Width of the strokes in `crop` (`bw` x `bh`), in pixels of the 20-pixel box: for long
/// strokes the area is length x width and the perimeter twice the length, so 2 x area /
/// perimeter is the width. Measured on the half-intensity ink, as MNIST's figures were.
fn stroke_width(crop: &[f32], bw: usize, bh: usize) -> f32 {
    let on = |x: usize, y: usize| crop[y * bw + x] >= 0.5;
    let (mut area, mut perimeter) = (0u64, 0u64);
    for y in 0..bh {
        for x in 0..bw {
            if !on(x, y) {
                continue;
            }
            area += 1;
            perimeter += u64::from(x == 0 || !on(x - 1, y))
                + u64::from(x + 1 == bw || !on(x + 1, y))
                + u64::from(y == 0 || !on(x, y - 1))
                + u64::from(y + 1 == bh || !on(x, y + 1));
        }
    }
    if perimeter == 0 {
        return f32::INFINITY;
    }
    2.0 * area as f32 / perimeter as f32 * BOX as f32 / bw.max(bh) as f32
}

/// Thickens strokes of `width` (box pixels) to [`TARGET_STROKE`] with a round brush (a
/// grayscale dilation); returns the new crop, cropped again to its ink. The work is done at 8x
/// the final size: fine enough for a round brush and for anti-aliased edges once averaged down
/// to 20, small enough to be cheap whatever the picture's size. The picture is brought to that
/// size by taking maxima, not averages, so a hairline keeps its full intensity (averaging would
/// leave a faint stroke, which the brush would only widen).
fn thicken(crop: &[f32], bw: usize, bh: usize, width: f32) -> (Vec<f32>, usize, usize) {
    let grow = (TARGET_STROKE - width) / 2.0 * bw.max(bh) as f32 / BOX as f32; // per side
    let pad = grow.ceil() as usize + 1;
    let (pw, ph) = (bw + 2 * pad, bh + 2 * pad);
    let mut padded = vec![0.0f32; pw * ph];
    for y in 0..bh {
        padded[(y + pad) * pw + pad..(y + pad) * pw + pad + bw]
            .copy_from_slice(&crop[y * bw..(y + 1) * bw]);
    }
    let s = ((8 * BOX) as f32 / pw.max(ph) as f32).min(1.0);
    let (w, h) = (
        ((pw as f32 * s).round() as usize).max(1),
        ((ph as f32 * s).round() as usize).max(1),
    );
    let mid = max_pool(&padded, pw, ph, w, h);
    // Taking maxima already widened the strokes by up to one pixel.
    let r = (grow * w as f32 / pw as f32 - 0.5).max(0.5);
    let reach = r.ceil() as isize;
    let brush: Vec<(isize, isize)> = (-reach..=reach)
        .flat_map(|dy| (-reach..=reach).map(move |dx| (dx, dy)))
        .filter(|&(dx, dy)| ((dx * dx + dy * dy) as f32) <= r * r)
        .collect();
    let mut out = vec![0.0f32; w * h];
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            let v = brush
                .iter()
                .filter_map(|&(dx, dy)| {
                    let (sx, sy) = (x as isize + dx, y as isize + dy);
                    ((0..w as isize).contains(&sx) && (0..h as isize).contains(&sy))
                        .then(|| mid[sy as usize * w + sx as usize])
                })
                .fold(0.0f32, f32::max);
            if v > 0.0 {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            }
            out[y * w + x] = v;
        }
    }
    if x1 <= x0 {
        return (mid, w, h);
    }
    let cropped = (y0..y1)
        .flat_map(|y| out[y * w + x0..y * w + x1].iter().copied())
        .collect();
    (cropped, x1 - x0, y1 - y0)
}

/// Shrinks a `sw` x `sh` picture to `dw` x `dh` (not larger) keeping each block's maximum.
fn max_pool(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let span = |j: usize, n_in: usize, n_out: usize| {
        let r = n_in as f64 / n_out as f64;
        let lo = (j as f64 * r).floor() as usize;
        lo..((((j + 1) as f64) * r).ceil() as usize).clamp(lo + 1, n_in)
    };
    let mut out = vec![0.0f32; dw * dh];
    for y in 0..dh {
        for x in 0..dw {
            out[y * dw + x] = span(y, sh, dh)
                .flat_map(|sy| src[sy * sw..(sy + 1) * sw][span(x, sw, dw)].iter().copied())
                .fold(0.0f32, f32::max);
        }
    }
    out
}

/// The network's view of a picture of one digit: 28x28, white ink on black, the ink scaled to
/// fit 20x20 with its aspect ratio kept and its center of mass at (14, 14), as MNIST was made.
/// See the module documentation for the steps.
pub fn to_mnist(gray: &GrayImage) -> Result<[u8; SIDE * SIDE], PreprocessError> {
    if gray.width() == 0 || gray.height() == 0 {
        return Err(PreprocessError::Empty);
    }
    let img = Plane::working_copy(gray);
    let mut ink = ink(&img)?;
    let (x0, y0, x1, y1) =
        drop_specks(&mut ink, img.w, img.h).ok_or(PreprocessError::NoInk { contrast: 0.0 })?;
    let (mut bw, mut bh) = (x1 - x0, y1 - y0);
    let mut crop: Vec<f32> = (y0..y1)
        .flat_map(|y| ink[y * img.w + x0..y * img.w + x1].iter().copied())
        .collect();
    let width = stroke_width(&crop, bw, bh);
    if width < THIN_STROKE {
        (crop, bw, bh) = thicken(&crop, bw, bh, width);
    }
    // The longer side becomes exactly BOX; the shorter keeps the proportion (at least a pixel).
    let scale = BOX as f64 / bw.max(bh) as f64;
    let fit = |n: usize| ((n as f64 * scale).round() as usize).clamp(1, BOX);
    let (nw, nh) = (fit(bw), fit(bh));
    let small = resample(&crop, bw, bh, nw, nh);

    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in small.iter().enumerate() {
        let v = f64::from(v);
        mass += v;
        mx += v * (i % nw) as f64;
        my += v * (i / nw) as f64;
    }
    if mass <= 0.0 {
        return Err(PreprocessError::NoInk { contrast: 0.0 });
    }
    // A whole-pixel shift (no second resampling blur), kept inside the field so no ink is cut.
    let center = (SIDE / 2) as f64;
    let place = |c: f64, n: usize| ((center - c).round().max(0.0) as usize).min(SIDE - n);
    let (ox, oy) = (place(mx / mass, nw), place(my / mass, nh));
    let mut out = [0u8; SIDE * SIDE];
    for y in 0..nh {
        for x in 0..nw {
            out[(y + oy) * SIDE + x + ox] =
                (small[y * nw + x] * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance from `p` to the segment `a`-`b`.
    fn seg_dist(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
        ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
    }

    /// A straight stroke from one point to another.
    type Segment = ((f32, f32), (f32, f32));

    /// Draws strokes (segments in units of `size`, relative to `origin`) of half-width
    /// `half` pixels, anti-aliased, `ink` on `paper`.
    #[allow(clippy::too_many_arguments)]
    fn draw(
        w: u32,
        h: u32,
        strokes: &[Segment],
        origin: (f32, f32),
        size: f32,
        half: f32,
        ink: u8,
        paper: u8,
    ) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            let p = (x as f32 + 0.5, y as f32 + 0.5);
            let d = strokes
                .iter()
                .map(|&(a, b)| {
                    let a = (origin.0 + a.0 * size, origin.1 + a.1 * size);
                    let b = (origin.0 + b.0 * size, origin.1 + b.1 * size);
                    seg_dist(p, a, b)
                })
                .fold(f32::INFINITY, f32::min);
            let cover = (half + 0.5 - d).clamp(0.0, 1.0);
            let v = f32::from(paper) + cover * (f32::from(ink) - f32::from(paper));
            image::Luma([v.round() as u8])
        })
    }

    /// A "7" with a crossbar, one unit wide and 1.4 units tall.
    const SEVEN: &[Segment] = &[
        ((0.0, 0.0), (1.0, 0.0)),
        ((1.0, 0.0), (0.35, 1.4)),
        ((0.35, 0.7), (0.85, 0.7)),
    ];

    fn com(img: &[u8; 784]) -> (f64, f64) {
        let (mut m, mut x, mut y) = (0.0, 0.0, 0.0);
        for (i, &v) in img.iter().enumerate() {
            m += f64::from(v);
            x += f64::from(v) * (i % 28) as f64;
            y += f64::from(v) * (i / 28) as f64;
        }
        (x / m, y / m)
    }

    /// (width, height) of the box around the non-zero pixels.
    fn extent(img: &[u8; 784]) -> (usize, usize) {
        let on: Vec<(usize, usize)> = (0..784)
            .filter(|&i| img[i] > 0)
            .map(|i| (i % 28, i / 28))
            .collect();
        let w = on.iter().map(|p| p.0).max().unwrap() - on.iter().map(|p| p.0).min().unwrap() + 1;
        let h = on.iter().map(|p| p.1).max().unwrap() - on.iter().map(|p| p.1).min().unwrap() + 1;
        (w, h)
    }

    fn mean_abs_diff(a: &[u8; 784], b: &[u8; 784]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
            .sum::<f64>()
            / 784.0
    }

    #[test]
    fn white_on_black_and_black_on_white_give_the_same_picture() {
        let dark_on_light = draw(300, 300, SEVEN, (80.0, 50.0), 140.0, 9.0, 10, 245);
        let light_on_dark = draw(300, 300, SEVEN, (80.0, 50.0), 140.0, 9.0, 245, 10);
        let a = to_mnist(&dark_on_light).unwrap();
        let b = to_mnist(&light_on_dark).unwrap();
        let worst = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| x.abs_diff(y))
            .max()
            .unwrap();
        assert!(worst <= 1, "pixels differ by up to {worst}");
        // And it is white on black, as MNIST.
        assert_eq!(a[0], 0);
        assert!(a.iter().filter(|&&v| v == 255).count() > 20);
    }

    #[test]
    fn a_digit_off_center_on_a_large_canvas_ends_centered_and_fits_20x20() {
        let img = draw(400, 300, SEVEN, (250.0, 150.0), 90.0, 6.0, 0, 255);
        let out = to_mnist(&img).unwrap();
        let (cx, cy) = com(&out);
        assert!(
            (cx - 14.0).abs() <= 0.5 + 1e-9 && (cy - 14.0).abs() <= 0.5 + 1e-9,
            "center of mass at ({cx:.2}, {cy:.2})"
        );
        let (w, h) = extent(&out);
        assert!((19..=20).contains(&h), "height {h}");
        // The 7 is 1 wide for 1.4 tall plus the stroke: about 15 of 20.
        assert!((13..=16).contains(&w), "width {w}");
    }

    #[test]
    fn aspect_ratio_is_kept() {
        let stroke = &[((0.0, 0.0), (0.0, 1.0))];
        let tall = to_mnist(&draw(200, 300, stroke, (100.0, 40.0), 200.0, 8.0, 0, 255)).unwrap();
        let (w, h) = extent(&tall);
        assert!(h >= 19 && w <= 3, "a tall stroke became {w}x{h}");
        let flat = &[((0.0, 0.0), (1.0, 0.0))];
        let wide = to_mnist(&draw(300, 200, flat, (40.0, 100.0), 200.0, 8.0, 0, 255)).unwrap();
        let (w, h) = extent(&wide);
        assert!(w >= 19 && h <= 3, "a wide stroke became {w}x{h}");
    }

    #[test]
    fn a_blank_picture_has_no_ink() {
        for level in [0, 128, 255] {
            let blank = GrayImage::from_pixel(50, 40, image::Luma([level]));
            assert!(matches!(
                to_mnist(&blank),
                Err(PreprocessError::NoInk { .. })
            ));
        }
        // Paper with noise and a lighting gradient is still blank.
        let mut rng = 7u32;
        let noisy = GrayImage::from_fn(300, 200, |x, y| {
            rng = rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (rng >> 24) as f32 / 255.0 * 16.0 - 8.0;
            image::Luma([(200.0 + x as f32 * 0.1 + y as f32 * 0.05 + noise) as u8])
        });
        let err = to_mnist(&noisy).unwrap_err();
        assert!(err.to_string().starts_with("no ink found"), "{err}");
        assert_eq!(to_mnist(&GrayImage::new(0, 5)), Err(PreprocessError::Empty));
    }

    #[test]
    fn gradient_noise_and_specks_change_little() {
        let clean = to_mnist(&draw(400, 400, SEVEN, (120.0, 100.0), 150.0, 9.0, 30, 230)).unwrap();
        let mut photo = draw(400, 400, SEVEN, (120.0, 100.0), 150.0, 9.0, 30, 230);
        let mut rng = 11u32;
        for (x, y, p) in photo.enumerate_pixels_mut() {
            rng = rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (rng >> 24) as f32 / 255.0 * 20.0 - 10.0;
            // Lighting falls off by 40 levels from left to right.
            let light = -40.0 * x as f32 / 400.0 + 10.0 * y as f32 / 400.0;
            p[0] = (f32::from(p[0]) + light + noise).clamp(0.0, 255.0) as u8;
        }
        // Dust: a few dots far from the digit.
        for (cx, cy) in [(20u32, 380u32), (370, 30), (380, 360)] {
            for y in cy - 2..cy + 2 {
                for x in cx - 2..cx + 2 {
                    photo.put_pixel(x, y, image::Luma([20]));
                }
            }
        }
        let out = to_mnist(&photo).unwrap();
        let diff = mean_abs_diff(&clean, &out);
        assert!(diff < 6.0, "mean difference {diff:.1} of 255");
        assert_eq!(extent(&clean), extent(&out));
    }

    #[test]
    fn an_mnist_style_picture_stays_nearly_as_it_was() {
        // What comes out is already MNIST-style (28x28, white on black, 20x20, centered), so
        // preprocessing it again may change little: the raw MNIST digits go the same way.
        let once = to_mnist(&draw(300, 300, SEVEN, (80.0, 50.0), 140.0, 9.0, 0, 255)).unwrap();
        let img = GrayImage::from_raw(28, 28, once.to_vec()).unwrap();
        let twice = to_mnist(&img).unwrap();
        let diff = mean_abs_diff(&once, &twice);
        assert!(diff < 8.0, "mean difference {diff:.1} of 255");
        assert_eq!(extent(&once), extent(&twice));
    }

    #[test]
    fn thin_pen_strokes_are_thickened_like_mnist_and_normal_ones_are_not() {
        let mass = |img: &[u8; 784]| img.iter().map(|&v| f64::from(v)).sum::<f64>();
        // A fine pen on a large digit: 3 pixels wide, 600 tall, about 0.1 pixel once shrunk.
        let thin = to_mnist(&draw(500, 700, SEVEN, (100.0, 50.0), 420.0, 1.5, 0, 255)).unwrap();
        // The same digit in MNIST's typical stroke width (about 2 of 20 pixels).
        let normal = to_mnist(&draw(500, 700, SEVEN, (100.0, 50.0), 420.0, 28.0, 0, 255)).unwrap();
        let ratio = mass(&thin) / mass(&normal);
        assert!(
            (0.6..1.3).contains(&ratio),
            "thin has {ratio:.2} of the ink"
        );
        assert!(mean_abs_diff(&thin, &normal) < 25.0);
        let (w, h) = extent(&thin);
        assert!((19..=20).contains(&h) && (13..=16).contains(&w), "{w}x{h}");
        // Both now have MNIST-like strokes (measured in the 28x28 output, whose box is 20).
        for (name, img) in [("thin", thin), ("normal", normal)] {
            let ink: Vec<f32> = img.iter().map(|&v| f32::from(v) / 255.0).collect();
            let width = stroke_width(&ink, 28, 28) * 28.0 / 20.0;
            println!("{name}: stroke width {width:.2}");
            assert!(
                name == "thin" || (1.3..2.6).contains(&width),
                "{name}: stroke width {width:.2}"
            );
        }
    }

    #[test]
    fn large_pictures_are_averaged_down_first() {
        let img = draw(3000, 2100, SEVEN, (1000.0, 500.0), 800.0, 40.0, 0, 255);
        let small = draw(300, 210, SEVEN, (100.0, 50.0), 80.0, 4.0, 0, 255);
        let (a, b) = (to_mnist(&img).unwrap(), to_mnist(&small).unwrap());
        assert!(mean_abs_diff(&a, &b) < 8.0);
    }

    /// Writes `img` as a PNG file in `dir`.
    fn png(dir: &Path, name: &str, img: &GrayImage) -> std::path::PathBuf {
        let path = dir.join(name);
        img.save(&path).unwrap();
        path
    }

    #[test]
    fn files_are_read_by_content_and_bad_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let img = draw(120, 90, SEVEN, (40.0, 10.0), 50.0, 4.0, 0, 255);
        let good = png(dir.path(), "seven.png", &img);
        assert_eq!(load_gray(&good).unwrap(), img);
        // A JPEG named .png is still read (by content), with JPEG's small errors.
        let jpeg = dir.path().join("really-a-jpeg.png");
        img.save_with_format(&jpeg, ImageFormat::Jpeg).unwrap();
        let back = to_mnist(&load_gray(&jpeg).unwrap()).unwrap();
        assert!(mean_abs_diff(&back, &to_mnist(&img).unwrap()) < 6.0);

        let text = dir.path().join("notes.png");
        std::fs::write(&text, "these are not pixels\n").unwrap();
        let err = load_gray(&text).unwrap_err().to_string();
        assert!(
            err.contains("notes.png") && err.contains("not a PNG/JPEG image"),
            "{err}"
        );
        let empty = dir.path().join("empty.jpg");
        std::fs::write(&empty, "").unwrap();
        let err = load_gray(&empty).unwrap_err().to_string();
        assert!(
            err.contains("empty.jpg") && err.contains("not a PNG/JPEG"),
            "{err}"
        );
        let err = load_gray(&dir.path().join("missing.png"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read") && err.contains("missing.png"),
            "{err}"
        );
        // A truncated PNG: a clear decoding error.
        let bytes = std::fs::read(&good).unwrap();
        let cut = dir.path().join("cut.png");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_gray(&cut).unwrap_err().to_string();
        assert!(
            err.contains("cut.png") && err.contains("cannot decode"),
            "{err}"
        );
    }

    #[test]
    fn huge_dimensions_are_refused_before_decoding() {
        // A valid PNG whose header claims 100,000 x 100,000 pixels (10 gigapixels): the pixel
        // data is tiny, so only the header check can refuse it.
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        GrayImage::new(8, 8)
            .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        // Signature (8), IHDR length (4), "IHDR" (4), then width and height, then the CRC of
        // "IHDR" + the 13 data bytes.
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let path = dir.path().join("huge.png");
        std::fs::write(&path, &bytes).unwrap();
        let err = load_gray(&path).unwrap_err().to_string();
        assert!(
            err.contains("huge.png") && err.contains("100000x100000") && err.contains("limit"),
            "{err}"
        );
        assert!(check_size(7072, 7070).is_ok());
        assert!(check_size(7072, 7071).is_err());
    }

    #[test]
    fn transparent_background_counts_as_paper() {
        let dir = tempfile::tempdir().unwrap();
        let img = draw(120, 90, SEVEN, (40.0, 10.0), 50.0, 4.0, 0, 255);
        // Black strokes whose opacity is their darkness, on a transparent (black) background.
        let rgba = image::RgbaImage::from_fn(120, 90, |x, y| {
            image::Rgba([0, 0, 0, 255 - img.get_pixel(x, y)[0]])
        });
        let path = dir.path().join("strokes.png");
        rgba.save(&path).unwrap();
        let back = load_gray(&path).unwrap();
        assert_eq!(to_mnist(&back).unwrap(), to_mnist(&img).unwrap());
    }
}
