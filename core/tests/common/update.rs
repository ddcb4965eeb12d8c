//! What the update tests share: the shipped model files, and flash as a device starts.

use std::ops::Range;

use digits_core::update::Geometry;
use digits_core::update::image::slot_image;
use digits_core::update::layout::{AREA_LEN, SLOTS};

/// A model file the firmware ships (`firmware/models/NAME`).
pub fn model(name: &str) -> Vec<u8> {
    std::fs::read(testkit::workspace().join("firmware/models").join(name)).expect("a shipped model")
}

/// A model file's CRC, as its last four bytes carry it.
pub fn file_crc(file: &[u8]) -> u32 {
    u32::from_le_bytes(file[file.len() - 4..].try_into().unwrap())
}

/// The 256 KiB parts' 1 KiB pages after a 48 KiB firmware: two slots of 104 KiB.
pub const PAGES: Geometry = Geometry::Uniform { sector: 1024 };
/// Slots A and B in [`PAGES`].
pub const PAGE_SLOTS: [Range<u32>; 2] = [0..104 << 10, 104 << 10..208 << 10];

/// The slot area as the mps2-an386 starts (its code memory is RAM: zeros), slot A holding
/// `factory`.
pub fn factory_area(factory: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; AREA_LEN as usize];
    slot_image(factory, &mut bytes[..SLOTS[0].end as usize], 960).unwrap();
    bytes
}
