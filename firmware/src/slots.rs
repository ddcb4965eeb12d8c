//! Where `serve` keeps its models: two slots in flash after its own 64 KiB (see
//! `digits_core::update` and `docs/update.md`), on the M4F boards' 1 MiB laid out as the
//! STM32F4's sectors.
//!
//! Slot A comes with the shipped f32 model: `build.rs` writes the slot's bytes for it with the
//! core's own update code (`slot_a.bin`), and the `serve` binary places them at
//! `_slots_start` (the linker script `slots.x`), so that `-kernel serve`, `digits device hex`
//! and a probe all provision it.

pub use digits_core::update::layout::{AREA_LEN, FIRMWARE_FLASH, GEOMETRY, SLOTS};

/// Slot A's bytes with the shipped f32 model, up to its last programmed byte.
pub const FACTORY_SLOT: &[u8; include_bytes!(concat!(env!("OUT_DIR"), "/slot_a.bin")).len()] =
    include_bytes!(concat!(env!("OUT_DIR"), "/slot_a.bin"));

/// The slot area as a freshly flashed mps2-an386 holds it: slot A's factory bytes, zeros after
/// (its code memory is RAM). For the host's runs of `serve`'s logic.
#[cfg(not(target_os = "none"))]
pub fn factory_area() -> Vec<u8> {
    let mut area = vec![0u8; AREA_LEN as usize];
    area[..FACTORY_SLOT.len()].copy_from_slice(FACTORY_SLOT);
    area
}
