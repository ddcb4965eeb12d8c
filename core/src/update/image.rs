//! A slot's bytes for a model file, written by the same [`Slots`] code a device runs.

use super::flash::{Geometry, RamFlash};
use super::slots::{Slots, UpdateError};

/// Writes `file` into `slot` (erased first; its length is the slot's) as the only model a
/// device with these slots has: sequence number 0, in chunks of `chunk` bytes. The result is
/// what a device's slot A holds after the same push into blank flash.
pub fn slot_image(file: &[u8], slot: &mut [u8], chunk: usize) -> Result<(), UpdateError> {
    let len = slot.len() as u32;
    slot.fill(0xFF);
    let flash = RamFlash::new(slot, Geometry::Uniform { sector: len });
    // Slot B is empty and of zero length: the push goes to A.
    let mut slots = Slots::new(flash, [0..len, len..len]);
    slots.begin(file.len() as u32)?;
    for (k, piece) in file.chunks(chunk.max(1)).enumerate() {
        slots.chunk((k * chunk.max(1)) as u32, piece)?;
    }
    slots.commit()?;
    Ok(())
}
