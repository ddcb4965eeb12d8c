//! Tests of the preprocessing: synthetic pictures of known digits, and the refusals.

use std::path::Path;

use image::ImageFormat;

use super::load::check_size;
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
