//! The slot area of the boards with 1 MiB of flash laid out as the STM32F4's sectors (the
//! STM32F405, and the mps2-an386 standing in for it): the firmware keeps sectors 0-3, the
//! models sectors 4-11. One place for the device's `serve`, its host-side runs and the tests
//! that cut its power.

use core::ops::Range;

use super::flash::Geometry;

/// Flash before the slot area: the firmware's (sectors 0-3).
pub const FIRMWARE_FLASH: u32 = 64 << 10;
/// Sizes of the sectors of the slot area (sectors 4-11: 64 KiB, then 7 of 128 KiB).
pub const GEOMETRY: Geometry = Geometry::Listed(&[
    64 << 10,
    128 << 10,
    128 << 10,
    128 << 10,
    128 << 10,
    128 << 10,
    128 << 10,
    128 << 10,
]);
/// Bytes of the slot area.
pub const AREA_LEN: u32 = 960 << 10;
/// Slot A (sectors 4-7, 448 KiB) and slot B (sectors 8-11, 512 KiB), as offsets in the area.
pub const SLOTS: [Range<u32>; 2] = [0..448 << 10, 448 << 10..AREA_LEN];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slots_tile_the_area_on_sector_boundaries() {
        let Geometry::Listed(sizes) = GEOMETRY else {
            panic!("listed sectors")
        };
        assert_eq!(sizes.iter().sum::<u32>(), AREA_LEN);
        assert_eq!(SLOTS[0].start, 0);
        assert_eq!(SLOTS[0].end, SLOTS[1].start);
        assert_eq!(SLOTS[1].end, AREA_LEN);
        // Slot A ends where a sector does: erasing one slot never touches the other.
        let mut at = 0;
        let ends_on_a_boundary = sizes.iter().any(|s| {
            at += s;
            at == SLOTS[0].end
        });
        assert!(ends_on_a_boundary, "slot A ends at {}", SLOTS[0].end);
    }
}
