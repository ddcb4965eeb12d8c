//! Reading a picture file as grayscale, refusing absurd sizes before decoding.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use super::{MAX_ALLOC, MAX_PIXELS};

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
pub(super) fn check_size(w: u32, h: u32) -> Result<(), String> {
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
